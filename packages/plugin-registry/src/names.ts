import { parseNormalizedNamed, tagNameOnly, type NamedReference } from '@berth/plugin-store';

/** Parses a remote (`localhost:5000/foo/bar:tag`, `vieux/sshfs`, `x@sha256:…`), `:latest` added when it has neither tag nor digest. */
export function parseRemote(remote: string | NamedReference): NamedReference {
  return tagNameOnly(typeof remote === 'string' ? parseNormalizedNamed(remote) : remote);
}
