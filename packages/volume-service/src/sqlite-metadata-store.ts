import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BerthError, notFound } from '@berth/errdefs';
import { messageOf } from './op-error.js';
import type { MetadataStore, StringMap, VolumeRecord, VolumeRecordInput } from './metadata-store.js';

export const METADATA_FILE_NAME = 'metadata.sqlite';

const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE volumes (
    name    TEXT PRIMARY KEY NOT NULL,
    driver  TEXT NOT NULL,
    labels  TEXT,
    options TEXT,
    pending INTEGER NOT NULL DEFAULT 0
  ) STRICT;
  CREATE TABLE refs (
    name TEXT NOT NULL REFERENCES volumes (name) ON DELETE CASCADE,
    ref  TEXT NOT NULL,
    PRIMARY KEY (name, ref)
  ) STRICT;
`;

export interface SqliteMetadataStoreOptions {
  /** How long to wait for another holder of the database before giving up (default 1000 ms, as moby's bolt timeout). */
  busyTimeoutMs?: number | undefined;
}

interface VolumeRow {
  name: string;
  driver: string;
  labels: string | null;
  options: string | null;
  pending: number;
}

interface RefRow {
  name: string;
  ref: string;
}

/**
 * The embedded `MetadataStore`: one SQLite file (`<data-root>/volumes/metadata.sqlite`), WAL,
 * `synchronous=FULL`, mode 0600.
 *
 * Single writer: the connection runs in `locking_mode=EXCLUSIVE` and takes the write lock while
 * opening, so a second daemon on the same data-root fails after `busyTimeoutMs` with moby's
 * `error while opening volume store metadata database (<path>): timeout`. The kernel drops the lock
 * when the holder dies, so there is no stale lock file to clean up after `kill -9`.
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #statements: ReturnType<typeof prepare>;
  #closed = false;
  #durableCommits = 0;
  #lazyCommits = 0;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.#db = db;
    this.#statements = prepare(db);
  }

  static async open(path: string, options: SqliteMetadataStoreOptions = {}): Promise<SqliteMetadataStore> {
    await createFile(path);
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { timeout: options.busyTimeoutMs ?? 1000 });
      // EXCLUSIVE before WAL: the WAL index then lives in heap memory and no -shm file is shared.
      db.pragma('locking_mode = EXCLUSIVE');
      const mode: unknown = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`cannot enable WAL journal mode (got ${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new SqliteMetadataStore(path, db);
    } catch (err) {
      db?.close();
      throw openError(path, err);
    }
  }

  async list(): Promise<VolumeRecord[]> {
    const s = this.#live();
    const refs = new Map<string, string[]>();
    for (const { name, ref } of s.allRefs.all() as RefRow[]) {
      const list = refs.get(name);
      if (list === undefined) refs.set(name, [ref]);
      else list.push(ref);
    }
    return (s.allVolumes.all() as VolumeRow[]).map((row) => toRecord(row, refs.get(row.name) ?? []));
  }

  async get(name: string): Promise<VolumeRecord | undefined> {
    const s = this.#live();
    const row = s.volume.get(name) as VolumeRow | undefined;
    if (row === undefined) return undefined;
    return toRecord(row, (s.refsOf.all(name) as RefRow[]).map((r) => r.ref));
  }

  async markPending(record: VolumeRecordInput): Promise<void> {
    this.#write(false, (s) => s.upsert.run(toRow(record, 1)));
  }

  async put(record: VolumeRecordInput, refs: readonly string[] = []): Promise<void> {
    this.#write(true, (s) => {
      s.upsert.run(toRow(record, 0));
      s.deleteRefs.run(record.name);
      for (const ref of new Set(refs)) s.insertRef.run(record.name, ref);
    });
  }

  async delete(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    this.#write(true, (s) => {
      for (const name of names) s.deleteVolume.run(name);
    });
  }

  async addRef(name: string, ref: string): Promise<void> {
    this.#write(true, (s) => {
      if (s.volume.get(name) === undefined) throw notFound(`no metadata for volume ${name}`);
      s.insertRef.run(name, ref);
    });
  }

  async removeRef(name: string, ref: string): Promise<void> {
    this.#write(true, (s) => s.deleteRef.run(name, ref));
  }

  /** Commits so far, fsync'd (`durable`) or left to the page cache (`lazy`); for metrics. */
  get commits(): { durable: number; lazy: number } {
    return { durable: this.#durableCommits, lazy: this.#lazyCommits };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #live(): ReturnType<typeof prepare> {
    if (this.#closed) throw new BerthError('unavailable', `volume metadata database is closed (${this.path})`);
    return this.#statements;
  }

  /**
   * The one write path: a transaction committed with an fsync (`durable`) or left to the page cache.
   * Group commit, when it comes, belongs here.
   */
  #write(durable: boolean, fn: (statements: ReturnType<typeof prepare>) => void): void {
    const statements = this.#live();
    // In WAL mode NORMAL skips the fsync of this commit; the next FULL commit syncs everything before it.
    this.#db.pragma(`synchronous = ${durable ? 'FULL' : 'NORMAL'}`);
    this.#db.transaction(() => fn(statements)).immediate();
    if (durable) this.#durableCommits++;
    else this.#lazyCommits++;
  }
}

