import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { chmod, mkdir, readFile, readdir, realpath, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { BerthError, system } from '@berth/errdefs';
import { KeyedLock } from '@berth/locker';
import { exists, fsyncDir, isNotFound, writeFileAtomic } from './fs-util.js';
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
import {
  DEFAULT_DRIVER_NAME,
  noopLogger,
  type CallOptions,
  type Logger,
  type Volume,
  type VolumeDriver,
  type VolumeScope,
} from './types.js';

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

export interface LocalDriverOptions {
  /** `<data-root>/volumes`; created (mode 0701) when missing. */
  root: string;
  logger?: Logger | undefined;
  /** How mounts are made and inspected; default: mount(8), umount(8) and `/proc/self/mountinfo`. */
  mounter?: Mounter | undefined;
  /** Host name resolution for `nfs`/`cifs` addresses; default: the system resolver, IPv4 first. */
  resolveAddress?: ResolveAddress | undefined;
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

  private constructor(root: string, realRoot: string, context: LocalVolumeContext) {
    this.root = root;
    this.#realRoot = realRoot;
    this.#ctx = context;
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
    });
    await driver.#scan();
    return driver;
  }

  async scope(): Promise<VolumeScope> {
    return 'local';
  }

  async get(name: string): Promise<LocalVolume | undefined> {
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
    validateLocalVolumeName(name);
    validateLocalOptions(opts, { quotaSupported: this.#ctx.quotaSupported });
    const options = toLocalVolumeOptions(opts);
    const signal = call?.signal;
    return this.#ctx.locks.with(
      name,
      async () => {
        signal?.throwIfAborted();
        const existing = this.#volumes.get(name);
        if (existing !== undefined) return existing;
        const volume = this.#newVolume(name, options);
        await this.#createOnDisk(volume);
        this.#volumes.set(name, volume);
        return volume;
      },
      { signal },
    );
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
        await current.releaseForRemoval(signal);
        await this.#refuseIfStillMounted(current);
        await this.#removablePath(current);
        const tombstone = join(this.root, REMOVING_PREFIX + randomBytes(8).toString('hex'));
        try {
          await rename(current.rootPath, tombstone);
        } catch (err) {
          if (!isNotFound(err)) throw systemWrap(err, `error removing volume path '${current.rootPath}'`);
        }
        this.#volumes.delete(current.name);
        await fsyncDir(this.root).catch(() => undefined);
        // Symlinks inside are removed, never followed.
        await removePath(tombstone);
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

  async #createOnDisk(volume: LocalVolume): Promise<void> {
    const staging = join(this.root, CREATING_PREFIX + randomBytes(8).toString('hex'));
    try {
      await this.#populate(staging, volume);
      await rename(staging, volume.rootPath);
    } catch (err) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      const code = (err as NodeJS.ErrnoException).code;
      // A non-empty directory of that name that is not a volume (nothing of ours in it): fill it
      // in place, as moby does, rather than refuse.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await this.#populate(volume.rootPath, volume);
    }
    await fsyncDir(this.root);
  }

  /** Makes `dir` hold the volume: mode 0701, `_data` 0755, `opts.json` when there are options. */
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
        .filter((entry) => entry.isDirectory() && (entry.name.startsWith(CREATING_PREFIX) || entry.name.startsWith(REMOVING_PREFIX)))
        .map(async ({ name }) => {
          this.#ctx.logger.info('removing what an interrupted volume create or remove left behind', { path: join(this.root, name) });
          await rm(join(this.root, name), { recursive: true, force: true }).catch((err: unknown) =>
            this.#ctx.logger.warn('cannot remove leftover volume directory', { path: join(this.root, name), error: String(err) }),
          );
        }),
    );
    await Promise.all(
      entries
        .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
        .map(async ({ name }) => {
          const rootPath = join(this.root, name);
          const isVolume = (await exists(join(rootPath, VOLUME_DATA_DIR))) || (await exists(join(rootPath, VOLUME_OPTIONS_FILE)));
          if (!isVolume) return;
          const { options, invalid } = await this.#loadOptions(name, rootPath);
          const volume = new LocalVolume({ name, rootPath, dataPath: join(rootPath, VOLUME_DATA_DIR), options }, this.#ctx);
          if (needsMount(options) || invalid) {
            const real = await realpath(volume.dataPath).catch(() => volume.dataPath);
            if (mountPoints.has(real)) {
              if (invalid) this.#ctx.logger.warn('volume data is mounted but its options are unreadable', { volume: name, path: real });
              volume.adoptMount();
            }
          }
          this.#volumes.set(name, volume);
        }),
    );
  }

  /**
   * Loads `opts.json`. Unlike moby, which refuses to start the daemon, unreadable options only cost
   * the options: the volume stays listed and its data is kept.
   */
  async #loadOptions(name: string, rootPath: string): Promise<{ options: LocalVolumeOptions | undefined; invalid: boolean }> {
    const file = join(rootPath, VOLUME_OPTIONS_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return { options: undefined, invalid: false };
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
    const top = await realpath(volume.rootPath).catch(() => volume.rootPath);
    const busy = (await this.#mounts()).find((m) => m.mountPoint === top || m.mountPoint.startsWith(top + sep));
    if (busy !== undefined) {
      throw system(`unable to remove volume ${volume.name}: ${busy.mountPoint} is still mounted`);
    }
  }

  /** `_data` with symlinks resolved (the volume root when `_data` is gone), refused unless inside the volume. */
  async #removablePath(volume: LocalVolume): Promise<string> {
    let path: string;
    try {
      path = await realpath(volume.dataPath);
    } catch (err) {
      if (!isNotFound(err)) throw BerthError.from(err);
      path = volume.rootPath;
    }
    const own = join(this.#realRoot, volume.name);
    if (path !== own && path !== join(this.root, volume.name) && !path.startsWith(own + sep)) {
      throw system(`unable to remove a directory outside of the local volume root ${this.root}: ${path}`);
    }
    return path;
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

async function removePath(path: string): Promise<void> {
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
