/** Options every async method of this package accepts. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export type VolumeScope = 'local' | 'global';

export const DEFAULT_DRIVER_NAME = 'local';
export const LOCAL_SCOPE: VolumeScope = 'local';
export const GLOBAL_SCOPE: VolumeScope = 'global';

/** A volume as one driver sees it (moby's `volume.Volume`). */
export interface Volume {
  readonly name: string;
  readonly driverName: string;
  /** The mountpoint known without asking the driver (moby's `CachedPath`); `''` when unknown. */
  cachedPath(): string;
  /** The mountpoint, asking the driver when it is not known yet (plugins: `VolumeDriver.Path`). */
  path(options?: CallOptions): Promise<string>;
  /** Mounts for the reference `id` and returns the mountpoint. */
  mount(id: string, options?: CallOptions): Promise<string>;
  /** Releases the mount of reference `id`. */
  unmount(id: string, options?: CallOptions): Promise<void>;
  /** Creation time; `undefined` when the driver does not know it (the API then shows the zero time). */
  createdAt(options?: CallOptions): Promise<Date | undefined>;
  /**
   * The same as {@link createdAt}, answered without I/O on the thread pool, for drivers that know it
   * locally (the `local` driver). Optional: callers fall back to `createdAt` when it is absent.
   */
  createdAtSync?(): Date | undefined;
  /** Driver-specific status for `volume inspect`; `undefined` when there is none. */
  status(): Record<string, unknown> | undefined;
  /**
   * Re-establishes the driver's own bookkeeping for a reference that was held before the daemon
   * restarted (moby's `LiveRestoreVolume`). Optional.
   */
  liveRestore?(id: string, options?: CallOptions): Promise<void>;
  /** Whether the driver holds the volume mounted (the `local` driver's); used to rebuild records. Optional. */
  readonly mounted?: boolean;
  /** The driver options the volume keeps itself (the `local` driver's `opts.json`); used to rebuild records. Optional. */
  driverOptions?(): Readonly<Record<string, string>> | undefined;
}

/** A volume driver (moby's `volume.Driver`). */
export interface VolumeDriver {
  readonly name: string;
  /** `local` or `global`; known once the driver was looked up through the registry. */
  scope(options?: CallOptions): Promise<VolumeScope>;
  create(name: string, options: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume>;
  /**
   * `create`, resolving once the volume exists but before it is durable: `durable` resolves when
   * it would survive a machine crash and rejects when it cannot be made so (the create then failed).
   * Lets a caller make its own records durable at the same time. Optional: `create` otherwise.
   */
  createDeferred?(
    name: string,
    options: Readonly<Record<string, string>> | undefined,
    call?: CallOptions,
  ): Promise<{ volume: Volume; durable: Promise<void> }>;
  remove(volume: Volume, options?: CallOptions): Promise<void>;
  /**
   * `remove`, resolving once the driver no longer has the volume but before its data is deleted:
   * `deleted` settles once it is. Lets a caller delete its own record of the volume at the same
   * time. Optional: `remove` otherwise.
   */
  removeDeferred?(volume: Volume, options?: CallOptions): Promise<{ deleted: Promise<void> }>;
  /**
   * Asked at restore for a record whose volume the driver does not have: a driver whose creates
   * are made durable by the caller's commit may have lost the volume to a machine crash, and makes
   * it again (empty, with `options`); `undefined` when the volume went on purpose (a remove cut
   * short), and the record is dropped. Optional: without it the record is dropped, as moby does.
   */
  recreateMissing?(name: string, options: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume | undefined>;
  list(options?: CallOptions): Promise<Volume[]>;
  /** The named volume, or `undefined` when the driver has no such volume; rejects on driver errors. */
  get(name: string, options?: CallOptions): Promise<Volume | undefined>;
  /**
   * `get` answered from memory, for drivers that know their volumes without asking anyone (the
   * `local` driver). Optional: callers use `get` when it is absent.
   */
  getSync?(name: string): Volume | undefined;
}

/**
 * What the registry needs from a plugin store (moby's `plugingetter.PluginGetter`); declared here,
 * satisfied structurally by `@berth/plugin-store`.
 */
export type PluginRefMode = 'lookup' | 'acquire' | 'release';

export interface PluginGetter {
  get(name: string, capability: string, mode: PluginRefMode, options?: DriverLookupOptions): Promise<unknown>;
  getAllByCap(capability: string, options?: ListPluginsOptions): Promise<unknown[]>;
}

/** A lookup of one driver by name. */
export interface DriverLookupOptions extends CallOptions {
  /**
   * `false`: a plugin that is not there is answered at once, even while the plugin store still
   * waits for late plugins (its start-up window); for the volume restore, whose volumes come back
   * with their plugin whenever it appears. Default `true`.
   */
  waitForPlugin?: boolean | undefined;
}

/** How long a listing waits for plugins still starting, and who hears of those left out. */
export interface ListPluginsOptions extends CallOptions {
  /** How long to wait for plugins whose activation is in flight (the getter's default otherwise). */
  probeTimeoutMs?: number | undefined;
  /** Called for each plugin left out of the answer because it was not ready in time. */
  onLeftOut?: ((name: string, error: Error) => void) | undefined;
}

/** Options of one plugin call. */
export interface PluginCallOptions {
  signal?: AbortSignal | undefined;
  /** Deadline of the call, from connecting to the last byte of the answer. */
  timeoutMs?: number | undefined;
}

/**
 * A plugin's client (`@berth/plugin-store`'s `PluginClient` provides it): `POST /<serviceMethod>`
 * with `args` as JSON. Resolves with the decoded answer of a 200, also when that answer carries
 * `{"Err": ...}`. Rejects for any other status with `<serviceMethod>: <Err or body>`, an error
 * whose cause chain carries the HTTP `statusCode`; with kind `unavailable`, `deadline-exceeded` or
 * `canceled` when the plugin could not be asked; with another error for a 200 it could not decode.
 */
export interface PluginCaller {
  call(serviceMethod: string, args?: unknown, options?: PluginCallOptions): Promise<unknown>;
}

/**
 * A plugin that provides the VolumeDriver protocol, as the plugin getter returns it (moby's
 * `plugingetter.CompatPlugin` with a v1 client); `@berth/plugin-store`'s `CompatPlugin` satisfies it.
 */
export interface VolumePlugin {
  /** A legacy plugin's name, or a managed plugin's tagged reference (`sshfs:latest`). */
  readonly name: string;
  /** Asked for on every call: a managed plugin's client changes when it restarts, and throws while it is stopped. */
  client(): PluginCaller;
  /** Maps a path the plugin reported to the host (unchanged for legacy plugins). */
  scopedPath(path: string): string;
  /** Legacy plugins' drivers are kept for the daemon's lifetime; managed ones are rebuilt per lookup. */
  isV1(): boolean;
}

/** A driver built over a plugin, and whether it may be kept for later lookups. */
export interface AdaptedPlugin {
  driver: VolumeDriver;
  /** moby keeps adapters of v1 plugins for the daemon's lifetime and rebuilds managed ones per lookup. */
  cache: boolean;
}

/**
 * Turns what the plugin getter returned into a volume driver that speaks the VolumeDriver protocol
 * to it. The default is `createPluginAdapter()`.
 */
export type PluginDriverAdapter = (plugin: unknown, options: CallOptions) => Promise<AdaptedPlugin> | AdaptedPlugin;
