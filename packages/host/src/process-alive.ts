import { readFileSync } from 'node:fs';

/**
 * Whether the process `pid` is running: it exists (signal 0 reaches it, or is refused with `EPERM`
 * because it belongs to another user) and is not a zombie, which has exited and only waits for its
 * parent to reap it (processes re-parented to an init that does not reap stay zombies). Only a
 * positive whole number names one process: `kill(0)` and `kill(-n)` would ask about a process
 * group and answer true.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !exited(pid);
}

/** A zombie or dead, by the state in `/proc/<pid>/stat`; gone since the signal counts as exited. */
function exited(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    // Unreadable (no procfs, or hidden by hidepid): the signal's answer stands.
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
  // "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses, so the last ')' ends it.
  const state = stat[stat.lastIndexOf(')') + 2];
  return state === 'Z' || state === 'X';
}
