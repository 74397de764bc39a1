import { lookup } from 'node:dns/promises';
import { closeSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { chmod, mkdir, realpath, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { BerthError, invalidParameter, system } from '@berth/errdefs';
import { GroupSync, KeyedLock, type GroupSyncRun } from '@berth/locker';
import { noopLogger, type Logger } from '@berth/logger';
import { goQuote } from '@berth/gocompat';
import { fsyncDir } from '@berth/host';
import { createFile, isNotFound, writeFileAtomic, type OpenFile } from './fs-util.js';
import {
  decodeOptsJson,
  encodeOptsJson,
  toLocalVolumeOptions,
  validateLocalOptions,
  type LocalVolumeOptions,
} from './local-options.js';
import { LocalVolume, UNREAD_OPTIONS, type LocalVolumeContext } from './local-volume.js';
import type { ResolveAddress } from './mount-options.js';
import type { MountInfo } from './mountinfo.js';
import { SystemMounter, type Mounter } from './mounter.js';
import { validateLocalVolumeName } from './names.js';
import { makeVolumeDirsSync, StagingArea, VOLUME_DATA_DIR } from './staging-area.js';
import { DEFAULT_DRIVER_NAME, type CallOptions, type Volume, type VolumeDriver, type VolumeScope } from './types.js';

export { VOLUME_DATA_DIR } from './staging-area.js';
/** The file of a volume that holds its options. */
export const VOLUME_OPTIONS_FILE = 'opts.json';

/**
 * Where a volume is built and taken apart inside the root when the staging area cannot be used (it
 * is on another file system), and where berth versions before the staging area did so: hidden
 * entries (a volume name cannot start with a dot), swept at start. Their names do not say whose
 * volume they held.
 */
const CREATING_PREFIX = '.creating-';
const REMOVING_PREFIX = '.removing-';

/** Default of {@link LocalDriverOptions.spareDirectories}. */
export const DEFAULT_SPARE_DIRECTORIES = 16;

export interface LocalDriverOptions {
  /** `<data-root>/volumes`; created (mode 0701) when missing. */
  root: string;
  logger?: Logger | undefined;
  /** How mounts are made and inspected; default: mount(8), umount(8) and `/proc/self/mountinfo`. */
  mounter?: Mounter | undefined;
  /** Host name resolution for `nfs`/`cifs` addresses; default: the system resolver, IPv4 first. */
  resolveAddress?: ResolveAddress | undefined;
  /**
   * The staging area (see `StagingArea`): where volume directories are prepared and taken apart,
   * outside the root so that nothing but volumes is ever in it. Default `<root>-staging`
   * (`<data-root>/volumes-staging`), created 0700. It must be on the root's file system; when it is
   * not, the driver stages inside the root under hidden names, as berth did before, and keeps no spares.
   */
  stagingDir?: string | undefined;
  /**
   * How many empty volume directories the staging area keeps ready (default
   * {@link DEFAULT_SPARE_DIRECTORIES}): a create renames one into the root instead of making two
   * directories, which costs tens to hundreds of µs of system time apiece, on its path.
   */
  spareDirectories?: number | undefined;
  /**
   * Whether the driver makes its own directory changes durable (an fsync of the volume and of the
   * root per create, of the root per remove); default true. `false` for a caller that commits a
   * write to a file in the root's file system after each create and remove, and acknowledges it
   * only then: berth's metadata store syncs its write-ahead log in the root, and on ext4 and xfs
   * that sync commits the file system's journal with the directory changes made before it. A
   * machine crash on another file system may then lose the directory of a volume whose record
   * survived: see {@link LocalDriver.recreateMissing}.
   */
  syncDirectories?: boolean | undefined;
  /**
   * Names of files that others keep in the root (the volume metadata database and its companions):
   * refused as volume names with `volume name "<n>" is reserved: ...` (invalid-parameter), since a
   * volume directory cannot take their place.
   */
  reservedNames?: readonly string[] | undefined;
  /**
   * Told of every fsync of the root (with `syncDirectories`, each made creates and removes
   * durable): its duration and how many shared it (metrics).
   */
  onRootSync?: ((run: GroupSyncRun) => void) | undefined;
}

/**
 * The `local` volume driver (moby's `volume/local`): one directory per volume under the root, the
 * data in `_data`, the options in `opts.json`, optional mounts (`type`, `o`, `device`) counted per
 * volume. Operations on one volume run one at a time; different volumes never wait for each other.
 *
 * Volumes appear and disappear by renaming whole directories (from a spare or a directory built in
 * the staging area, and to a tombstone there), so that a daemon killed half-way leaves either the
 * complete volume in the root or none of it.
 */
export class LocalDriver implements VolumeDriver {
  readonly name = DEFAULT_DRIVER_NAME;
  /** The volumes root as given (absolute). */
  readonly root: string;
  readonly #realRoot: string;
  readonly #volumes = new Map<string, LocalVolume>();
  readonly #ctx: LocalVolumeContext;
  readonly #staging: StagingArea | undefined;
  readonly #syncDirectories: boolean;
  /** The fsync of the root that makes renames into and out of it durable, shared by concurrent callers. */
  readonly #rootSync: GroupSync;
  readonly #reservedNames: ReadonlySet<string>;
  /** `.removing-*` entries were found at start: removes were cut short, and whose cannot be told. */
  #unattributedRemovals = false;
  /** Names the hidden in-root staging entries apart (see {@link CREATING_PREFIX}). */
  #serial = 0;

  private constructor(root: string, realRoot: string, staging: StagingArea | undefined, options: LocalDriverOptions) {
    this.root = root;
    this.#realRoot = realRoot;
    this.#staging = staging;
    this.#syncDirectories = options.syncDirectories ?? true;
    this.#reservedNames = new Set(options.reservedNames ?? []);
    this.#rootSync = new GroupSync(() => fsyncDir(this.root), { onRun: options.onRootSync });
    const logger = options.logger ?? noopLogger;
    this.#ctx = {
      driverName: DEFAULT_DRIVER_NAME,
      rootPrefix: root.endsWith(sep) ? root : root + sep,
      locks: new KeyedLock(),
      mounter: options.mounter ?? new SystemMounter(),
      resolveAddress: options.resolveAddress ?? resolveIPv4First,
      logger,
      // Size quotas need XFS project quotas, which berth does not drive yet.
      quotaSupported: false,
      readOptions: (name, rootPath) => readOptions(name, rootPath, logger),
    };
  }

  /** Creates the root if needed, opens the staging area, and loads every volume found in the root. */
  static async open(options: LocalDriverOptions): Promise<LocalDriver> {
    const root = resolve(options.root);
    if ((await mkdir(root, { recursive: true, mode: 0o701 })) !== undefined) await chmod(root, 0o701);
    const staging = await StagingArea.open({
      root,
      dir: resolve(options.stagingDir ?? `${root}-staging`),
      spares: options.spareDirectories ?? DEFAULT_SPARE_DIRECTORIES,
      logger: options.logger ?? noopLogger,
    });
    const driver = new LocalDriver(root, await realpath(root), staging, options);
    await driver.#scan();
    return driver;
  }

  async scope(): Promise<VolumeScope> {
    return 'local';
  }

  async get(name: string): Promise<LocalVolume | undefined> {
    return this.#volumes.get(name);
  }

  /** {@link get} without a promise: the driver knows its volumes in memory. */
  getSync(name: string): LocalVolume | undefined {
    return this.#volumes.get(name);
  }

  /** Every volume: those found at start in name order, then those created since (moby's driver lists its map unordered). */
  async list(): Promise<LocalVolume[]> {
    return [...this.#volumes.values()];
  }

  /**
   * Creates the volume, or returns the existing one unchanged (its options are not compared).
   * Name and options are validated first, with moby's texts (`invalid-parameter`).
   */
  async create(
    name: string,
    opts: Readonly<Record<string, string>> | undefined,
    call?: CallOptions,
  ): Promise<LocalVolume> {
    const { volume, durable } = await this.createDeferred(name, opts, call);
    await durable;
    return volume;
  }

  /**
   * {@link create}, resolving as soon as the volume is in place, before it is durable: `durable`
   * resolves once the volume would survive a machine crash (with `syncDirectories: false`, once the
   * driver's part is: its options file; the caller's commit makes the directories so) and the spare
   * it took is made again, and rejects when the volume cannot be made durable (it is then
   * forgotten, as a failed create). Meanwhile the volume's name stays locked, so other operations
   * on it wait, and a caller can make its own records of the volume durable at the same time. For
   * an existing volume, `durable` waits for a create of it still in flight.
   */
  async createDeferred(
    name: string,
    opts: Readonly<Record<string, string>> | undefined,
    call?: CallOptions,
  ): Promise<{ volume: LocalVolume; durable: Promise<void> }> {
    validateLocalVolumeName(name);
    if (this.#reservedNames.has(name)) {
      throw invalidParameter(`volume name ${goQuote(name)} is reserved: berth keeps a file of that name in ${this.root}`);
    }
    validateLocalOptions(opts, { quotaSupported: this.#ctx.quotaSupported });
    const options = toLocalVolumeOptions(opts);
    const signal = call?.signal;
    const lock = await this.#ctx.locks.acquire(name, { signal });
    let durable: Promise<void> | undefined;
    try {
      signal?.throwIfAborted();
      const existing = this.#volumes.get(name);
      // A create of it that was still syncing held the lock until it was done.
      if (existing !== undefined) return { volume: existing, durable: Promise.resolve() };
      const volume = this.#newVolume(name, options);
      const { synced } = await this.#createOnDisk(volume);
      this.#volumes.set(name, volume);
      const settled = synced.then(
        () => lock.release(),
        (err: unknown) => {
          if (this.#volumes.get(name) === volume) this.#volumes.delete(name);
          lock.release();
          throw err;
        },
      );
      // Also handled when nobody awaits it (a failure is the awaiting caller's to see).
      settled.catch(() => undefined);
      durable = settled;
      return { volume, durable: settled };
    } finally {
      if (durable === undefined) lock.release();
    }
  }

  /**
   * Removes the volume and all its data, even when `_data` is not empty. Refused while the volume
   * has active mounts, while anything is still mounted in it, and for data outside the root.
   * Paths already gone are not errors.
   */
  async remove(volume: Volume, call?: CallOptions): Promise<void> {
    const { deleted } = await this.removeDeferred(volume, call);
    await deleted;
  }

  /**
   * {@link remove}, resolving once the volume has left the root (it is renamed to its tombstone in
   * the staging area, and the driver no longer has it) and before its data is deleted: `deleted`
   * settles once it is. Meanwhile the volume's name stays locked, and a caller can delete its own
   * record of the volume at the same time (a record deleted before the volume left the root would
   * let a kill bring the volume back without it).
   */
  async removeDeferred(volume: Volume, call?: CallOptions): Promise<{ deleted: Promise<void> }> {
    const foreign = volume instanceof LocalVolume && dirname(volume.rootPath) !== this.root;
    if (volume.driverName !== this.name || foreign) {
      throw system(`unknown volume type ${volume.constructor.name} of driver ${volume.driverName}`);
    }
    const signal = call?.signal;
    const lock = await this.#ctx.locks.acquire(volume.name, { signal });
    let deleted: Promise<void> | undefined;
    try {
      signal?.throwIfAborted();
      // The live object decides: a stale one (removed and created again) or a caller's wrapper
      // must not bypass its mount count. Names this driver never validated are never turned into paths.
      const current = this.#volumes.get(volume.name) ?? (volume instanceof LocalVolume ? volume : undefined);
      if (current === undefined) return { deleted: Promise.resolve() };
      const entry = this.#removableEntry(current);
      if (entry === 'directory') {
        await current.releaseForRemoval(signal);
        await this.#refuseIfStillMounted(current);
      } else if (current.activeMounts > 0) {
        throw system('volume has active mounts');
      }
      const tombstone = this.#moveToTombstone(current);
      this.#volumes.delete(current.name);
      deleted = (async () => {
        if (this.#syncDirectories) await this.#rootSync.sync().catch(() => undefined);
        if (tombstone === undefined) return;
        // Symlinks inside are removed, never followed; so is the volume's own entry when it is one.
        if (entry === 'directory') await removeVolumeDirectory(tombstone);
        else await removeTree(tombstone);
      })().finally(() => lock.release());
      // Also handled when nobody awaits it (a failure is the awaiting caller's to see).
      deleted.catch(() => undefined);
      return { deleted };
    } finally {
      if (deleted === undefined) lock.release();
    }
  }

  /**
   * For a record of `name` whose volume directory was not found at start. With
   * `syncDirectories: false` the caller's commit made the volume durable, and a machine crash on a
   * file system that does not keep directory changes in order with that commit may have lost the
   * directory: it is made again, empty, with `options`, and returned. `undefined` when the directory
   * left on purpose: its remove was cut short after the directory left the root (a tombstone named
   * it; or tombstones of a berth that did not name them were found, and whose they were cannot be
   * told), or the driver syncs its directories itself (then only a remove, or someone outside
   * berth, takes one away, and the record goes as moby drops it).
   */
  async recreateMissing(
    name: string,
    options: Readonly<Record<string, string>> | undefined,
    call?: CallOptions,
  ): Promise<LocalVolume | undefined> {
    if (this.#syncDirectories || this.#unattributedRemovals || this.#staging?.wasBeingRemoved(name) === true) return undefined;
    return this.create(name, options, call);
  }

  #newVolume(name: string, options: LocalVolumeOptions | undefined): LocalVolume {
    const rootPath = join(this.root, name);
    // The name pattern already rules out `/`, `..` and NUL; a volume must still never leave the root.
    if (dirname(rootPath) !== this.root || basename(rootPath) !== name) {
      throw system(`volume name ${name} resolves outside of the local volume root ${this.root}`);
    }
    return new LocalVolume({ name, options }, this.#ctx);
  }

  /**
   * Builds the volume in the staging area (or takes a spare there), renames it into the root, and
   * starts what remains: `synced` settles once the options file (and, with `syncDirectories`, the
   * volume's directories) are durable and the spare taken is made again. Cheap system calls
   * (chmod, the options file, rename) run in place, as a thread-pool round trip costs more than
   * they do; so do the `mkdir`s of a volume built without a spare (system time, not a wait on the
   * disk); the fsyncs go to the thread pool.
   */
  async #createOnDisk(volume: LocalVolume): Promise<{ synced: Promise<void> }> {
    const spare = this.#staging?.takeSpare();
    // No spare ready: make one that could not be made before, meanwhile.
    const refill = spare === undefined ? this.#staging?.refillOne() : undefined;
    const staging = spare?.path ?? this.#staging?.newPath() ?? join(this.root, `${CREATING_PREFIX}${this.#serial++}`);
    let options: OpenFile | undefined;
    try {
      if (spare === undefined) makeVolumeDirsSync(staging, volume);
      if (volume.options !== undefined) {
        try {
          options = createFile(join(staging, VOLUME_OPTIONS_FILE), encodeOptsJson(volume.options), 0o600);
        } catch (err) {
          throw systemWrap(err, 'error while persisting volume options');
        }
      }
      renameSync(staging, volume.rootPath);
    } catch (err) {
      if (options !== undefined) closeSync(options.fd);
      if (spare !== undefined) await spare.discard();
      else await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      await refill;
      const code = (err as NodeJS.ErrnoException).code;
      // A non-empty directory of that name that is not a volume (nothing of ours in it): fill it
      // in place, as moby does, rather than refuse.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await this.#populate(volume.rootPath, volume);
      return { synced: this.#syncDirectories ? this.#rootSync.sync() : Promise.resolve() };
    }
    const synced = Promise.all([
      options?.sync().catch((err: unknown) => {
        throw systemWrap(err, 'error while persisting volume options');
      }),
      // The volume's entries (`_data`, `opts.json`) and its name in the root, by concurrent fsyncs
      // (the root's shared with other creates and removes). A machine crash before can leave the
      // name without its entries: never acknowledged, and removed by the caller's restore.
      this.#syncDirectories ? fsyncDir(volume.rootPath) : undefined,
      this.#syncDirectories ? this.#rootSync.sync() : undefined,
      spare?.refill() ?? refill,
    ]);
    return { synced: synced.then(() => undefined) };
  }

  /**
   * Renames the volume's entry in the root to its tombstone; `undefined` when it is gone already.
   * A tombstone of the same name left by an earlier remove whose deletion failed is deleted first.
   */
  #moveToTombstone(volume: LocalVolume): string | undefined {
    const tombstone = this.#staging?.tombstonePath(volume.name) ?? join(this.root, `${REMOVING_PREFIX}${this.#serial++}`);
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(volume.rootPath, tombstone);
        return tombstone;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const exists = lstatSync(volume.rootPath, { throwIfNoEntry: false }) !== undefined;
        if (code === 'ENOENT' && !exists) return undefined;
        if (attempt > 0) throw systemWrap(err, `error removing volume path '${volume.rootPath}'`);
        if (code === 'ENOENT') {
          // The staging area lost its `removing` directory under the daemon: make it again.
          mkdirSync(dirname(tombstone), { recursive: true, mode: 0o700 });
        } else if (code === 'ENOTEMPTY' || code === 'EEXIST') {
          // Rare (its deletion failed), so in place; the name's lock is held.
          rmSyncTree(tombstone);
        } else {
          throw systemWrap(err, `error removing volume path '${volume.rootPath}'`);
        }
      }
    }
  }

  /**
   * Makes an existing directory `dir` hold the volume in place: mode 0701 when created, `_data`
   * 0755, `opts.json` (replaced atomically) when there are options.
   */
  async #populate(dir: string, volume: LocalVolume): Promise<void> {
    try {
      if ((await mkdir(dir, { recursive: true, mode: 0o701 })) !== undefined) await chmod(dir, 0o701);
    } catch (err) {
      throw systemWrap(err, `error while creating volume root path '${volume.rootPath}'`);
    }
    const dataPath = join(dir, VOLUME_DATA_DIR);
    try {
      if ((await mkdir(dataPath, { recursive: true, mode: 0o755 })) !== undefined) await chmod(dataPath, 0o755);
    } catch (err) {
      throw systemWrap(err, `error while creating volume data path '${volume.dataPath}'`);
    }
    if (volume.options !== undefined) {
      try {
        await writeFileAtomic(join(dir, VOLUME_OPTIONS_FILE), encodeOptsJson(volume.options), 0o600);
      } catch (err) {
        throw systemWrap(err, 'error while persisting volume options');
      }
    }
    await fsyncDir(dir);
  }

  /**
   * Every directory in the root is a volume, as moby's driver has it: one `getdents` pass and no
   * system call per volume, before the API is served. A volume's `opts.json` is read on first use
   * (see `LocalVolume.options`); volumes whose `_data` is mounted (few) are marked so at once.
   * Hidden entries are not volumes; the in-root staging leftovers among them are swept.
   */
  async #scan(): Promise<void> {
    const leftovers: string[] = [];
    // Kept in name order: `volume ls` sorts what the driver lists, and a sorted run costs one pass.
    const entries = readdirSync(this.root, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const { name } = entry;
      if (name.startsWith('.')) {
        // A leftover may be a symlink (a volume whose directory had been replaced by one): `rm`
        // removes the link, never what it points to.
        const staged = name.startsWith(CREATING_PREFIX) || name.startsWith(REMOVING_PREFIX);
        if (staged && (entry.isDirectory() || entry.isSymbolicLink())) leftovers.push(join(this.root, name));
        if (name.startsWith(REMOVING_PREFIX)) this.#unattributedRemovals = true;
        continue;
      }
      // A name from the directory itself: one entry of the root (no `/`, never `.` or `..`).
      if (entry.isDirectory()) this.#volumes.set(name, new LocalVolume({ name, options: UNREAD_OPTIONS }, this.#ctx));
    }
    await Promise.all(
      leftovers.map(async (path) => {
        this.#ctx.logger.info('removing what an interrupted volume create or remove left behind', { path });
        await rm(path, { recursive: true, force: true }).catch((err: unknown) =>
          this.#ctx.logger.warn('cannot remove leftover volume directory', { path, error: String(err) }),
        );
      }),
    );
    const prefix = this.#realRoot + sep;
    const suffix = sep + VOLUME_DATA_DIR;
    for (const { mountPoint } of await this.#mounts()) {
      if (!mountPoint.startsWith(prefix) || !mountPoint.endsWith(suffix)) continue;
      this.#volumes.get(mountPoint.slice(prefix.length, -suffix.length))?.adoptMount();
    }
  }

  async #refuseIfStillMounted(volume: LocalVolume): Promise<void> {
    // A `directory` entry: the volume's directory is itself in the (real) root.
    const top = join(this.#realRoot, volume.name);
    const busy = (await this.#mounts()).find((m) => m.mountPoint === top || m.mountPoint.startsWith(top + sep));
    if (busy !== undefined) {
      throw system(`unable to remove volume ${volume.name}: ${busy.mountPoint} is still mounted`);
    }
  }

  /**
   * What removing the volume deletes: its `directory` (with `_data`, symlinks resolved, inside it),
   * or, when its entry in the root was replaced by a symlink or a file, only that `entry`, never
   * followed. A `_data` that resolves outside the volume is refused. Two `lstat`s decide the usual
   * case (both real directories); `_data` is resolved only when it is something else.
   */
  #removableEntry(volume: LocalVolume): 'directory' | 'entry' {
    let own;
    let data;
    try {
      own = lstatSync(volume.rootPath, { throwIfNoEntry: false });
      if (own === undefined) return 'directory'; // nothing left but what a rename will not find
      if (!own.isDirectory()) return 'entry';
      data = lstatSync(volume.dataPath, { throwIfNoEntry: false });
    } catch (err) {
      throw BerthError.from(err);
    }
    if (data === undefined || data.isDirectory()) return 'directory';
    let path: string;
    try {
      path = realpathSync.native(volume.dataPath);
    } catch (err) {
      if (!isNotFound(err)) throw BerthError.from(err);
      return 'directory';
    }
    const volumeDir = join(this.#realRoot, volume.name);
    if (path === volumeDir || path.startsWith(volumeDir + sep)) return 'directory';
    throw system(`unable to remove a directory outside of the local volume root ${this.root}: ${path}`);
  }

  async #mounts(): Promise<MountInfo[]> {
    try {
      return await this.#ctx.mounter.mounts();
    } catch (err) {
      // Without a mount table (no /proc) nothing can be known to be mounted.
      if (isNotFound(err)) return [];
      throw BerthError.from(err);
    }
  }
}

/**
 * Reads a volume's `opts.json` (synchronously: see `LocalVolume.options`). Unlike moby, which
 * refuses to start the daemon, unreadable options only cost the options: the volume stays listed
 * and its data is kept.
 */
function readOptions(name: string, rootPath: string, logger: Logger): LocalVolumeOptions | undefined {
  const file = join(rootPath, VOLUME_OPTIONS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    logger.warn(`error while loading volume options for volume: ${name}`, { volume: name, path: file, error: String(err) });
    return undefined;
  }
  try {
    return decodeOptsJson(text);
  } catch (err) {
    logger.warn(`error while unmarshaling volume options for volume: ${name}; keeping the volume without options`, {
      volume: name,
      path: file,
      error: (err as Error).message,
    });
    return undefined;
  }
}

/**
 * Deletes a removed volume's directory. The usual volume (an empty `_data`, maybe `opts.json`) goes
 * with two or three system calls in place, once the current turn of the event loop is over (so the
 * caller's commit and sync of the record are under way first): they cost system time, and two
 * thread-pool round trips cost more (a hand-off and a wake-up each). Anything else (data, symlinks,
 * odd entries) is left to the recursive removal, on the thread pool.
 */
async function removeVolumeDirectory(path: string): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  const gone = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';
  try {
    rmdirSync(join(path, VOLUME_DATA_DIR));
  } catch (err) {
    if (!gone(err)) return removeTree(path);
  }
  try {
    rmdirSync(path);
    return;
  } catch (err) {
    if (gone(err)) return;
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') return removeTree(path);
  }
  try {
    unlinkSync(join(path, VOLUME_OPTIONS_FILE));
    rmdirSync(path);
  } catch (err) {
    if (!gone(err)) return removeTree(path);
  }
}

async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    throw systemWrap(err, `error removing volume path '${path}'`);
  }
}

function rmSyncTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (err) {
    throw systemWrap(err, `error removing volume path '${path}'`);
  }
}

function systemWrap(err: unknown, prefix: string): BerthError {
  return system(`${prefix}: ${(err as Error).message}`, { cause: err });
}

async function resolveIPv4First(host: string): Promise<string> {
  return (await lookup(host, { verbatim: false })).address;
}