function prepare(db: Database.Database) {
  return {
    allVolumes: db.prepare('SELECT name, driver, labels, options, pending FROM volumes ORDER BY name'),
    allRefs: db.prepare('SELECT name, ref FROM refs ORDER BY name, ref'),
    volume: db.prepare('SELECT name, driver, labels, options, pending FROM volumes WHERE name = ?'),
    refsOf: db.prepare('SELECT name, ref FROM refs WHERE name = ? ORDER BY ref'),
    upsert: db.prepare(
      `INSERT INTO volumes (name, driver, labels, options, pending) VALUES (@name, @driver, @labels, @options, @pending)
       ON CONFLICT (name) DO UPDATE SET driver = excluded.driver, labels = excluded.labels,
         options = excluded.options, pending = excluded.pending`,
    ),
    deleteVolume: db.prepare('DELETE FROM volumes WHERE name = ?'),
    deleteRefs: db.prepare('DELETE FROM refs WHERE name = ?'),
    insertRef: db.prepare('INSERT OR IGNORE INTO refs (name, ref) VALUES (?, ?)'),
    deleteRef: db.prepare('DELETE FROM refs WHERE name = ? AND ref = ?'),
  };
}

function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version !== 0) {
      throw new Error(`unsupported schema version ${version} (this berth supports ${SCHEMA_VERSION})`);
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Creates the directory and an empty 0600 file, so SQLite (and its -wal file) inherit that mode. */
async function createFile(path: string): Promise<void> {
  const dir = dirname(path);
  // 0701 as the local driver creates `<data-root>/volumes`: traversable, not listable.
  await mkdir(dir, { recursive: true, mode: 0o701 });
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw openError(path, err);
  }
  closeSync(fd);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function openError(path: string, err: unknown): BerthError {
  const code = (err as { code?: unknown }).code;
  const busy = code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
  const detail = busy ? 'timeout' : messageOf(err);
  const message = `error while opening volume store metadata database (${path}): ${detail}`;
  return new BerthError(busy ? 'unavailable' : 'system', message, { cause: err });
}

function toRow(record: VolumeRecordInput, pending: 0 | 1) {
  return {
    name: record.name,
    driver: record.driver,
    labels: record.labels === null ? null : JSON.stringify(record.labels),
    options: record.options === null ? null : JSON.stringify(record.options),
    pending,
  };
}

function toRecord(row: VolumeRow, refs: string[]): VolumeRecord {
  return {
    name: row.name,
    driver: row.driver,
    labels: parseMap(row.labels),
    options: parseMap(row.options),
    pending: row.pending !== 0,
    refs,
  };
}

/** Lenient on purpose: one damaged cell must not keep the daemon from starting. */
function parseMap(text: string | null): StringMap | null {
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : String(v)]));
}
