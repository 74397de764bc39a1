import { closeSync, fdatasync, fstatSync, fsyncSync, openSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BerthError, notFound } from '@berth/errdefs';
import { GroupSync } from '@berth/locker';
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
  /**
   * How the `-wal` file is made durable (default: `fdatasync(2)` on the thread pool). For tests
   * that need to hold a sync back or count them; it must not resolve before the data is on disk.
   */
  syncWal?: ((fd: number) => Promise<void>) | undefined;
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
 * mode 0600, with group commit: as durable as `synchronous=FULL`, but concurrent durable writes
 * share one fsync.
 *
 * Group commit: the connection runs with `synchronous=NORMAL`, so a commit only appends its frames
 * to the `-wal` file (no fsync); SQLite still syncs the WAL before every checkpoint and the
 * database after it, and syncs a new WAL header when the log restarts. A durable write commits at
 * once, in its own transaction (its errors are its own), and its promise resolves only after an
 * `fdatasync` of the `-wal` file that *started after* its commit has completed: its frames (and
 * everything before them) are then on disk, or were checkpointed into the synced database file. Writes
 * that commit while a sync is in flight share the next one. `markPending` commits without waiting
 * for any sync (its record need not be durable).
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
  readonly #walPath: string;
  readonly #syncWal: (fd: number) => Promise<void>;
  readonly #walSync: GroupSync;
  /** The open `-wal` file and its identity, re-opened when SQLite replaced the file. */
  #wal: { fd: number; dev: number; ino: number } | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #durableCommits = 0;
  #lazyCommits = 0;

  private constructor(path: string, db: Database.Database, options: SqliteMetadataStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#statements = prepare(db);
    this.#walPath = `${path}-wal`;
    this.#syncWal = options.syncWal ?? fdatasyncAsync;
    this.#walSync = new GroupSync(() => this.#syncWalNow());
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
      // Commits are made durable by the store's own (shared) fdatasync of the WAL: see the class.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      // Not synced here: the first durable write's sync of the WAL covers the schema's frames too.
      migrate(db);
      return new SqliteMetadataStore(path, db, options);
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
    this.#commit((s) => s.upsert.run(toRow(record, 1)));
    this.#lazyCommits++;
  }

  put(record: VolumeRecordInput, refs: readonly string[] = []): Promise<void> {
    return this.#writeDurably((s) => {
      s.upsert.run(toRow(record, 0));
      s.deleteRefs.run(record.name);
      for (const ref of new Set(refs)) s.insertRef.run(record.name, ref);
    });
  }

  /**
   * Inserts (or replaces) many records, without refs, in one durable transaction: all of them or,
   * on an error, none. For adopting another daemon's metadata.
   */
  importRecords(records: Iterable<VolumeRecordInput>): Promise<void> {
    return this.#writeDurably((s) => {
      for (const record of records) {
        s.upsert.run(toRow(record, 0));
        s.deleteRefs.run(record.name);
      }
    });
  }

  async delete(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    return this.#writeDurably((s) => {
      for (const name of names) s.deleteVolume.run(name);
    });
  }

  addRef(name: string, ref: string): Promise<void> {
    return this.#writeDurably((s) => {
      if (s.volume.get(name) === undefined) throw notFound(`no metadata for volume ${name}`);
      s.insertRef.run(name, ref);
    });
  }

  removeRef(name: string, ref: string): Promise<void> {
    return this.#writeDurably((s) => s.deleteRef.run(name, ref));
  }

  /**
   * For metrics and tests: commits so far, acknowledged after an fsync (`durable`) or left to the
   * page cache (`lazy`), and the fsyncs of the WAL that made the durable ones so (`syncs`; fewer
   * than `durable` when concurrent writes shared them).
   */
  get commits(): { durable: number; lazy: number; syncs: number } {
    return { durable: this.#durableCommits, lazy: this.#lazyCommits, syncs: this.#walSync.runs };
  }

  /** Waits for syncs in flight (their writers are acknowledged), then closes the database. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#walSync.idle();
      if (this.#wal !== undefined) closeSync(this.#wal.fd);
      this.#wal = undefined;
      this.#db.close();
    })();
    return this.#closing;
  }

  #live(): ReturnType<typeof prepare> {
    if (this.#closed) throw new BerthError('unavailable', `volume metadata database is closed (${this.path})`);
    return this.#statements;
  }

  /** Commits `fn` in its own transaction, at once; the data is in the page cache when it returns. */
  #commit(fn: (statements: ReturnType<typeof prepare>) => void): void {
    const statements = this.#live();
    this.#db.transaction(() => fn(statements)).immediate();
  }

  /** Commits at once, and resolves once a WAL sync that started after the commit has completed. */
  async #writeDurably(fn: (statements: ReturnType<typeof prepare>) => void): Promise<void> {
    this.#commit(fn);
    await this.#walSync.sync();
    this.#durableCommits++;
  }

  /**
   * One fdatasync of the `-wal` file. Opened once and kept: SQLite keeps the file for as long as the
   * connection is open (it restarts the log from its start after a checkpoint, in place). Should it
   * ever be replaced (another inode at the path), the new one is opened: checked here, synchronously,
   * so no SQLite call runs between the check and the start of the sync. A file that is gone holds
   * nothing to sync: SQLite deletes it only after checkpointing it into the (synced) database.
   */
  #syncWalNow(): Promise<void> {
    const current = statSync(this.#walPath, { throwIfNoEntry: false });
    if (current === undefined) return Promise.resolve();
    if (this.#wal === undefined || this.#wal.ino !== current.ino || this.#wal.dev !== current.dev) {
      if (this.#wal !== undefined) closeSync(this.#wal.fd);
      this.#wal = undefined;
      const fd = openSync(this.#walPath, 'r');
      const st = fstatSync(fd);
      this.#wal = { fd, dev: st.dev, ino: st.ino };
    }
    return this.#syncWal(this.#wal.fd);
  }
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err === null ? resolve() : reject(err))));
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
