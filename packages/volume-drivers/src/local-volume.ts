import { statSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { BerthError, system } from '@berth/errdefs';
import type { KeyedLock } from '@berth/locker';
import type { Logger } from '@berth/logger';
import { isNotFound } from './fs-util.js';
import { isRecursiveBind, needsMount, toDriverOptions, type LocalVolumeOptions } from './local-options.js';
import { maskPassword, resolveMountSource, type ResolveAddress } from './mount-options.js';
import type { Mounter } from './mounter.js';
import { VOLUME_DATA_DIR } from './staging-area.js';
import type { CallOptions, Volume } from './types.js';

/** What a local volume shares with its driver. */
export interface LocalVolumeContext {
  readonly driverName: string;
  /** The driver's root, with a trailing separator: a volume's directory is this and its name. */
  readonly rootPrefix: string;
  /** Serialises every operation on one volume name, across the driver and its volumes. */
  readonly locks: KeyedLock;
  readonly mounter: Mounter;
  readonly resolveAddress: ResolveAddress;
  readonly logger: Logger;
  readonly quotaSupported: boolean;
  /** Reads a volume's `opts.json`; `undefined` options when there is none or it cannot be read (logged). */
  readonly readOptions: (name: string, rootPath: string) => LocalVolumeOptions | undefined;
}

const DATA_SUFFIX = `/${VOLUME_DATA_DIR}`;

/** Options not read yet: the volume was found at start, and its `opts.json` is read on first use. */
export const UNREAD_OPTIONS = Symbol('unread options');

export interface LocalVolumeInit {
  /** A name the driver checked: its directory is `<root>/<name>`. */
  name: string;
  options: LocalVolumeOptions | undefined | typeof UNREAD_OPTIONS;
}

/**
 * A volume of the local driver (moby's `localVolume`). Volumes with a `device` or `type` are
 * mounted on first use and unmounted when the last user is gone; the others are plain directories.
 */
export class LocalVolume implements Volume {
  readonly name: string;
  readonly driverName: string;
  #options: LocalVolumeOptions | undefined | typeof UNREAD_OPTIONS;
  readonly #ctx: LocalVolumeContext;
  #activeMounts = 0;
  #mounted = false;

  constructor(init: LocalVolumeInit, context: LocalVolumeContext) {
    this.name = init.name;
    this.#options = init.options;
    this.driverName = context.driverName;
    this.#ctx = context;
  }

  /**
   * `<root>/<name>`: the volume's own directory (`opts.json` lives here). Made on each use rather
   * than kept: thousands of volumes are known at once, and their paths are seldom asked for.
   */
  get rootPath(): string {
    // `join('')` of the parts makes one flat string (`+` makes a tree of them, which a path kept
    // with a volume's listing would keep alive, three nodes per volume).
    return [this.#ctx.rootPrefix, this.name].join('');
  }

  /** `<root>/<name>/_data`: the data and the mount target. */
  get dataPath(): string {
    return [this.#ctx.rootPrefix, this.name, DATA_SUFFIX].join('');
  }

  /**
   * The options from `opts.json`; `undefined` for a plain volume (or one whose `opts.json` cannot be
   * read). A volume found at start reads them on first use: most have none, and looking for the
   * file costs a system call per volume at every start.
   */
  get options(): LocalVolumeOptions | undefined {
    if (this.#options === UNREAD_OPTIONS) this.#options = this.#ctx.readOptions(this.name, this.rootPath);
    return this.#options;
  }

  /** Users of the mount (always 0 for volumes that are not mounted). */
  get activeMounts(): number {
    return this.#activeMounts;
  }

  /** Whether the driver holds `_data` mounted. */
  get mounted(): boolean {
    return this.#mounted;
  }

  get needsMount(): boolean {
    return needsMount(this.options);
  }

  cachedPath(): string {
    return this.dataPath;
  }

  async path(): Promise<string> {
    return this.dataPath;
  }

  status(): Record<string, unknown> | undefined {
    return undefined;
  }

  /** The driver options `opts.json` holds (`type`, `o`, `device`, `size`), for records rebuilt from the volume. */
  driverOptions(): Record<string, string> | undefined {
    return toDriverOptions(this.options);
  }

  /** The ctime of the volume's own directory (not of `_data`, whose ctime changes with its content). */
  async createdAt(): Promise<Date | undefined> {
    return this.createdAtSync();
  }

  /**
   * {@link createdAt} without a promise. Synchronous on purpose: a `stat` of a cached inode costs a
   * few µs, where a thread-pool round trip, a promise and a `Stats` object per volume dominate
   * `volume ls` of thousands of volumes. `undefined` when the directory is gone.
   */
  createdAtSync(): Date | undefined {
    let st;
    try {
      st = statSync(this.rootPath, { bigint: false, throwIfNoEntry: false });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw BerthError.from(err);
    }
    return st?.ctime;
  }

  mount(id: string, options?: CallOptions): Promise<string> {
    return this.#locked(options, async (signal) => {
      if ((this.options?.quotaSize ?? 0) > 0 && !this.#ctx.quotaSupported) {
        throw system('size quota requested for volume but no quota support');
      }
      if (this.needsMount) {
        if (!this.#mounted) {
          if (await this.isMountPoint()) this.#ctx.logger.info('volume already mounted, reusing the mount', this.#fields({ id }));
          else await this.#mountData(signal);
          this.#mounted = true;
        }
        this.#activeMounts++;
        this.#ctx.logger.debug('incremented active mount count', this.#fields({ id }));
      }
      return this.dataPath;
    });
  }

  /**
   * Releases one user; the last one unmounts `_data`. A failed unmount keeps the count (moby
   * decrements it anyway): the count follows the references its caller holds, and the caller keeps
   * the reference of a failed unmount, so a retry must unmount again.
   */
  unmount(id: string, options?: CallOptions): Promise<void> {
    return this.#locked(options, async (signal) => {
      if (!this.needsMount) return;
      if (this.#activeMounts === 0) {
        this.#ctx.logger.error('an attempt to decrement a zero mount count', this.#fields({ id }));
        return;
      }
      if (this.#activeMounts === 1 && this.#mounted) await this.#unmountData(signal);
      this.#activeMounts--;
      this.#ctx.logger.debug('decremented active mount count', this.#fields({ id }));
    });
  }

  /**
   * Counts a user that held the volume before the daemon restarted. The mount normally survived
   * (live-restore); after a reboot it did not, and `_data` is mounted again.
   */
  liveRestore(id: string, options?: CallOptions): Promise<void> {
    return this.#locked(options, async (signal) => {
      if (!this.needsMount) return;
      if (!this.#mounted && !(await this.isMountPoint())) await this.#mountData(signal);
      this.#mounted = true;
      this.#activeMounts++;
      this.#ctx.logger.debug('live-restored volume', this.#fields({ id }));
    });
  }

  /** Whether `_data` is currently a mount point; a missing `_data` is not. */
  async isMountPoint(): Promise<boolean> {
    let real: string;
    try {
      real = await realpath(this.dataPath);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    return (await this.#ctx.mounter.mounts()).some((m) => m.mountPoint === real);
  }

  /**
   * Called by the driver at start-up when `_data` was found mounted: the mount is reused, and its
   * users, if any, come back through {@link liveRestore}.
   * @internal
   */
  adoptMount(): void {
    if (this.needsMount) this.#mounted = true;
  }

  /**
   * Prepares removal; the caller holds the volume's lock. Refuses while the volume has users and
   * unmounts what the driver mounted.
   * @internal
   */
  async releaseForRemoval(signal: AbortSignal | undefined): Promise<void> {
    if (this.#activeMounts > 0) throw system('volume has active mounts');
    if (this.needsMount && (this.#mounted || (await this.isMountPoint()))) await this.#unmountData(signal);
  }

  async #mountData(signal: AbortSignal | undefined): Promise<void> {
    const options = this.options;
    if (options === undefined) return;
    let source;
    try {
      source = await resolveMountSource(options, this.#ctx.resolveAddress);
    } catch (err) {
      throw system((err as Error).message, { cause: err });
    }
    this.#ctx.logger.debug('mounting volume', this.#fields({ type: options.mountType }));
    try {
      await this.#ctx.mounter.mount(
        { device: source.device, target: this.dataPath, type: options.mountType, options: source.options },
        { signal },
      );
    } catch (err) {
      const message = maskPassword(`failed to mount local volume: ${(err as Error).message}`, options.mountOpts);
      throw new BerthError(mountErrorKind(err), message);
    }
  }

  async #unmountData(signal: AbortSignal | undefined): Promise<void> {
    this.#ctx.logger.debug('unmounting volume', this.#fields());
    try {
      // An `rbind` brought the source's sub-mounts along: they go with it (`umount -R`), or the
      // unmount fails with "target is busy" for ever.
      await this.#ctx.mounter.unmount(this.dataPath, { signal, recursive: isRecursiveBind(this.options) });
    } catch (err) {
      // Someone else unmounted it already: nothing left to do.
      const stillMounted = await this.isMountPoint().catch(() => true);
      if (stillMounted) {
        throw new BerthError(mountErrorKind(err), `failed to unmount local volume: ${(err as Error).message}`);
      }
    }
    this.#mounted = false;
  }

  #locked<T>(options: CallOptions | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    const signal = options?.signal;
    return this.#ctx.locks.with(
      this.name,
      () => {
        signal?.throwIfAborted();
        return fn(signal);
      },
      { signal },
    );
  }

  #fields(extra?: Record<string, unknown>): Record<string, unknown> {
    return { volume: this.name, activeMounts: this.#activeMounts, mounted: this.#mounted, ...extra };
  }
}

function mountErrorKind(err: unknown): 'system' | 'deadline-exceeded' | 'canceled' {
  const kind = BerthError.from(err).kind;
  return kind === 'deadline-exceeded' || kind === 'canceled' ? kind : 'system';
}
