import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';

/** Real mounts need root (CI runs as root). */
export const isRoot = process.getuid?.() === 0;

/**
 * A real, small file system: a tmpfs of `sizeBytes` mounted on `at` (a fresh directory under /tmp by default), for
 * the full-disk and read-only cases. `cleanup()` unmounts it and everything mounted below it
 * (deepest first, lazily, so a test that failed half-way cannot leave a busy mount), then deletes
 * the directory.
 */
export async function smallFileSystem(
  sizeBytes: number,
  at?: string,
): Promise<{ dir: string; cleanup: () => Promise<void>; remount: (options: string) => void }> {
  const dir = at ?? (await mkdtemp('/tmp/berth-fs-'));
  await mkdir(dir, { recursive: true });
  execFileSync('/bin/mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir]);
  return {
    dir,
    remount: (options) => execFileSync('/bin/mount', ['-o', `remount,${options}`, dir]),
    cleanup: async () => {
      unmountAllUnder(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The mount points at or below `dir`, from this process's mount table. */
export function mountPointsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(dir + sep));
}

/** Unmounts everything at or below `dir`, deepest first (lazily: a test may have left it busy). */
export function unmountAllUnder(dir: string): void {
  for (const mountPoint of mountPointsUnder(dir).sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('/bin/umount', ['-l', '--', mountPoint]);
    } catch {
      // Gone already (a parent's lazy unmount took it along).
    }
  }
}

/** Fills the file system holding `dir` with one file until it is full; returns the bytes written. */
export function fillUp(dir: string, name = 'filler'): number {
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  const fd = openSync(join(dir, name), 'a');
  let written = 0;
  try {
    for (;;) written += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}
