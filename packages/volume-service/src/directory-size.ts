import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const isNotExist = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Bytes used by the files under `dir`, as moby's `directory.Size`: directories themselves are not
 * counted, symlinks count their own size, hard links count once, and entries that vanish during the
 * walk are skipped. A missing `dir` is an error.
 */
export async function directorySize(dir: string, signal?: AbortSignal): Promise<number> {
  const seen = new Set<string>();
  let size = 0;

  const count = (stats: Stats): void => {
    const inode = `${stats.dev}:${stats.ino}`;
    if (seen.has(inode)) return;
    seen.add(inode);
    size += stats.size;
  };

  const walk = async (path: string): Promise<void> => {
    signal?.throwIfAborted();
    let entries: string[];
    try {
      entries = await readdir(path);
    } catch (err) {
      if (isNotExist(err)) return;
      throw err;
    }
    for (const entry of entries) {
      const child = join(path, entry);
      let stats: Stats;
      try {
        stats = await lstat(child);
      } catch (err) {
        if (isNotExist(err)) continue;
        throw err;
      }
      if (stats.isDirectory()) await walk(child);
      else count(stats);
    }
  };

  const root = await lstat(dir);
  if (root.isDirectory()) await walk(dir);
  else count(root);
  return size;
}
