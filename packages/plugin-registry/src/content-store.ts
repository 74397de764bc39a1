import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { notFound, system } from '@berth/errdefs';
import { fsyncDir } from '@berth/host';
import { assertSha256Digest, Digester } from './digest.js';

// moby's plugin content store (containerd `content/local`) under `<data-root>/plugins/storage`:
//   blobs/sha256/<hex>   committed blobs, read-only, always matching their name
//   ingest/<random>      writes in progress; renamed into blobs/ only once verified

export interface BlobInfo {
  readonly digest: string;
  readonly size: number;
}

export interface ExpectedBlob {
  /** Refuse the content unless it hashes to this. */
  readonly digest?: string | undefined;
  /** Refuse the content unless it has exactly this many bytes (checked while writing). */
  readonly size?: number | undefined;
}

export interface WriteBlobOptions {
  readonly expected?: ExpectedBlob | undefined;
  /** Refuse more bytes than this (when no exact size is expected). */
  readonly maxSize?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Called after each chunk is written, with the bytes written so far. */
  readonly onProgress?: ((written: number) => void) | undefined;
}

export interface ContentStoreOptions {
  /** `<data-root>/plugins/storage`. */
  readonly root: string;
}

/**
 * A content-addressed blob store with containerd's layout. A blob becomes visible only once its
 * bytes are on disk (fsync), verified against the expected digest and size, and renamed into
 * place; an interrupted write leaves at most a file under `ingest/`, which `removeIngests`
 * clears. Concurrent writers of the same content are harmless: the rename is atomic and the
 * bytes are the same.
 */
export class ContentStore {
  readonly root: string;
  readonly #blobs: string;
  readonly #ingest: string;

  constructor(options: ContentStoreOptions) {
    this.root = options.root;
    this.#blobs = path.join(options.root, 'blobs', 'sha256');
    this.#ingest = path.join(options.root, 'ingest');
  }

  /** The file of a blob (whether or not it exists); the digest is validated first. */
  blobPath(digest: string): string {
    return path.join(this.#blobs, assertSha256Digest(digest).slice('sha256:'.length));
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    try {
      const info = await stat(this.blobPath(digest));
      return info.isFile() ? { digest, size: info.size } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.info(digest)) !== undefined;
  }

  /** A stream of a committed blob; `not-found` when there is none. */
  async open(digest: string): Promise<{ size: number; stream: Readable }> {
    const info = await this.info(digest);
    if (info === undefined) throw notFound(`content digest ${digest}: not found`);
    return { size: info.size, stream: createReadStream(this.blobPath(digest)) };
  }

  async readBytes(digest: string, maxSize = Number.POSITIVE_INFINITY): Promise<Buffer> {
    const info = await this.info(digest);
    if (info === undefined) throw notFound(`content digest ${digest}: not found`);
    if (info.size > maxSize) throw system(`content ${digest} is larger than ${maxSize} bytes`);
    return readFile(this.blobPath(digest));
  }

  /** Streams `source` into the store; resolves once the blob is committed. */
  async write(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: WriteBlobOptions = {}): Promise<BlobInfo> {
    const { expected, signal } = options;
    const expectedDigest = expected?.digest === undefined ? undefined : assertSha256Digest(expected.digest);
    const limit = expected?.size ?? options.maxSize ?? Number.POSITIVE_INFINITY;
    signal?.throwIfAborted();
    await mkdir(this.#ingest, { recursive: true, mode: 0o700 });
    await mkdir(this.#blobs, { recursive: true, mode: 0o700 });
    const ingest = path.join(this.#ingest, randomBytes(16).toString('hex'));
    const handle = await open(ingest, 'wx', 0o600);
    let closed = false;
    try {
      const digester = new Digester();
      for await (const chunk of source) {
        signal?.throwIfAborted();
        if (digester.size + chunk.length > limit) {
          throw system(
            expected?.size === undefined
              ? `content is larger than ${limit} bytes`
              : `unexpected commit size: more than the expected ${limit} bytes`,
          );
        }
        digester.update(chunk);
        await handle.write(chunk);
        options.onProgress?.(digester.size);
      }
      signal?.throwIfAborted();
      const digest = digester.digest();
      if (expected?.size !== undefined && digester.size !== expected.size) {
        throw system(`unexpected commit size ${digester.size}, expected ${expected.size}`);
      }
      if (expectedDigest !== undefined && digest !== expectedDigest) {
        throw system(`unexpected commit digest ${digest}, expected ${expectedDigest}: failed precondition`);
      }
      await handle.sync();
      await handle.close();
      closed = true;
      await chmod(ingest, 0o444);
      await rename(ingest, this.blobPath(digest));
      await fsyncDir(this.#blobs);
      return { digest, size: digester.size };
    } finally {
      if (!closed) await handle.close().catch(() => undefined);
      await rm(ingest, { force: true });
    }
  }

  async writeBytes(bytes: Uint8Array, options: WriteBlobOptions = {}): Promise<BlobInfo> {
    return this.write([bytes], options);
  }

  async delete(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  /** Every committed blob's digest (for garbage collection by the owner of the references). */
  async list(): Promise<string[]> {
    try {
      const names = await readdir(this.#blobs);
      return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /** Removes what interrupted writes left in `ingest/`; call it when no write runs (at start). */
  async removeIngests(): Promise<void> {
    await rm(this.#ingest, { recursive: true, force: true });
  }
}
