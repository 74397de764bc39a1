import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsync, openSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDir } from '@berth/host';

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content, never a
 * torn file: temp file beside it, fsync, rename, fsync of the directory.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const temp = join(dirname(path), `.tmp-${basename(path)}${randomBytes(6).toString('hex')}`);
  try {
    const file = await open(temp, 'wx', mode);
    try {
      await file.writeFile(data);
      await file.chmod(mode);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** A file created by {@link createFile}: `sync()` makes its content durable and closes it. */
export interface OpenFile {
  readonly fd: number;
  sync(): Promise<void>;
}

/**
 * Creates a new file (`wx`: it must not exist) with `data` and exactly `mode` (whatever the umask),
 * in place: for a file in a directory nobody sees yet (a volume being staged). Its content is made
 * durable by `sync()`, its directory entry by an fsync of the directory.
 */
export function createFile(path: string, data: string, mode: number): OpenFile {
  const fd = openSync(path, 'wx', mode);
  try {
    const buffer = Buffer.from(data);
    for (let off = 0; off < buffer.length; ) off += writeSync(fd, buffer, off);
    fchmodSync(fd, mode);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return {
    fd,
    sync: async () => {
      try {
        await fsyncFd(fd);
      } finally {
        closeSync(fd);
      }
    },
  };
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err === null ? resolve() : reject(err))));
}

export function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
