import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContentStore } from './content-store.js';
import { sha256Digest } from './digest.js';

describe('ContentStore', () => {
  let root: string;
  let store: ContentStore;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'berth-content-'));
    store = new ContentStore({ root: path.join(root, 'storage') });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const ingest = async (): Promise<string[]> => readdir(path.join(root, 'storage', 'ingest')).catch(() => []);

  it('commits verified blobs under blobs/sha256/<hex>, read-only', async () => {
    const bytes = Buffer.from('hello');
    const info = await store.writeBytes(bytes, { expected: { digest: sha256Digest(bytes), size: 5 } });
    expect(info).toEqual({ digest: sha256Digest(bytes), size: 5 });
    const file = path.join(root, 'storage', 'blobs', 'sha256', sha256Digest(bytes).slice(7));
    expect(store.blobPath(info.digest)).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o444);
    expect((await store.readBytes(info.digest)).toString()).toBe('hello');
    expect(await store.list()).toEqual([info.digest]);
    // Writing the same content again is harmless.
    await store.writeBytes(bytes);
    expect(await ingest()).toEqual([]);
  });

  it('never shows content that does not match the expected digest or size', async () => {
    const other = sha256Digest('other');
    const err = await store.writeBytes(Buffer.from('hello'), { expected: { digest: other } }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`unexpected commit digest ${sha256Digest('hello')}, expected ${other}: failed precondition`);
    await expect(store.writeBytes(Buffer.from('hello'), { expected: { size: 4 } })).rejects.toThrow('more than the expected 4 bytes');
    await expect(store.writeBytes(Buffer.from('hello'), { expected: { size: 6 } })).rejects.toThrow('unexpected commit size 5, expected 6');
    expect(await store.list()).toEqual([]);
    expect(await ingest()).toEqual([]);
  });

  it('drops the partial file when the source fails or the signal aborts', async () => {
    async function* broken(): AsyncIterable<Uint8Array> {
      yield Buffer.from('part');
      throw new Error('connection reset');
    }
    await expect(store.write(broken())).rejects.toThrow('connection reset');
    const controller = new AbortController();
    async function* slow(): AsyncIterable<Uint8Array> {
      yield Buffer.from('part');
      controller.abort();
      yield Buffer.from('more');
    }
    const err = await store.write(slow(), { signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBe(controller.signal.reason);
    expect(await ingest()).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  it('refuses digests that are not sha256 hex before touching the disk', async () => {
    expect(() => store.blobPath('sha256:../../etc/passwd')).toThrow('invalid digest');
    expect(() => store.blobPath('sha512:' + 'a'.repeat(128))).toThrow('unsupported digest algorithm');
    await expect(store.open(sha256Digest('missing'))).rejects.toThrow('not found');
    expect(await store.info(sha256Digest('missing'))).toBeUndefined();
  });
});
