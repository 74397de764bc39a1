import { closeSync, constants, fsync, openSync } from 'node:fs';

/**
 * Makes a directory's entries (creations, renames, removals) durable: the fsync of the directory
 * itself that a rename or create needs before it survives a machine crash. Opened with
 * `O_DIRECTORY`, so a path that is not a directory fails (`ENOTDIR`) instead of syncing a file
 * and leaving the entries in question unsynced; every error, the fsync's too, reaches the caller.
 * Opening and closing a directory are cheap system calls done in place; only the fsync, which
 * waits for the disk, goes to the thread pool (one round trip instead of three).
 */
export async function fsyncDir(path: string): Promise<void> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err === null ? resolve() : reject(err))));
  } finally {
    closeSync(fd);
  }
}
