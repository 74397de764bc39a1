import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { system } from '@berth/errdefs';

// Node cannot call mount(2); these few operations use util-linux's `mount` and `umount`, and read
// the mount table from /proc/self/mountinfo. They only run when there is something to do, so a
// plugin without a propagated mount never needs them.

const run = promisify(execFile);

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const base = path.resolve(dir);
  const found = new Set<string>();
  for (const line of table.split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    // Spaces, tabs, newlines and backslashes are octal-escaped in mountinfo.
    const point = field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    if (point === base || point.startsWith(`${base}/`)) found.add(point);
  }
  return [...found].sort((a, b) => b.length - a.length);
}

/**
 * moby's `mount.MakeRShared`: bind `dir` onto itself unless it is a mount point already, then make
 * it recursively shared, so that mounts a plugin makes under its propagated mount reach the host.
 */
export async function makeRShared(dir: string): Promise<void> {
  try {
    if (!(await mountsUnder(dir)).includes(path.resolve(dir))) await run('mount', ['--bind', dir, dir]);
    await run('mount', ['--make-rshared', dir]);
  } catch (err) {
    throw system(`error setting up propagated mount dir: ${message(err)}`, { cause: err });
  }
}

/**
 * Unmounts everything at or below `dir`, deepest first; lazily when a mount is busy. Mounts that
 * vanish meanwhile (another caller unmounted them) are fine; stacked mounts take several passes.
 */
export async function recursiveUnmount(dir: string): Promise<void> {
  for (let pass = 0; pass < 8; pass++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) await unmount(point);
  }
}

async function unmount(point: string): Promise<void> {
  try {
    await run('umount', [point]);
    return;
  } catch {
    // Busy, or already gone: look again below.
  }
  try {
    await run('umount', ['-l', point]);
  } catch (err) {
    if ((await mountsUnder(point)).includes(point)) throw system(`failed to unmount ${point}: ${message(err)}`, { cause: err });
  }
}

function message(err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr;
  return typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim() : (err as Error).message;
}
