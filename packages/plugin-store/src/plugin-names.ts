import { invalidParameter } from '@berth/errdefs';
import { familiarString, parseNormalizedNamed, tagNameOnly, type NamedReference } from './reference.js';

// The local names of managed plugins, over the reference grammar (Docker's `distribution/reference`).

/**
 * The name a plugin created from a tar context gets (moby's `CreateFromContext`): the familiar form
 * with `:latest` added when untagged. Unparsable names and digests are refused with moby's texts
 * (400 here; moby answers 500 for what is the caller's mistake).
 */
export function pluginNameForCreate(text: string): string {
  let ref: NamedReference;
  try {
    ref = parseNormalizedNamed(text);
  } catch (err) {
    throw invalidParameter(`failed to parse reference ${text}: ${(err as Error).message}`, { cause: err });
  }
  if (ref.digest !== undefined) throw invalidParameter('canonical references are not permitted');
  return familiarString(tagNameOnly(ref));
}

/**
 * The local name of a pulled plugin (moby's `getName` in the plugin router): without `name`, the
 * familiar form of the remote, a digest reference becoming `repo:tag` or `repo:latest`; with
 * `name`, that name, which may not hold a digest (`cannot use digest in plugin tag`), `:latest`
 * added when untagged.
 */
export function pluginNameForPull(remote: string, name?: string): string {
  if (name === undefined || name === '') {
    const { digest: _digest, ...named } = parseNormalizedNamed(remote);
    return familiarString(tagNameOnly(named));
  }
  const ref = parseNormalizedNamed(name);
  if (ref.digest !== undefined) throw invalidParameter('cannot use digest in plugin tag');
  return familiarString(tagNameOnly(ref));
}
