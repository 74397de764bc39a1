import { join } from 'node:path';
import { BerthError, conflict, unavailable } from '@berth/errdefs';
import type { ClusterStore } from './cluster-store.js';
import type { Filters } from '@berth/filters';
import { abortable, KeyedLock } from '@berth/locker';
import { noopLogger, type Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME, type CallOptions } from '@berth/volume-drivers';
import { resolvePath, toListedVolumeInfo, toVolumeInfo } from './convert.js';
import { DirectorySizer } from './directory-sizer.js';
import { ANONYMOUS_LABEL, listQuery } from './list-filters.js';
import type { MetadataStore, StringMap } from './metadata-store.js';
import { isNotExist, opError } from './op-error.js';
import { pruneVolumes } from './prune.js';
import { generateVolumeName } from './random-name.js';
import { rebuildRecords } from './rebuild.js';
import { METADATA_FILE_NAME, SqliteMetadataStore, type SqliteMetadataStoreOptions } from './sqlite-metadata-store.js';
import type { ListResult, PruneReport, VolumeDriverRegistry, VolumeEventSink, VolumeInfo } from './types.js';
import { VolumeStore } from './volume-store.js';

export const DEFAULT_LIST_TIMEOUT_MS = 2000;

export interface VolumesServiceOptions {
  /** The data-root; the metadata database lives at `<root>/volumes/metadata.sqlite`. */
  root: string;
  drivers: VolumeDriverRegistry;
  events?: VolumeEventSink | undefined;
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
  /** Another metadata backend instead of the SQLite file under `root`; the service closes it. */
  metadata?: MetadataStore | undefined;
  /** Options of the SQLite file under `root` (observers for metrics), when `metadata` is not given. */
  sqlite?: SqliteMetadataStoreOptions | undefined;
  /**
   * Deadline of one driver's `list` in `list` and `prune`, and of one driver's answer when every
   * driver is asked for a name (create without a driver, get of an unknown name); default 2000 ms.
   */
  listTimeoutMs?: number | undefined;
  /** Worker threads that walk volume directories at once for `diskUsage` and `prune` (default 1). */
  sizeConcurrency?: number | undefined;
  /**
   * The cluster store that keeps the volumes of `global`-scope drivers, shared by many hosts (see
   * README, "Global volumes"); its owner opens and closes it. Without it, every volume is local.
   */
  cluster?: ClusterStore | undefined;
}

export interface CreateVolumeRequest {
  /** Empty or absent: an anonymous volume (random name, `local` driver, anonymous label). */
  name?: string | undefined;
  /** Empty or absent: the driver that already has a volume of that name, else `local`. */
  driver?: string | undefined;
  driverOpts?: StringMap | null | undefined;
  labels?: StringMap | null | undefined;
}

export interface GetVolumeOptions extends CallOptions {
  /** Fill `Status` from the driver. */
  resolveStatus?: boolean | undefined;
  /** The driver the caller expects; another stored driver is a conflict (moby's `WithGetDriver`). */
  driver?: string | undefined;
}

export interface RemoveVolumeOptions extends CallOptions {
  /** A missing volume is a success, and metadata is purged even when the driver fails. Never overrides "in use". */
  force?: boolean | undefined;
}

/** The path of the metadata database under a data-root. */
export function metadataPath(root: string): string {
  return join(root, 'volumes', METADATA_FILE_NAME);
}

/**
 * moby's `VolumesService`: the API-facing volume operations over the volume store. Errors are
 * `BerthError`s with moby's texts; their kind decides the HTTP status in the daemon.
 */
export class VolumesService {
  readonly #store: VolumeStore;
  readonly #drivers: VolumeDriverRegistry;
  readonly #events: VolumeEventSink | undefined;
  readonly #logger: Logger;
  readonly #inflight = new Set<Promise<unknown>>();
  /** Serialises the mounts and unmounts of one name (see `mount`). */
  readonly #mounts = new KeyedLock();
  readonly #sizer: DirectorySizer;
  /** The `diskUsage` walk in progress, shared by every caller until it ends. */
  #diskUsage: { readonly result: Promise<VolumeInfo[]>; readonly controller: AbortController; callers: number } | undefined;
  #pruneRunning = false;
  #closed = false;

