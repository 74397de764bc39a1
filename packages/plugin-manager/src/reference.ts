import { invalidParameter } from '@berth/errdefs';
import { familiarString, parseNormalizedNamed, tagNameOnly, type NamedReference } from '@berth/plugin-store';

// Plugin names as the manager's `create` and `pull` take them, over the reference grammar of
// `@berth/plugin-store` (Docker's `distribution/reference`).

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
 * The name a pulled plugin is installed under (moby's `Pull` revalidates it): the familiar form
 * with `:latest` added when untagged; digests are refused (`cannot use digest in plugin tag`).
 */
export function pluginNameForPull(text: string): string {
  let ref: NamedReference;
  try {
    ref = parseNormalizedNamed(text);
  } catch (err) {
    throw invalidParameter(`failed to parse "${text}": ${(err as Error).message}`, { cause: err });
  }
  if (ref.digest !== undefined) throw invalidParameter('cannot use digest in plugin tag');
  return familiarString(tagNameOnly(ref));
}
