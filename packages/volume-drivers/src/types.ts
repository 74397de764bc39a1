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
  /** Driver-specific status for `volume inspect`; `undefined` when there is none. */
  status(): Record<string, unknown> | undefined;
  /**
   * Re-establishes the driver's own bookkeeping for a reference that was held before the daemon
   * restarted (moby's `LiveRestoreVolume`). Optional.
   */
  liveRestore?(id: string, options?: CallOptions): Promise<void>;
}

/** A volume driver (moby's `volume.Driver`). */
export interface VolumeDriver {
  readonly name: string;
  /** `local` or `global`; known once the driver was looked up through the registry. */
  scope(options?: CallOptions): Promise<VolumeScope>;
  create(name: string, options: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume>;
  remove(volume: Volume, options?: CallOptions): Promise<void>;
  list(options?: CallOptions): Promise<Volume[]>;
  /** The named volume, or `undefined` when the driver has no such volume; rejects on driver errors. */
  get(name: string, options?: CallOptions): Promise<Volume | undefined>;
}

/**
 * What the registry needs from a plugin store (moby's `plugingetter.PluginGetter`); declared here,
 * satisfied structurally by `@berth/plugin-store`.
 */
export type PluginRefMode = 'lookup' | 'acquire' | 'release';

export interface PluginGetter {
  get(name: string, capability: string, mode: PluginRefMode, options?: CallOptions): Promise<unknown>;
  getAllByCap(capability: string, options?: CallOptions): Promise<unknown[]>;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const noopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
