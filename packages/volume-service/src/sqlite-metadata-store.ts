import { accessSync, closeSync, constants, copyFileSync, fdatasync, fstatSync, fsyncSync, openSync, statfsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { BerthError, notFound } from '@berth/errdefs';
import { GroupSync, type GroupSyncRun } from '@berth/locker';
import { noopLogger, type Logger } from '@berth/logger';
import { messageOf } from './op-error.js';
import type { MetadataStore, StringMap, VolumeRecord, VolumeRecordInput } from './metadata-store.js';
import { SpaceReserve } from './space-reserve.js';

export const METADATA_FILE_NAME = 'metadata.sqlite';

/** The space kept in `<database>-reserve` for the writes that free space (see the class). */
export const METADATA_RESERVE_BYTES = 1024 * 1024;
/** How much of the reserve one write that frees space may take (many deletes' worth of `-wal`). */
const RESERVE_SLICE_BYTES = 128 * 1024;
/** SQLite's default `wal_autocheckpoint`, in pages. */
const DEFAULT_AUTOCHECKPOINT_PAGES = 1000;

/**
 * The names of the files the store keeps in the database's directory: the database, SQLite's
 * companions, the reserve. Nothing else may take these names there (a local volume, say).
 */
export const METADATA_FILE_NAMES: readonly string[] = ['', '-wal', '-shm', '-journal', '-reserve'].map((suffix) => METADATA_FILE_NAME + suffix);

/** How the database was found at open when it held no records yet (see `SqliteMetadataStore.startedEmpty`). */
export interface EmptyStart {
  /** `missing`: there was no file; `empty`: a file without berth's schema (0 bytes, say). */
  readonly reason: 'missing' | 'empty';
  /** Where the file found was copied before it was used (with its `-wal`, if any); for `empty` only. */
  readonly copy: string | undefined;
}

/** 2 added `volumes.created_at`; a version-1 database is migrated in place when opened. */
const SCHEMA_VERSION = 2;

/**
 * The large columns come last: a record whose labels do not fit in its page continues in
 * overflow pages, and a field stored after them would live in the last of those. `pending` and
 * `created_at` change when a create is acknowledged; stored before the maps, that commit rewrites
 * one page, whatever the size of the labels.
 */
const VOLUMES_TABLE = (name: string): string => `
  CREATE TABLE ${name} (
    name       TEXT PRIMARY KEY NOT NULL,
    driver     TEXT NOT NULL,
    pending    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER,
    labels     TEXT,
    options    TEXT
  ) STRICT;
`;

const SCHEMA = `
  ${VOLUMES_TABLE('volumes')}
  CREATE TABLE refs (
    name TEXT NOT NULL REFERENCES volumes (name) ON DELETE CASCADE,
    ref  TEXT NOT NULL,
    PRIMARY KEY (name, ref)
  ) STRICT;
`;

/**
 * What each older schema version needs to become the current one; run with foreign keys off (the
 * table is rebuilt: SQLite's way of reordering columns, whose dropped table would take the
 * references with it otherwise).
 */
const MIGRATIONS: Readonly<Record<number, string>> = {
  1: `
    ${VOLUMES_TABLE('volumes_v2')}
    INSERT INTO volumes_v2 (name, driver, pending, labels, options) SELECT name, driver, pending, labels, options FROM volumes;
    DROP TABLE volumes;
    ALTER TABLE volumes_v2 RENAME TO volumes;
  `,
};

export interface SqliteMetadataStoreOptions {
  /** How long to wait for another holder of the database before giving up (default 1000 ms, as moby's bolt timeout). */
  busyTimeoutMs?: number | undefined;
  /**
   * How the `-wal` file is made durable (default: `fdatasync(2)` on the thread pool). For tests
   * that need to hold a sync back or count them; it must not resolve before the data is on disk.
   */
  syncWal?: ((fd: number) => Promise<void>) | undefined;
  /**
   * The space kept in `<database>-reserve` for removals on a full disk (default
   * {@link METADATA_RESERVE_BYTES}); 0 for a store that is only open for a moment (adoption,
   * export), which then makes no reserve file.
   */
  reserveBytes?: number | undefined;
  /** Where the store says what went wrong with the disk (a full disk, a deleted `-wal`). */
  logger?: Logger | undefined;
  /** Told of every commit: acknowledged after a WAL sync (`durable`) or not (metrics). */
  onCommit?: ((durable: boolean) => void) | undefined;
  /** Told of every fdatasync of the WAL: its duration and the commits it made durable (metrics). */
  onWalSync?: ((run: GroupSyncRun) => void) | undefined;
}

interface VolumeRow {
  name: string;
  driver: string;
  labels: string | null;
  options: string | null;
  pending: number;
  created_at: number | null;
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
 *
 * A full disk: `<database>-reserve` holds {@link METADATA_RESERVE_BYTES} of space. A write that
 * frees space (`delete`, `removeRef`) and fails for a full disk shrinks the reserve by a slice
 * and is tried again, so removing volumes and releasing references keeps working, also when
 * whatever filled the disk takes the space freed in between; other writes fail with SQLite's
 * `database or disk is full`. Until the reserve is whole again, every durable write is followed
 * by an attempt to give space back (a `VACUUM` when a quarter of the database is free pages, a
 * `wal_checkpoint(TRUNCATE)`), and the reserve is topped up once twice what it lacks is free.
 *
 * A `-wal` deleted or replaced behind the store's back (SQLite would go on writing into the
 * unlinked file, and a crash would lose every write since): each WAL sync checks that the file at
 * the path is still the one open (a `stat` it needs anyway). When it is not, the store logs it as an
 * error, checkpoints every committed frame into the (synced) database and reopens the connection,
 * which starts a new `-wal`, before the writes waiting for that sync are acknowledged.
 */
export class SqliteMetadataStore implements MetadataStore {
  readonly path: string;
  /**
   * Set when the database held no records of berth's yet: a first start, or a file that was
   * deleted or emptied. The volume service then rebuilds what it can (see `rebuildRecords`).
   */
  readonly startedEmpty: EmptyStart | undefined;
  #db: Database.Database;
  #statements: Statements;
  readonly #options: SqliteMetadataStoreOptions;
  readonly #logger: Logger;
  readonly #walPath: string;
  readonly #reserve: SpaceReserve;
  readonly #syncWal: (fd: number) => Promise<void>;
  readonly #walSync: GroupSync;
  /** The open `-wal` file and its identity (see the class on a `-wal` replaced). */
  #wal: { fd: number; dev: number; ino: number } | undefined;
  /** The reserve was given up for a full disk and is not back yet. */
  #lowOnSpace = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #durableCommits = 0;
  #lazyCommits = 0;
  readonly #onCommit: ((durable: boolean) => void) | undefined;

  private constructor(path: string, db: Database.Database, options: SqliteMetadataStoreOptions, startedEmpty: EmptyStart | undefined) {
    this.path = path;
    this.startedEmpty = startedEmpty;
    this.#db = db;
    this.#statements = prepare(db);
    this.#options = options;
    this.#logger = options.logger ?? noopLogger;
    this.#walPath = `${path}-wal`;
    this.#reserve = new SpaceReserve(`${path}-reserve`, { bytes: options.reserveBytes ?? METADATA_RESERVE_BYTES, sliceBytes: RESERVE_SLICE_BYTES });
    this.#syncWal = options.syncWal ?? fdatasyncAsync;
    this.#walSync = new GroupSync(() => this.#syncWalNow(), { onRun: options.onWalSync });
    this.#onCommit = options.onCommit;
    this.#watchWal();
    if (!this.#reserve.topUp()) {
      this.#setLowOnSpace(true);
      this.#logger.warn('No room for the whole volume metadata reserve: the disk is full', { path: this.#reserve.path });
    }
  }

  static async open(path: string, options: SqliteMetadataStoreOptions = {}): Promise<SqliteMetadataStore> {
    const existed = await createFile(path);
    let db: Database.Database | undefined;
    try {
      db = connect(path, options);
      let startedEmpty: EmptyStart | undefined;
      if ((db.pragma('user_version', { simple: true }) as number) === 0) {
        startedEmpty = existed ? { reason: 'empty', copy: keepCopy(path) } : { reason: 'missing', copy: undefined };
      }
      // Not synced here: the first durable write's sync of the WAL covers the schema's frames too.
      migrate(db);
      // A `-wal` a crash or a full disk left large shrinks back to nothing (a no-op when empty).
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } catch (err) {
        if (!isDiskFull(err)) throw err;
      }
      return new SqliteMetadataStore(path, db, options, startedEmpty);
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
    this.#onCommit?.(false);
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
    return this.#writeDurably(
      (s) => {
        for (const name of names) s.deleteVolume.run(name);
      },
      { freesSpace: true },
    );
  }

  addRef(name: string, ref: string): Promise<void> {
    return this.#writeDurably((s) => {
      if (s.volume.get(name) === undefined) throw notFound(`no metadata for volume ${name}`);
      s.insertRef.run(name, ref);
    });
  }

  removeRef(name: string, ref: string): Promise<void> {
    return this.#writeDurably((s) => s.deleteRef.run(name, ref), { freesSpace: true });
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

  #live(): Statements {
    if (this.#closed) throw new BerthError('unavailable', `volume metadata database is closed (${this.path})`);
    return this.#statements;
  }

  /**
   * Commits `fn` in its own transaction, at once; the data is in the page cache when it returns. A
   * write that `freesSpace` and fails for a full disk takes slices of the reserve until it commits.
   */
  #commit(fn: (statements: Statements) => void, options: { freesSpace?: boolean } = {}): void {
    const statements = this.#live();
    for (;;) {
      try {
        statements.transaction.immediate(fn);
        return;
      } catch (err) {
        if (options.freesSpace !== true || !isDiskFull(err) || !this.#releaseReserve()) throw err;
      }
    }
  }

  /** Commits at once, and resolves once a WAL sync that started after the commit has completed. */
  async #writeDurably(fn: (statements: Statements) => void, options: { freesSpace?: boolean } = {}): Promise<void> {
    this.#commit(fn, options);
    await this.#walSync.sync();
    this.#durableCommits++;
    this.#onCommit?.(true);
    if (this.#lowOnSpace && !this.#closed) this.#giveSpaceBack();
  }

  /**
   * One fdatasync of the `-wal` file, opened once and kept: SQLite keeps the file for as long as the
   * connection is open (it restarts the log from its start after a checkpoint, in place, and never
   * deletes it before closing). So a file gone from the path, or another one there, was deleted or
   * replaced behind the store's back: see the class. Checked here, synchronously, so no SQLite call
   * runs between the check and the start of the sync.
   */
  #syncWalNow(): Promise<void> {
    const current = statSync(this.#walPath, { throwIfNoEntry: false });
    // A commit came before this sync, so the file is there, and it is the one open once known.
    if (current === undefined || (this.#wal !== undefined && (this.#wal.ino !== current.ino || this.#wal.dev !== current.dev))) {
      this.#recoverFromLostWal(current === undefined ? 'deleted' : 'replaced');
      return Promise.resolve();
    }
    if (this.#wal === undefined) this.#watchWal();
    return this.#wal === undefined ? Promise.resolve() : this.#syncWal(this.#wal.fd);
  }

  /** Opens the `-wal` file SQLite writes, to sync it and to know it again. */
  #watchWal(): void {
    if (this.#wal !== undefined) closeSync(this.#wal.fd);
    this.#wal = undefined;
    let fd: number;
    try {
      fd = openSync(this.#walPath, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const st = fstatSync(fd);
    this.#wal = { fd, dev: st.dev, ino: st.ino };
  }

  /** Makes the frames only the lost `-wal` held durable in the database, and starts a new `-wal`. */
  #recoverFromLostWal(how: 'deleted' | 'replaced'): void {
    this.#logger.error(
      `The write-ahead log ${this.#walPath} of the volume metadata was ${how} while berthd runs: ` +
        `the writes since then are only in a deleted file. Checkpointing them into ${this.path} and reopening the database before acknowledging more writes`,
      { path: this.path },
    );
    // Copies every committed frame into the database and syncs it (synchronous=NORMAL does).
    this.#db.pragma('wal_checkpoint(TRUNCATE)');
    if (this.#wal !== undefined) closeSync(this.#wal.fd);
    this.#wal = undefined;
    this.#db.close();
    this.#db = connect(this.path, this.#options);
    this.#statements = prepare(this.#db);
    this.#watchWal();
    if (this.#lowOnSpace) this.#setLowOnSpace(true);
    this.#logger.warn('The volume metadata is safe again, with a new write-ahead log', { path: this.#walPath });
  }

  /** Frees a slice of the reserve for a write that frees space; false when there is none left. */
  #releaseReserve(): boolean {
    const left = this.#reserve.takeSlice();
    if (left === undefined) return false;
    this.#setLowOnSpace(true);
    this.#logger.warn('The disk holding the volume metadata is full: took a slice of its reserve so that removals keep working', {
      path: this.path,
      reserve: this.#reserve.path,
      left,
    });
    return true;
  }

  /**
   * After a durable write while the reserve is not whole: compacts the database when much of it is
   * free pages, moves the `-wal` into it and truncates it, and tops the reserve up once there is
   * room for twice what it lacks. Each step runs only when the disk has the room it needs (a step
   * that failed half-way would keep what it wrote, and eat the space removals need), and may still
   * fail; the next write tries again.
   */
  #giveSpaceBack(): void {
    const available = (): number => {
      const { bavail, bsize } = statfsSync(dirname(this.path));
      return bavail * bsize;
    };
    try {
      const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
      const pages = this.#db.pragma('page_count', { simple: true }) as number;
      const free = this.#db.pragma('freelist_count', { simple: true }) as number;
      // VACUUM writes the live pages into the -wal; the checkpoint then grows the database file to them.
      if (free > 0 && free * 4 >= pages && 2 * (pages - free) * pageSize <= available()) this.#db.exec('VACUUM');
      const size = (this.#db.pragma('page_count', { simple: true }) as number) * pageSize;
      if (size - statSync(this.path).size > available()) return;
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
      if (available() < 2 * this.#reserve.lacking() || !this.#reserve.topUp()) return;
    } catch (err) {
      this.#logger.debug('No space to give back yet', { path: this.path, error: messageOf(err) });
      return;
    }
    this.#setLowOnSpace(false);
    this.#logger.info('The disk holding the volume metadata has room again: its reserve is whole', { reserve: this.#reserve.path });
  }

  /**
   * Low on space, SQLite's own checkpoints stop: one that cannot finish still grows the database
   * file until the disk is full, taking the space freed for removals. `#giveSpaceBack` checkpoints
   * when there is room.
   */
  #setLowOnSpace(low: boolean): void {
    this.#lowOnSpace = low;
    this.#db.pragma(`wal_autocheckpoint = ${low ? 0 : DEFAULT_AUTOCHECKPOINT_PAGES}`);
  }
}

/** The connection as the store runs it (see the class). */
function connect(path: string, options: SqliteMetadataStoreOptions): Database.Database {
  const db = new Database(path, { timeout: options.busyTimeoutMs ?? 1000 });
  try {
    // EXCLUSIVE before WAL: the WAL index then lives in heap memory and no -shm file is shared.
    db.pragma('locking_mode = EXCLUSIVE');
    const mode: unknown = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`cannot enable WAL journal mode (got ${String(mode)})`);
    // Commits are made durable by the store's own (shared) fdatasync of the WAL: see the class.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // A VACUUM on a full disk must not need a temporary file elsewhere.
    db.pragma('temp_store = MEMORY');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function isDiskFull(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'SQLITE_FULL';
}

/** Copies a database found without berth's schema (and its `-wal`) aside, before it is used: `.metadata.sqlite.empty-<time>`. */
function keepCopy(path: string): string {
  const copy = join(dirname(path), `.${basename(path)}.empty-${new Date().toISOString().replace(/[:.]/g, '')}`);
  copyFileSync(path, copy);
  try {
    copyFileSync(`${path}-wal`, `${copy}-wal`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return copy;
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err === null ? resolve() : reject(err))));
}


type Statements = ReturnType<typeof prepareStatements> & {
  /** The transaction every write runs in, made once: making one costs more than a small write. */
  readonly transaction: Database.Transaction<(fn: (statements: Statements) => void) => void>;
};

function prepare(db: Database.Database): Statements {
  const statements = prepareStatements(db);
  const all: Statements = { ...statements, transaction: db.transaction((fn: (s: Statements) => void) => fn(all)) };
  return all;
}

function prepareStatements(db: Database.Database) {
  return {
    allVolumes: db.prepare('SELECT name, driver, labels, options, pending, created_at FROM volumes ORDER BY name'),
    allRefs: db.prepare('SELECT name, ref FROM refs ORDER BY name, ref'),
    volume: db.prepare('SELECT name, driver, labels, options, pending, created_at FROM volumes WHERE name = ?'),
    refsOf: db.prepare('SELECT name, ref FROM refs WHERE name = ? ORDER BY ref'),
    upsert: db.prepare(
      `INSERT INTO volumes (name, driver, labels, options, pending, created_at) VALUES (@name, @driver, @labels, @options, @pending, @created_at)
       ON CONFLICT (name) DO UPDATE SET driver = excluded.driver, labels = excluded.labels,
         options = excluded.options, pending = excluded.pending, created_at = excluded.created_at`,
    ),
    deleteVolume: db.prepare('DELETE FROM volumes WHERE name = ?'),
    deleteRefs: db.prepare('DELETE FROM refs WHERE name = ?'),
    insertRef: db.prepare('INSERT OR IGNORE INTO refs (name, ref) VALUES (?, ?)'),
    deleteRef: db.prepare('DELETE FROM refs WHERE name = ? AND ref = ?'),
  };
}

function migrate(db: Database.Database): void {
  // Outside the transaction: SQLite ignores the pragma inside one.
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      let version = db.pragma('user_version', { simple: true }) as number;
      if (version === SCHEMA_VERSION) return;
      if (version === 0) {
        db.exec(SCHEMA);
      } else {
        if (version > SCHEMA_VERSION || MIGRATIONS[version] === undefined) {
          throw new Error(`unsupported schema version ${version} (this berth supports ${SCHEMA_VERSION})`);
        }
        for (; version < SCHEMA_VERSION; version++) db.exec(MIGRATIONS[version]!);
        const broken = db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) throw new Error(`the migration left ${broken.length} references without their volume`);
      }
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/**
 * Creates the directory and an empty 0600 file, so SQLite (and its -wal file) inherit that mode;
 * true when the file was there already.
 */
async function createFile(path: string): Promise<boolean> {
  const dir = dirname(path);
  let fd: number;
  try {
    // 0701 as the local driver creates `<data-root>/volumes`: traversable, not listable.
    await mkdir(dir, { recursive: true, mode: 0o701 });
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return true;
    throw openError(path, err);
  }
  closeSync(fd);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return false;
}

function openError(path: string, err: unknown): BerthError {
  const code = (err as { code?: unknown }).code;
  const busy = code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
  let detail = busy ? 'timeout' : messageOf(err);
  if (!busy && isReadOnlyFileSystem(dirname(path))) {
    // SQLite says `disk I/O error` or `attempt to write a readonly database`.
    detail = `${dirname(path)} is on a read-only file system`;
  } else if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    detail +=
      ' (nothing was changed; to start anyway, move it and its -wal aside: the records of the local volumes are then rebuilt from their directories, without labels and references)';
  }
  const message = `error while opening volume store metadata database (${path}): ${detail}`;
  return new BerthError(busy ? 'unavailable' : 'system', message, { cause: err });
}

function isReadOnlyFileSystem(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EROFS';
  }
}

function toRow(record: VolumeRecordInput, pending: 0 | 1) {
  return {
    name: record.name,
    driver: record.driver,
    labels: record.labels === null ? null : JSON.stringify(record.labels),
    options: record.options === null ? null : JSON.stringify(record.options),
    pending,
    created_at: record.createdAt ?? null,
  };
}

function toRecord(row: VolumeRow, refs: string[]): VolumeRecord {
  return {
    name: row.name,
    driver: row.driver,
    labels: parseMap(row.labels),
    options: parseMap(row.options),
    ...(row.created_at === null ? {} : { createdAt: row.created_at }),
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
