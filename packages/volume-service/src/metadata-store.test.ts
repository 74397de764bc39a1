import { copyFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { kindOf } from '@berth/errdefs';
import { describe, expect, it, vi } from 'vitest';
import { scratchDir } from '../test/fakes.js';
import { MemoryMetadataStore } from './memory-metadata-store.js';
import type { MetadataStore } from './metadata-store.js';
import { SqliteMetadataStore } from './sqlite-metadata-store.js';

interface Backend {
  open(): Promise<MetadataStore>;
  /** Close and open again: a daemon restart. */
  reopen(store: MetadataStore): Promise<MetadataStore>;
}

async function sqliteBackend(): Promise<Backend> {
  const path = join(await scratchDir(), 'volumes', 'metadata.sqlite');
  return {
    open: () => SqliteMetadataStore.open(path),
    reopen: async (store) => {
      await store.close();
      return SqliteMetadataStore.open(path);
    },
  };
}

async function memoryBackend(): Promise<Backend> {
  const store = new MemoryMetadataStore();
  return { open: async () => store, reopen: async () => store };
}

const backends = { sqlite: sqliteBackend, memory: memoryBackend };

describe.each(Object.entries(backends))('MetadataStore (%s)', (_, makeBackend) => {
  it('returns nothing for a missing name and round-trips a record (TestSetGetMeta)', async () => {
    const backend = await makeBackend();
    const store = await backend.open();
    expect(await store.get('test')).toBeUndefined();

    const record = { name: 'test', driver: 'fake', labels: { a: '1', b: '2' }, options: { foo: 'bar' } };
    await store.put(record);
    expect(await store.get('test')).toEqual({ ...record, pending: false, refs: [] });
    await store.close();
  });

  it('keeps a creation time when given one, across a reopen, and none otherwise', async () => {
    const backend = await makeBackend();
    let store = await backend.open();
    const createdAt = Date.UTC(2026, 11, 6, 9, 30, 1, 234);
    await store.markPending({ name: 'timed', driver: 'local', labels: null, options: null });
    await store.put({ name: 'timed', driver: 'local', labels: null, options: null, createdAt });
    await store.put({ name: 'untimed', driver: 'plugin', labels: null, options: null });
    store = await backend.reopen(store);
    expect(await store.get('timed')).toEqual({ name: 'timed', driver: 'local', labels: null, options: null, createdAt, pending: false, refs: [] });
    expect(await store.get('untimed')).not.toHaveProperty('createdAt');
    expect((await store.list()).map((r) => [r.name, r.createdAt])).toEqual([['timed', createdAt], ['untimed', undefined]]);
    await store.close();
  });

  it('keeps null maps apart from empty ones, across a reopen', async () => {
    const backend = await makeBackend();
    let store = await backend.open();
    await store.put({ name: 'nil', driver: 'local', labels: null, options: null });
    await store.put({ name: 'empty', driver: 'local', labels: {}, options: {} });
    store = await backend.reopen(store);
    expect(await store.get('nil')).toMatchObject({ labels: null, options: null });
    expect(await store.get('empty')).toMatchObject({ labels: {}, options: {} });
    expect((await store.list()).map((r) => r.name).sort()).toEqual(['empty', 'nil']);
    await store.close();
  });

  it('marks a create pending and clears it on put', async () => {
    const backend = await makeBackend();
    let store = await backend.open();
    await store.markPending({ name: 'v', driver: 'local', labels: { a: 'b' }, options: null });
    store = await backend.reopen(store);
    expect(await store.get('v')).toEqual({ name: 'v', driver: 'local', labels: { a: 'b' }, options: null, pending: true, refs: [] });
    await store.put({ name: 'v', driver: 'local', labels: { a: 'b' }, options: null });
    expect((await store.get('v'))?.pending).toBe(false);
    await store.close();
  });

  it('keeps refs as a set, persisted, and drops them with the record', async () => {
    const backend = await makeBackend();
    let store = await backend.open();
    await store.put({ name: 'v', driver: 'local', labels: null, options: null });
    await store.addRef('v', 'r1');
    await store.addRef('v', 'r1');
    await store.addRef('v', 'r2');
    await store.removeRef('v', 'absent');
    await store.removeRef('absent', 'r1');
    store = await backend.reopen(store);
    expect((await store.get('v'))?.refs.slice().sort()).toEqual(['r1', 'r2']);

    await store.removeRef('v', 'r1');
    expect((await store.get('v'))?.refs).toEqual(['r2']);

    await store.markPending({ name: 'v', driver: 'local', labels: null, options: null });
    expect((await store.get('v'))?.refs).toEqual(['r2']);
    await store.put({ name: 'v', driver: 'local', labels: null, options: null }, ['r3', 'r3']);
    expect((await store.get('v'))?.refs).toEqual(['r3']);

    await store.delete(['v', 'unknown']);
    expect(await store.get('v')).toBeUndefined();
    await store.put({ name: 'v', driver: 'local', labels: null, options: null });
    expect((await store.get('v'))?.refs).toEqual([]);
    await store.close();
  });

  it('refuses a ref on a volume it has no record of', async () => {
    const store = await (await makeBackend()).open();
    const err = await store.addRef('nope', 'r').catch((e: unknown) => e);
    expect(kindOf(err)).toBe('not-found');
    await store.close();
  });
});

describe('SqliteMetadataStore', () => {
  it('creates <dir>/metadata.sqlite 0600 in WAL mode with a schema version', async () => {
    const dir = join(await scratchDir(), 'volumes');
    const path = join(dir, 'metadata.sqlite');
    const store = await SqliteMetadataStore.open(path);
    await store.put({ name: 'v', driver: 'local', labels: null, options: null });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}-wal`)).mode & 0o777).toBe(0o600);
    // EXCLUSIVE locking keeps the WAL index in memory: no shared -shm file.
    expect((await readdir(dir)).sort()).toEqual(['metadata.sqlite', 'metadata.sqlite-reserve', 'metadata.sqlite-wal']);
    await store.close();

    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
  });

  it('tells its observers of every commit and of every WAL sync with the commits it carried', async () => {
    const commits: boolean[] = [];
    const syncs: Array<{ callers: number; failed: boolean }> = [];
    const store = await SqliteMetadataStore.open(join(await scratchDir(), 'metadata.sqlite'), {
      onCommit: (durable) => commits.push(durable),
      onWalSync: ({ callers, failed, durationMs }) => (expect(durationMs).toBeGreaterThanOrEqual(0), syncs.push({ callers, failed })),
    });
    await store.markPending({ name: 'p', driver: 'local', labels: null, options: null });
    await store.put({ name: 'a', driver: 'local', labels: null, options: null });
    await Promise.all(['b', 'c', 'd'].map((name) => store.put({ name, driver: 'local', labels: null, options: null })));
    await store.close();
    expect(commits).toEqual([false, true, true, true, true]);
    expect(syncs.reduce((n, s) => n + s.callers, 0)).toBe(4);
    expect(syncs.length).toBe(store.commits.syncs);
    expect(syncs.length).toBeLessThan(4);
    expect(syncs.every((s) => !s.failed)).toBe(true);
  });

  it('fails clearly while another holder has the database', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    const first = await SqliteMetadataStore.open(path);
    const started = Date.now();
    const err = await SqliteMetadataStore.open(path, { busyTimeoutMs: 100 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect((err as Error).message).toBe(`error while opening volume store metadata database (${path}): timeout`);
    expect(kindOf(err)).toBe('unavailable');
    expect(await first.get('anything')).toBeUndefined();
    await first.close();
    const again = await SqliteMetadataStore.open(path);
    await again.close();
  });

  it('has every acknowledged write in its files while still open (what a kill -9 leaves behind)', async () => {
    const dir = await scratchDir();
    const path = join(dir, 'metadata.sqlite');
    const store = await SqliteMetadataStore.open(path);
    await store.put({ name: 'kept', driver: 'local', labels: { a: '1' }, options: null });
    await store.addRef('kept', 'r1');
    await store.put({ name: 'gone', driver: 'local', labels: null, options: null });
    await store.delete(['gone']);

    const crashed = join(dir, 'crashed.sqlite');
    await copyFile(path, crashed);
    await copyFile(`${path}-wal`, `${crashed}-wal`);
    await store.close();

    const recovered = await SqliteMetadataStore.open(crashed);
    expect(await recovered.list()).toEqual([
      { name: 'kept', driver: 'local', labels: { a: '1' }, options: null, pending: false, refs: ['r1'] },
    ]);
    await recovered.close();
  });

  it('resolves a durable write only after a WAL sync that started after its commit; concurrent writes share one', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    const held: Array<() => void> = [];
    const syncWal = (fd: number): Promise<void> => {
      expect(fd).toBeGreaterThan(2);
      return new Promise<void>((resolve) => held.push(resolve));
    };
    const store = await SqliteMetadataStore.open(path, { syncWal });
    const done = new Set<string>();
    const put = (name: string): Promise<void> =>
      store.put({ name, driver: 'local', labels: null, options: null }).then(() => void done.add(name));

    const first = put('first');
    expect(held).toHaveLength(1);
    // Committed at once (readable), acknowledged only after the sync.
    expect((await store.get('first'))?.pending).toBe(false);
    const later = ['a', 'b', 'c', 'd'].map(put);
    const gone = store.delete(['first']);
    await new Promise((r) => setTimeout(r, 10));
    expect(done.size).toBe(0);
    expect(held).toHaveLength(1); // the others wait for the next sync, which starts after this one

    held.shift()!();
    await first;
    expect([...done]).toEqual(['first']);
    await vi.waitFor(() => expect(held).toHaveLength(1));
    expect(done.size).toBe(1); // a, b, c, d and the delete committed during the first sync: not yet
    held.shift()!();
    await Promise.all([...later, gone]);
    expect(store.commits).toEqual({ durable: 6, lazy: 0, syncs: 2 });

    // A failing write fails alone, and is not counted.
    await expect(store.addRef('nope', 'r')).rejects.toThrow('no metadata for volume nope');
    expect(held).toHaveLength(0);
    await store.close();
  });

  it('syncs the WAL file itself, also after SQLite restarted the log (checkpoints)', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    const synced: number[] = [];
    const syncWal = async (fd: number): Promise<void> => {
      const { fstatSync, fdatasyncSync, statSync } = await import('node:fs');
      expect(fstatSync(fd).ino).toBe(statSync(`${path}-wal`).ino);
      fdatasyncSync(fd);
      synced.push(fd);
    };
    const store = await SqliteMetadataStore.open(path, { syncWal });
    // Enough writes for several automatic checkpoints (1000 pages each) and log restarts.
    for (let i = 0; i < 3000; i++) await store.put({ name: `v${i}`, driver: 'local', labels: { i: String(i) }, options: null });
    expect(synced).toHaveLength(3000);
    await store.close();
    const reopened = await SqliteMetadataStore.open(path);
    expect(await reopened.list()).toHaveLength(3000);
    await reopened.close();
    // 3,000 fdatasyncs one after another: about 1 s on a quiet machine, many more on a busy disk.
  }, 60_000);

  it('waits for syncs in flight before it closes', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    const held: Array<() => void> = [];
    const store = await SqliteMetadataStore.open(path, { syncWal: () => new Promise<void>((resolve) => held.push(resolve)) });
    const put = store.put({ name: 'v', driver: 'local', labels: null, options: null });
    let closed = false;
    const closing = store.close().then(() => (closed = true));
    await expect(store.put({ name: 'w', driver: 'local', labels: null, options: null })).rejects.toThrow(/closed/);
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).toBe(false);
    held.shift()!();
    await put;
    await closing;
    const reopened = await SqliteMetadataStore.open(path);
    expect((await reopened.list()).map((r) => r.name)).toEqual(['v']);
    await reopened.close();
  });

  it('refuses a file that is not a database, and a schema from a newer berth', async () => {
    const dir = await scratchDir();
    const garbage = join(dir, 'garbage.sqlite');
    await writeFile(garbage, 'this is not a database, but it is long enough to have a header'.repeat(20));
    await expect(SqliteMetadataStore.open(garbage)).rejects.toThrow(
      `error while opening volume store metadata database (${garbage}): file is not a database`,
    );

    const newer = join(dir, 'newer.sqlite');
    const db = new Database(newer);
    db.pragma('user_version = 7');
    db.close();
    await expect(SqliteMetadataStore.open(newer)).rejects.toThrow(/unsupported schema version 7 \(this berth supports 2\)/);
  });

  it('migrates a database of schema version 1 in place, keeping its records and references', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    const db = new Database(path);
    db.exec(`
      CREATE TABLE volumes (name TEXT PRIMARY KEY NOT NULL, driver TEXT NOT NULL, labels TEXT, options TEXT, pending INTEGER NOT NULL DEFAULT 0) STRICT;
      CREATE TABLE refs (name TEXT NOT NULL REFERENCES volumes (name) ON DELETE CASCADE, ref TEXT NOT NULL, PRIMARY KEY (name, ref)) STRICT;
      INSERT INTO volumes VALUES ('old', 'local', '{"a":"1"}', NULL, 0);
      INSERT INTO refs VALUES ('old', 'r1');
    `);
    db.pragma('user_version = 1');
    db.close();
    const store = await SqliteMetadataStore.open(path);
    expect(store.startedEmpty).toBeUndefined();
    expect(await store.list()).toEqual([{ name: 'old', driver: 'local', labels: { a: '1' }, options: null, pending: false, refs: ['r1'] }]);
    await store.put({ name: 'new', driver: 'local', labels: null, options: null, createdAt: 1234 });
    expect((await store.get('new'))?.createdAt).toBe(1234);
    // The references still belong to their volume: they go with it.
    await store.delete(['old']);
    await store.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(2);
    expect((check.pragma('table_info(volumes)') as Array<{ name: string }>).map((c) => c.name)).toEqual(['name', 'driver', 'pending', 'created_at', 'labels', 'options']);
    expect(check.prepare('SELECT count(*) AS n FROM refs').get()).toEqual({ n: 0 });
    check.close();
  });

  it('acknowledges a pending create by rewriting one page, whatever the size of its labels', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    const store = await SqliteMetadataStore.open(path);
    const record = { name: 'fat', driver: 'local', labels: { blob: 'x'.repeat(256 * 1024) }, options: null };
    await store.put({ name: 'warm-up', driver: 'local', labels: null, options: null });
    await store.markPending({ ...record, createdAt: 1_800_000_000_000 });
    const before = (await stat(`${path}-wal`)).size;
    await store.put({ ...record, createdAt: 1_800_000_000_123 });
    // One 4 KiB page and its frame header (24 bytes) in the WAL; 65 pages were the labels.
    expect((await stat(`${path}-wal`)).size - before).toBe(4096 + 24);
    expect((await store.get('fat'))?.createdAt).toBe(1_800_000_000_123);
    await store.close();
  });

  it('reads a damaged map cell as no map rather than failing', async () => {
    const path = join(await scratchDir(), 'metadata.sqlite');
    let store = await SqliteMetadataStore.open(path);
    await store.put({ name: 'v', driver: 'local', labels: { a: '1' }, options: { o: 'x' } });
    await store.close();
    const db = new Database(path);
    db.prepare(`UPDATE volumes SET labels = '{not json', options = '[1]'`).run();
    db.close();
    store = await SqliteMetadataStore.open(path);
    expect(await store.get('v')).toMatchObject({ labels: null, options: null });
    await store.close();
  });
});