  private constructor(store: VolumeStore, options: VolumesServiceOptions, logger: Logger) {
    this.#store = store;
    this.#drivers = options.drivers;
    this.#events = options.events;
    this.#logger = logger;
    this.#sizer = new DirectorySizer({ concurrency: options.sizeConcurrency });
  }

  /** Opens the metadata store and restores every recorded volume (see README, "Restore"). */
  static async open(options: VolumesServiceOptions): Promise<VolumesService> {
    options.signal?.throwIfAborted();
    const logger = options.logger ?? noopLogger;
    const metadata = options.metadata ?? (await SqliteMetadataStore.open(metadataPath(options.root), { ...options.sqlite, logger }));
    try {
      if (metadata instanceof SqliteMetadataStore && metadata.startedEmpty !== undefined) {
        await rebuildRecords(metadata.startedEmpty, { metadata, drivers: options.drivers, logger, path: metadata.path, signal: options.signal });
      }
      const store = await VolumeStore.open(
        {
          metadata,
          drivers: options.drivers,
          events: options.events,
          logger,
          listTimeoutMs: options.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS,
          cluster: options.cluster,
        },
        options.signal,
      );
      return new VolumesService(store, options, logger);
    } catch (err) {
      await metadata.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Creates a volume (idempotent for the same name and driver). The result has no `Status`. A name
   * bound to a driver that cannot be asked (a plugin that is away) is a conflict, whatever the driver.
   */
  create(request: CreateVolumeRequest, options: CallOptions = {}): Promise<VolumeInfo> {
    return this.#run(async () => {
      const { signal } = options;
      let name = request.name ?? '';
      let driver = request.driver ?? '';
      let labels = request.labels ?? null;
      if (name === '') {
        name = generateVolumeName();
        if (driver === '') driver = DEFAULT_DRIVER_NAME;
        labels = { ...labels, [ANONYMOUS_LABEL]: '' };
        this.#logger.debug('Creating anonymous volume', { volume: name, driver });
      }
      const v = await this.#store.create(name, driver, { options: request.driverOpts ?? null, labels, signal });
      // The cached mountpoint, as moby: a plugin is not asked `Path` for a volume just created.
      return toVolumeInfo(v, { mountpoint: v.volume.cachedPath(), signal });
    });
  }

