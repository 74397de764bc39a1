import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { chmodSync, closeSync, lstatSync, readFileSync, realpathSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { chmod, mkdir, readdir, realpath, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { BerthError, invalidParameter, system } from '@berth/errdefs';
import { GroupSync, KeyedLock, type GroupSyncRun } from '@berth/locker';
import { noopLogger, type Logger } from '@berth/logger';
import { goQuote } from '@berth/gocompat';
import { createFile, fsyncDir, isNotFound, writeFileAtomic, type OpenFile } from './fs-util.js';
import {
  decodeOptsJson,
  encodeOptsJson,
  needsMount,
  toLocalVolumeOptions,
  validateLocalOptions,
  type LocalVolumeOptions,
} from './local-options.js';
import { LocalVolume, type LocalVolumeContext } from './local-volume.js';
import type { ResolveAddress } from './mount-options.js';
import type { MountInfo } from './mountinfo.js';
import { SystemMounter, type Mounter } from './mounter.js';
import { validateLocalVolumeName } from './names.js';
import { DEFAULT_DRIVER_NAME, type CallOptions, type Volume, type VolumeDriver, type VolumeScope } from './types.js';

/** The directory of a volume that holds its data. */
export const VOLUME_DATA_DIR = '_data';
/** The file of a volume that holds its options. */
export const VOLUME_OPTIONS_FILE = 'opts.json';

/**
 * Volumes appear and disappear by renaming whole directories, so that a daemon killed half-way
 * leaves either the complete volume or none of it. The half-built and half-removed directories
 * carry these prefixes (a volume name cannot start with a dot) and are swept at start.
 */
const CREATING_PREFIX = '.creating-';
const REMOVING_PREFIX = '.removing-';
const NO_OPTIONS = { options: undefined, invalid: false } as const;

/** Default of {@link LocalDriverOptions.spareDirectories}: none (see there). */
export const DEFAULT_SPARE_DIRECTORIES = 0;

export interface LocalDriverOptions {
  /** `<data-root>/volumes`; created (mode 0701) when missing. */
  root: string;
  logger?: Logger | undefined;
  /** How mounts are made and inspected; default: mount(8), umount(8) and `/proc/self/mountinfo`. */
  mounter?: Mounter | undefined;
  /** Host name resolution for `nfs`/`cifs` addresses; default: the system resolver, IPv4 first. */
  resolveAddress?: ResolveAddress | undefined;
  /**
   * How many empty volume directories (`.creating-<random>` holding `_data`, modes set) the
   * driver keeps ready after its first create, refilled in the background; default
   * {@link DEFAULT_SPARE_DIRECTORIES} (none). A create then only renames one into place: allocating
   * the two directories, which costs hundreds of µs of system time apiece on some file systems,
   * happens off the create's path. Spares are hidden entries of the root (swept at start like any
   * interrupted create), which is why they are opt-in: tools that expect nothing but volumes in
   * the root would see them.
   */
  spareDirectories?: number | undefined;
  /**
   * Names of files that others keep in the root (the volume metadata database and its companions):
   * refused as volume names with `volume name "<n>" is reserved: ...` (invalid-parameter), since a
   * volume directory cannot take their place.
   */
  reservedNames?: readonly string[] | undefined;
  /** Told of every fsync of the root (each made creates and removes durable): its duration and how many shared it (metrics). */
  onRootSync?: ((run: GroupSyncRun) => void) | undefined;
}

/**
 * The `local` volume driver (moby's `volume/local`): one directory per volume under the root, the
 * data in `_data`, the options in `opts.json`, optional mounts (`type`, `o`, `device`) counted per
 * volume. Operations on one volume run one at a time; different volumes never wait for each other.
 */
export class LocalDriver implements VolumeDriver {
  readonly name = DEFAULT_DRIVER_NAME;
  /** The volumes root as given (absolute). */
  readonly root: string;
  readonly #realRoot: string;
  readonly #volumes = new Map<string, LocalVolume>();
  readonly #ctx: LocalVolumeContext;
  /** The fsync of the root that makes renames into and out of it durable, shared by concurrent callers. */
  readonly #rootSync: GroupSync;
  /** Ready staging directories (see `spareDirectories`), taken last-made first. */
  readonly #spares: string[] = [];
  readonly #spareTarget: number;
  readonly #reservedNames: ReadonlySet<string>;
  #refilling: Promise<void> | undefined;

  private constructor(root: string, realRoot: string, context: LocalVolumeContext, options: LocalDriverOptions) {
    this.root = root;
    this.#realRoot = realRoot;
    this.#ctx = context;
    this.#spareTarget = Math.max(0, Math.floor(options.spareDirectories ?? DEFAULT_SPARE_DIRECTORIES));
    this.#reservedNames = new Set(options.reservedNames ?? []);
    this.#rootSync = new GroupSync(() => fsyncDir(this.root), { onRun: options.onRootSync });
  }

  /** Creates the root if needed and loads every volume found in it. */
  static async open(options: LocalDriverOptions): Promise<LocalDriver> {
    const root = resolve(options.root);
    if ((await mkdir(root, { recursive: true, mode: 0o701 })) !== undefined) await chmod(root, 0o701);
    const driver = new LocalDriver(root, await realpath(root), {
      driverName: DEFAULT_DRIVER_NAME,
      locks: new KeyedLock(),
      mounter: options.mounter ?? new SystemMounter(),
      resolveAddress: options.resolveAddress ?? resolveIPv4First,
      logger: options.logger ?? noopLogger,
      // Size quotas need XFS project quotas, which berth does not drive yet.
      quotaSupported: false,
    }, options);
    await driver.#scan();
    return driver;
  }

  async scope(): Promise<VolumeScope> {
    return 'local';
  }

  async get(name: string): Promise<LocalVolume | undefined> {
    return this.#volumes.get(name);
  }

  /**
   * Resolves once no spare directories are being made (for tests and orderly shutdowns; the
   * spares left behind are swept at the next start).
   */
  async settled(): Promise<void> {
    while (this.#refilling !== undefined) await this.#refilling;
  }

  /** {@link get} without a promise: the driver knows its volumes in memory. */
  getSync(name: string): LocalVolume | undefined {
    return this.#volumes.get(name);
  }

  async list(): Promise<LocalVolume[]> {
    return [...this.#volumes.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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
   * resolves once the volume would survive a machine crash, and rejects when it cannot be made so
   * (the volume is then forgotten, as a failed create). Meanwhile the volume's name stays locked, so
   * other operations on it wait, and a caller can make its own records of the volume durable at the
   * same time. For an existing volume, `durable` waits for a create of it still in flight.
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
    const foreign = volume instanceof LocalVolume && dirname(volume.rootPath) !== this.root;
    if (volume.driverName !== this.name || foreign) {
      throw system(`unknown volume type ${volume.constructor.name} of driver ${volume.driverName}`);
    }
    const signal = call?.signal;
    await this.#ctx.locks.with(
      volume.name,
      async () => {
        signal?.throwIfAborted();
        // The live object decides: a stale one (removed and created again) or a caller's wrapper
        // must not bypass its mount count. Names this driver never validated are never turned into paths.
        const current = this.#volumes.get(volume.name) ?? (volume instanceof LocalVolume ? volume : undefined);
        if (current === undefined) return;
        const entry = this.#removableEntry(current);
        if (entry === 'directory') {
          await current.releaseForRemoval(signal);
          await this.#refuseIfStillMounted(current);
        } else if (current.activeMounts > 0) {
          throw system('volume has active mounts');
        }
        const tombstone = join(this.root, REMOVING_PREFIX + randomBytes(8).toString('hex'));
        try {
          renameSync(current.rootPath, tombstone);
        } catch (err) {
          if (!isNotFound(err)) throw systemWrap(err, `error removing volume path '${current.rootPath}'`);
        }
        this.#volumes.delete(current.name);
        await this.#rootSync.sync().catch(() => undefined);
        // Symlinks inside are removed, never followed; so is the volume's own entry when it is one.
        if (entry === 'directory') await removePath(tombstone);
        else await removeTree(tombstone);
      },
      { signal },
    );
  }

  #newVolume(name: string, options: LocalVolumeOptions | undefined): LocalVolume {
    const rootPath = join(this.root, name);
    // The name pattern already rules out `/`, `..` and NUL; a volume must still never leave the root.
    if (dirname(rootPath) !== this.root || basename(rootPath) !== name) {
      throw system(`volume name ${name} resolves outside of the local volume root ${this.root}`);
    }
    return new LocalVolume({ name, rootPath, dataPath: join(rootPath, VOLUME_DATA_DIR), options }, this.#ctx);
  }

  /**
   * Stages the volume under a hidden name (or takes a spare), renames it into place, and starts
   * making it durable: `synced` settles once it is. Cheap system calls (chmod, the options file,
   * rename) run in place, as a thread-pool round trip costs more than they do; mkdir and the fsyncs
   * go to the thread pool, and concurrent creates and removes share the fsync of the root.
   */
  async #createOnDisk(volume: LocalVolume): Promise<{ synced: Promise<void> }> {
    const spare = this.#spares.pop();
    this.#refillSpares();
    const staging = spare ?? this.#stagingPath();
    let options: OpenFile | undefined;
    try {
      if (spare === undefined) await makeVolumeDirs(staging, volume.rootPath, volume.dataPath);
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
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      // A non-empty directory of that name that is not a volume (nothing of ours in it): fill it
      // in place, as moby does, rather than refuse.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await this.#populate(volume.rootPath, volume);
      return { synced: this.#rootSync.sync() };
    }
    // The volume's entries (`_data`, `opts.json`), its name in the root and the options' content
    // are made durable together, by concurrent fsyncs (the root's shared with other creates), and
    // the create resolves only when all are. A machine crash before can leave the name without its
    // entries: not a volume (the scan skips such a directory), and never acknowledged.
    const synced = Promise.all([
      options?.sync().catch((err: unknown) => {
        throw systemWrap(err, 'error while persisting volume options');
      }),
      fsyncDir(volume.rootPath),
      this.#rootSync.sync(),
    ]);
    return { synced: synced.then(() => undefined) };
  }

  #stagingPath(): string {
    return join(this.root, CREATING_PREFIX + randomBytes(8).toString('hex'));
  }

  /**
   * Tops the spare directories up in the background once they run low (never at start: a daemon
   * that creates nothing makes none). Failures are logged; creates then stage their own.
   */
  #refillSpares(): void {
    if (this.#refilling !== undefined || this.#spares.length > this.#spareTarget / 2) return;
    const refill = (async () => {
      while (this.#spares.length < this.#spareTarget) {
        const wanted = this.#spareTarget - this.#spares.length;
        const made = await Promise.all(
          Array.from({ length: wanted }, async () => {
            const dir = this.#stagingPath();
            try {
              // Not synced here: a create syncs the directory it takes, after renaming it.
              await makeVolumeDirs(dir, dir, join(dir, VOLUME_DATA_DIR));
              return dir;
            } catch (err) {
              this.#ctx.logger.debug('cannot make a spare volume directory', { path: dir, error: String(err) });
              await rm(dir, { recursive: true, force: true }).catch(() => undefined);
              return undefined;
            }
          }),
        );
        for (const dir of made) if (dir !== undefined) this.#spares.push(dir);
        if (made.includes(undefined)) return;
      }
    })().finally(() => {
      this.#refilling = undefined;
    });
    this.#refilling = refill;
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

  async #scan(): Promise<void> {
    const entries = await readdir(this.root, { withFileTypes: true });
    const mountPoints = new Set((await this.#mounts()).map((m) => m.mountPoint));
    await Promise.all(
      entries
        // A leftover may be a symlink (a volume whose directory had been replaced by one): `rm`
        // removes the link, never what it points to.
        .filter((entry) => (entry.isDirectory() || entry.isSymbolicLink()) && (entry.name.startsWith(CREATING_PREFIX) || entry.name.startsWith(REMOVING_PREFIX)))
        .map(async ({ name }) => {
          this.#ctx.logger.info('removing what an interrupted volume create or remove left behind', { path: join(this.root, name) });
          await rm(join(this.root, name), { recursive: true, force: true }).catch((err: unknown) =>
            this.#ctx.logger.warn('cannot remove leftover volume directory', { path: join(this.root, name), error: String(err) }),
          );
        }),
    );
    // Synchronous on purpose, and before the API is served: two lstats of cached metadata cost a
    // few µs per volume, where the same calls and a read of the usually missing `opts.json` through
    // the thread pool cost, for each of thousands of volumes, round trips, promises and an ENOENT
    // error apiece. `opts.json` is read only when it is there.
    const mounted: Array<{ volume: LocalVolume; invalid: boolean }> = [];
    for (const entry of entries) {
      const { name } = entry;
      if (!entry.isDirectory() || name.startsWith('.')) continue;
      const rootPath = join(this.root, name);
      const { hasData, hasOptions } = volumeFiles(rootPath);
      if (!hasOptions && !hasData) continue;
      const { options, invalid } = hasOptions ? this.#loadOptions(name, rootPath) : NO_OPTIONS;
      const volume = new LocalVolume({ name, rootPath, dataPath: join(rootPath, VOLUME_DATA_DIR), options }, this.#ctx);
      if (needsMount(options) || invalid) mounted.push({ volume, invalid });
      this.#volumes.set(name, volume);
    }
    // Only volumes with mount options (or unreadable ones) can have `_data` mounted: few.
    await Promise.all(
      mounted.map(async ({ volume, invalid }) => {
        const real = await realpath(volume.dataPath).catch(() => volume.dataPath);
        if (!mountPoints.has(real)) return;
        if (invalid) this.#ctx.logger.warn('volume data is mounted but its options are unreadable', { volume: volume.name, path: real });
        volume.adoptMount();
      }),
    );
  }

  /**
   * Loads `opts.json` (synchronously: see `#scan`). Unlike moby, which refuses to start the daemon,
   * unreadable options only cost the options: the volume stays listed and its data is kept.
   */
  #loadOptions(name: string, rootPath: string): { options: LocalVolumeOptions | undefined; invalid: boolean } {
    const file = join(rootPath, VOLUME_OPTIONS_FILE);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return NO_OPTIONS;
      this.#ctx.logger.warn(`error while loading volume options for volume: ${name}`, { volume: name, path: file, error: String(err) });
      return { options: undefined, invalid: true };
    }
    try {
      return { options: decodeOptsJson(text), invalid: false };
    } catch (err) {
      this.#ctx.logger.warn(
        `error while unmarshaling volume options for volume: ${name}; keeping the volume without options`,
        { volume: name, path: file, error: (err as Error).message },
      );
      return { options: undefined, invalid: true };
    }
  }

  async #refuseIfStillMounted(volume: LocalVolume): Promise<void> {
    let top: string;
    try {
      top = realpathSync.native(volume.rootPath);
    } catch {
      top = volume.rootPath;
    }
    const busy = (await this.#mounts()).find((m) => m.mountPoint === top || m.mountPoint.startsWith(top + sep));
    if (busy !== undefined) {
      throw system(`unable to remove volume ${volume.name}: ${busy.mountPoint} is still mounted`);
    }
  }

  /**
   * What removing the volume deletes: its `directory` (with `_data`, symlinks resolved, inside it),
   * or, when its entry in the root was replaced by a symlink or a file, only that `entry`, never
   * followed. A `_data` that resolves outside the volume is refused. The entry itself is looked at
   * (`lstat`) only when `_data` does not resolve into the volume: never on the usual path.
   */
  #removableEntry(volume: LocalVolume): 'directory' | 'entry' {
    let path: string;
    try {
      path = realpathSync.native(volume.dataPath);
    } catch (err) {
      if (!isNotFound(err)) throw BerthError.from(err);
      return isDirectoryEntry(volume.rootPath) ? 'directory' : 'entry';
    }
    const own = join(this.#realRoot, volume.name);
    if (path === own || path.startsWith(own + sep)) return 'directory';
    if (!isDirectoryEntry(volume.rootPath)) return 'entry';
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
 * Makes a new directory `dir` (0701) and its `_data` (0755), whatever the umask. `mkdir` goes to
 * the thread pool: allocating a directory costs hundreds of µs of system time on some file
 * systems, which must not stall the event loop; `chmod` of the new inode is a few µs.
 */
async function makeVolumeDirs(dir: string, rootPath: string, dataPath: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o701 });
    chmodSync(dir, 0o701);
  } catch (err) {
    throw systemWrap(err, `error while creating volume root path '${rootPath}'`);
  }
  try {
    await mkdir(join(dir, VOLUME_DATA_DIR), { mode: 0o755 });
    chmodSync(join(dir, VOLUME_DATA_DIR), 0o755);
  } catch (err) {
    throw systemWrap(err, `error while creating volume data path '${dataPath}'`);
  }
}

/**
 * Whether a volume directory holds `_data` and `opts.json` (anything by those names, even a dangling
 * symlink): two lstats in place, which create no error object for a missing file. Any other failure
 * fails the scan, as it always did: a volume must not silently vanish (restore would then forget
 * its metadata).
 */
function volumeFiles(rootPath: string): { hasData: boolean; hasOptions: boolean } {
  return { hasData: present(join(rootPath, VOLUME_DATA_DIR)), hasOptions: present(join(rootPath, VOLUME_OPTIONS_FILE)) };
}

/** Whether `path` itself (not what a symlink points to) is a directory; a missing path counts as one (nothing to unlink). */
function isDirectoryEntry(path: string): boolean {
  return lstatSync(path, { throwIfNoEntry: false })?.isDirectory() ?? true;
}

function present(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    if (isNotFound(err)) return false; // ENOTDIR: the "volume" is a file
    throw err;
  }
}

async function removePath(path: string): Promise<void> {
  // The usual volume (an empty `_data`, maybe `opts.json`) goes with three system calls in place;
  // anything else (data, symlinks, odd entries) is left to the recursive removal.
  try {
    rmdirSync(join(path, VOLUME_DATA_DIR));
  } catch (err) {
    if (!isNotFound(err)) return removeTree(path);
  }
  try {
    unlinkSync(join(path, VOLUME_OPTIONS_FILE));
  } catch (err) {
    if (!isNotFound(err)) return removeTree(path);
  }
  try {
    rmdirSync(path);
  } catch (err) {
    if (!isNotFound(err)) return removeTree(path);
  }
}

async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
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
