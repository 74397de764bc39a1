import { invalidParameter } from '@berth/errdefs';
import { familiarString, parseNormalizedNamed, tagNameOnly, type NamedReference } from '@berth/plugin-store';

/** Parses a remote (`localhost:5000/foo/bar:tag`, `vieux/sshfs`, `x@sha256:…`), `:latest` added when it has neither tag nor digest. */
export function parseRemote(remote: string | NamedReference): NamedReference {
  return tagNameOnly(typeof remote === 'string' ? parseNormalizedNamed(remote) : remote);
}

/** `reference.String()`: the full normalized form, `docker.io/vieux/sshfs:latest` (moby's `PluginReference`). */
export function referenceString(ref: NamedReference): string {
  let out = `${ref.domain}/${ref.path}`;
  if (ref.tag !== undefined) out += `:${ref.tag}`;
  if (ref.digest !== undefined) out += `@${ref.digest}`;
  return out;
}

/**
 * The local name of a pulled plugin (moby's `getName` in the plugin router): without `name`, the
 * familiar form of the remote, a digest reference becoming `repo:tag` or `repo:latest`; with
 * `name`, that name, which may not hold a digest (`cannot use digest in plugin tag`), `:latest`
 * added when untagged.
 */
export function pullPluginName(remote: string, name?: string): string {
  if (name === undefined || name === '') {
    const ref = parseNormalizedNamed(remote);
    const { digest: _digest, ...named } = ref;
    return familiarString(tagNameOnly(named));
  }
  const ref = parseNormalizedNamed(name);
  if (ref.digest !== undefined) throw invalidParameter('cannot use digest in plugin tag');
  return familiarString(tagNameOnly(ref));
}
