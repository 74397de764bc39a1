import { readFileSync } from 'node:fs';

/**
 * The gid of a group given by name or number, read from the group file as moby's `lookupGID`
 * does; a number no entry has is still taken as a gid. `undefined` when there is no such group.
 */
export function lookupGroup(nameOrId: string, groupFile = '/etc/group'): number | undefined {
  let text = '';
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    // No group file: only numeric ids can be resolved.
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (gid === undefined || !/^\d+$/.test(gid)) continue;
    if (name === nameOrId || gid === nameOrId) return Number(gid);
  }
  return /^\d+$/.test(nameOrId) ? Number(nameOrId) : undefined;
}