  /** `get <name>: no such volume` (not-found) when there is no such volume. */
  get(name: string, options: GetVolumeOptions = {}): Promise<VolumeInfo> {
    return this.#run(async () => {
      const { signal } = options;
      const v = await this.#store.get(name, { driver: options.driver, signal });
      return toVolumeInfo(v, { mountpoint: await resolvePath(v, signal), status: options.resolveStatus, signal });
    });
  }

  /**
   * Volumes matching `filters` (`dangling`, `name`, `driver`, `label`). Mountpoints are the cached
   * ones (no driver `Path` calls). A driver that fails or exceeds the list deadline is named in
   * `warnings` and its known volumes are listed from the cache.
   */
  list(filters: Filters, options: CallOptions = {}): Promise<ListResult> {
    return this.#run(async () => {
      const { signal } = options;
      const { volumes, warnings } = await this.#store.find(listQuery(filters), { signal });
      // Volumes whose creation time is known locally (all of the local driver's) are converted
      // synchronously (and once: see `toListedVolumeInfo`): one promise per volume costs more
      // than the conversion itself.
      const infos = volumes.map((v) => toListedVolumeInfo(v, signal));
      const pending = infos.some((info) => info instanceof Promise);
      return { volumes: pending ? await Promise.all(infos) : (infos as VolumeInfo[]), warnings };
    });
  }

  /**
   * Removes a volume. Missing: `get <name>: no such volume` unless `force`. Referenced:
   * `remove <name>: volume is in use - [refs]`, with or without `force`.
   */
  remove(name: string, options: RemoveVolumeOptions = {}): Promise<void> {
    return this.#run(async () => {
      const { signal } = options;
      const force = options.force === true;
      let driver: string;
      try {
        driver = (await this.#store.get(name, { signal })).driverName;
      } catch (err) {
        if (force && isNotExist(err)) return;
        throw err;
      }
      try {
        await this.#store.remove(name, { driver, purgeOnError: force, signal });
      } catch (err) {
        // Gone from its driver between the two steps: removed all the same.
        if (isNotExist(err)) return;
        throw err;
      }
    });
  }

  /**
   * Removes unused local volumes without driver options that match `filters` (`label`, `label!`,
   * `all`); only anonymous ones unless `all` is true. One prune at a time. The daemon adds
   * `all=true` itself for API < 1.42.
   */
  prune(filters: Filters, options: CallOptions = {}): Promise<PruneReport> {
    return this.#run(async () => {
      if (this.#pruneRunning) throw conflict('a prune operation is already running');
      this.#pruneRunning = true;
      try {
        return await pruneVolumes(filters, {
          store: this.#store,
          sizer: this.#sizer,
          events: this.#events,
          logger: this.#logger,
          signal: options.signal,
        });
      } finally {
        this.#pruneRunning = false;
      }
    });
  }

  /**
   * Every volume with its `UsageData` (`docker system df -v`; moby's `LocalVolumesSize`, which only
   * lists local volumes without options): `Size` is the bytes under the directory of a local volume
   * without options, walked off the event loop (see `DirectorySizer`), and `-1` where berth cannot
   * know it: a volume on a plugin, a local volume with mount options (a device or a remote file
   * system, not berth's disk), a directory that could not be walked; `RefCount` is the references
   * held. Mountpoints are the cached ones, as in `list`. Calls that arrive while a walk runs share
   * it; it stops once every caller has gone away.
   */
  diskUsage(options: CallOptions = {}): Promise<VolumeInfo[]> {
    return this.#run(async () => {
      let shared = this.#diskUsage;
      if (shared === undefined) {
        const controller = new AbortController();
        const result = this.#measureDiskUsage(controller.signal);
        const current = { result, controller, callers: 0 };
        const forget = (): void => {
          if (this.#diskUsage === current) this.#diskUsage = undefined;
        };
        result.then(forget, forget);
        this.#diskUsage = shared = current;
      }
      shared.callers++;
      try {
        return await abortable(shared.result, options.signal);
      } finally {
        // The last caller gone (answered, or went away): a later call starts afresh.
        if (--shared.callers === 0) {
          if (this.#diskUsage === shared) this.#diskUsage = undefined;
          shared.controller.abort(new Error('every caller of diskUsage went away'));
        }
      }
    });
  }

  async #measureDiskUsage(signal: AbortSignal): Promise<VolumeInfo[]> {
    const { volumes } = await this.#store.find({}, { signal });
    const sized = volumes.filter((v) => v.driverName === DEFAULT_DRIVER_NAME && (v.options === null || Object.keys(v.options).length === 0));
    const results = await this.#sizer.size(
      sized.map((v) => v.volume.cachedPath()),
      { signal },
    );
    const sizes = new Map<string, number>();
    sized.forEach((v, i) => {
      const result = results[i];
      if (result !== undefined && 'size' in result) sizes.set(v.name, result.size);
      else this.#logger.warn('Failed to determine size of volume', { volume: v.name, error: result?.error });
    });
    const infos = await Promise.all(volumes.map((v) => toListedVolumeInfo(v, signal)));
    // The listed answers are kept and frozen (see `toListedVolumeInfo`): usage goes on a copy.
    return infos.map((info) => ({ ...info, UsageData: { Size: sizes.get(info.Name) ?? -1, RefCount: this.#store.referenceCount(info.Name) } }));
  }

  /** Volumes and the references held on them, by driver, from memory (metrics). */
  countByDriver(): Map<string, { volumes: number; references: number }> {
    return this.#store.countByDriver();
  }

  /**
   * Mounts the volume for `ref` and returns the mountpoint. The reference is persisted before the
   * driver is asked, so the volume counts as in use from then on, across restarts, until `unmount`
   * or `release`; a failed mount drops a reference it added and is never followed by an unmount.
   * Mounting again with a reference already held answers the mountpoint without mounting twice,
   * so one `unmount` always undoes it. Emits `mount` with `{driver, ref}`.
   *
   * Mounts and unmounts of one name run one at a time (other operations on it, and other names,
   * do not wait for them), so that the driver's mount count always follows the set of references.
   */
  mount(name: string, ref: string, options: CallOptions = {}): Promise<string> {
    const { signal } = options;
    return this.#run(() =>
      this.#mounts.with(
        name,
        async () => {
          const { volume: v, added } = await this.#store.reference(name, ref, { signal });
          if (!added) return resolvePath(v, signal);
          let mountpoint: string;
          try {
            mountpoint = await v.volume.mount(ref, { signal });
          } catch (err) {
            await this.#releaseQuietly(name, ref);
            throw opError('mount', name, err);
          }
          this.#events?.logVolumeEvent(name, 'mount', { driver: v.driverName, ref });
          return mountpoint;
        },
        { signal },
      ),
    );
  }

  /**
   * Unmounts the volume for `ref`, then drops the reference. A reference that is not held changes
   * nothing and is a success (a retried unmount is safe, and never unmounts another holder's
   * volume); the driver unmounts only for a held one, so it unmounts the volume when the last is
   * gone. A failed unmount keeps the reference (the volume may still be mounted). Emits `unmount`
   * with `{driver, ref}` when a reference was dropped.
   */
  unmount(name: string, ref: string, options: CallOptions = {}): Promise<void> {
    const { signal } = options;
    return this.#run(() =>
      this.#mounts.with(
        name,
        async () => {
          const { volume: v, held } = await this.#store.holder(name, ref, { signal });
          if (!held) {
            this.#logger.debug('Unmount of a reference that is not held: nothing to do', { volume: name, ref });
            return;
          }
          try {
            await v.volume.unmount(ref, { signal });
          } catch (err) {
            throw opError('unmount', name, err);
          }
          await this.#store.release(name, ref, { signal });
          this.#events?.logVolumeEvent(name, 'unmount', { driver: v.driverName, ref });
        },
        { signal },
      ),
    );
  }

  /** Drops a reference without unmounting (moby's `Release`); an unknown reference is not an error. */
  release(name: string, ref: string, options: CallOptions = {}): Promise<void> {
    return this.#run(() => this.#store.release(name, ref, options));
  }

  /** Sorted names of the registered volume drivers (`docker info`). */
  getDriverList(): string[] {
    return this.#drivers.getDriverList();
  }

  /** Waits for operations in flight, then closes the metadata store. Later calls fail as `unavailable`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#diskUsage?.controller.abort(new Error('volume service is closing'));
    await Promise.allSettled([...this.#inflight]);
    await this.#sizer.close();
    await this.#store.close();
  }

  /** Tracks the operation for `close()`, and makes whatever it throws a `BerthError` (aborts become `canceled`). */
  #run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable('volume service is closed'));
    const promise = operation().catch((err: unknown) => {
      throw BerthError.from(err);
    });
    this.#inflight.add(promise);
    const settle = (): void => void this.#inflight.delete(promise);
    promise.then(settle, settle);
    return promise;
  }

  async #releaseQuietly(name: string, ref: string): Promise<void> {
    try {
      await this.#store.release(name, ref);
    } catch (err) {
      this.#logger.error('Error releasing volume reference after a failed mount', { volume: name, ref, error: String(err) });
    }
  }
}
