import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import tar from 'tar-stream';

type EntryHeader = Parameters<tar.Pack['entry']>[0];

export interface PackOptions {
  readonly signal?: AbortSignal | undefined;
}

/**
 * The tar of a plugin's root filesystem, as a layer: entries relative to `rootfsDir` (no `./`
 * prefix, no entry for the root itself), in sorted order so that the same tree always gives the
 * same bytes. Regular files, directories, symlinks, hard links (by inode), FIFOs and device nodes
 * keep their mode, owner and mtime; sockets are skipped, as moby's archiver skips them.
 */
export function packRootfs(rootfsDir: string, options: PackOptions = {}): AsyncIterable<Uint8Array> {
  const pack = tar.pack();
  const producing = produce(pack, rootfsDir, options.signal);
  producing.catch((err: unknown) => pack.destroy(err as Error));
  return pack as AsyncIterable<Uint8Array>;
}

async function produce(pack: tar.Pack, root: string, signal: AbortSignal | undefined): Promise<void> {
  const links = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      signal?.throwIfAborted();
      if (pack.destroyed) return;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(root, childRel);
      const info = await lstat(full);
      const base = {
        name: childRel,
        mode: info.mode & 0o7777,
        uid: info.uid,
        gid: info.gid,
        mtime: info.mtime,
      };
      if (info.isDirectory()) {
        await entry(pack, { ...base, type: 'directory' });
        await walk(childRel);
      } else if (info.isSymbolicLink()) {
        await entry(pack, { ...base, type: 'symlink', linkname: await readlink(full) });
      } else if (info.isFile()) {
        const key = `${info.dev}:${info.ino}`;
        const first = info.nlink > 1 ? links.get(key) : undefined;
        if (first !== undefined) {
          await entry(pack, { ...base, type: 'link', linkname: first });
          continue;
        }
        if (info.nlink > 1) links.set(key, childRel);
        await fileEntry(pack, { ...base, type: 'file', size: info.size }, full, signal);
      } else if (info.isFIFO()) {
        await entry(pack, { ...base, type: 'fifo' });
      } else if (info.isCharacterDevice() || info.isBlockDevice()) {
        await entry(pack, {
          ...base,
          type: info.isCharacterDevice() ? 'character-device' : 'block-device',
          devmajor: major(info),
          devminor: minor(info),
        });
      }
      // Sockets: skipped.
    }
  };
  await walk('');
  pack.finalize();
}

function entry(pack: tar.Pack, header: EntryHeader): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}

async function fileEntry(pack: tar.Pack, header: EntryHeader, full: string, signal: AbortSignal | undefined): Promise<void> {
  let target!: ReturnType<tar.Pack['entry']>;
  const done = new Promise<void>((resolve, reject) => {
    target = pack.entry(header, (err) => (err ? reject(err) : resolve()));
  });
  // The file may change while it is read; tar-stream refuses a size that differs from the header.
  for await (const chunk of createReadStream(full) as AsyncIterable<Buffer>) {
    signal?.throwIfAborted();
    if (!target.write(chunk)) await drained(target);
  }
  target.end(undefined);
  await done;
}

function drained(stream: ReturnType<tar.Pack['entry']>): Promise<void> {
  return new Promise((resolve) => {
    const finish = (): void => {
      stream.off('drain', finish);
      stream.off('close', finish);
      resolve();
    };
    stream.on('drain', finish);
    stream.on('close', finish);
  });
}

// Linux `dev_t` encoding (glibc's gnu_dev_major / gnu_dev_minor).
function major(info: Stats): number {
  const dev = BigInt(info.rdev);
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}

function minor(info: Stats): number {
  const dev = BigInt(info.rdev);
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}
