/**
 * What the volume service consumes. Declared here, satisfied structurally by `@berth/volume-drivers`
 * (registry, drivers, volumes) and by the daemon (event sink, logger).
 */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export type VolumeScope = 'local' | 'global';

export interface Volume {
  readonly name: string;
  readonly driverName: string;
  cachedPath(): string;
  path(options?: CallOptions): Promise<string>;
  mount(id: string, options?: CallOptions): Promise<string>;
  unmount(id: string, options?: CallOptions): Promise<void>;
  createdAt(options?: CallOptions): Promise<Date | undefined>;
  /** `createdAt` known without asking anyone (no thread-pool I/O, no plugin call); used when present. */
  createdAtSync?(): Date | undefined;
  status(): Record<string, unknown> | undefined;
  liveRestore?(id: string, options?: CallOptions): Promise<void>;
}

export interface VolumeDriver {
  readonly name: string;
  scope(options?: CallOptions): Promise<VolumeScope>;
  create(name: string, options: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume>;
  /**
   * `create`, resolving once the volume exists but before it is durable: `durable` resolves when it
   * would survive a machine crash, rejects when it cannot be made so. Used when present, so that
   * the volume's record is synced at the same time. Optional.
   */
  createDeferred?(
    name: string,
    options: Readonly<Record<string, string>> | undefined,
    call?: CallOptions,
  ): Promise<{ volume: Volume; durable: Promise<void> }>;
  remove(volume: Volume, options?: CallOptions): Promise<void>;
  list(options?: CallOptions): Promise<Volume[]>;
  get(name: string, options?: CallOptions): Promise<Volume | undefined>;
  /**
   * `get` answered from memory, for drivers that know their volumes without asking anyone (the
   * `local` driver); used when present, e.g. to restore thousands of volumes without a promise each.
   */
  getSync?(name: string): Volume | undefined;
}

export interface ListDriversOptions extends CallOptions {
  probeTimeoutMs?: number | undefined;
  onLeftOut?: ((name: string, error: Error) => void) | undefined;
}

/** moby's `drivers.Store` as the volume store uses it. */
export interface VolumeDriverRegistry {
  /** Lookup without touching plugin reference counts. */
  getDriver(name: string, options?: CallOptions): Promise<VolumeDriver>;
  /** Lookup that acquires one plugin reference (for a volume created or restored on it). */
  createDriver(name: string, options?: CallOptions): Promise<VolumeDriver>;
  /** Lookup that releases one plugin reference. */
  releaseDriver(name: string, options?: CallOptions): Promise<VolumeDriver>;
  /** Sorted names of the registered and cached drivers (`docker info` Plugins.Volume). */
  getDriverList(): string[];
  /**
   * Every driver. Plugins still starting after `probeTimeoutMs` are left out and reported to
   * `onLeftOut` (by name, with why).
   */
  getAllDrivers(options?: ListDriversOptions): Promise<VolumeDriver[]>;
  /**
   * The driver `name` when the registry has it at hand and checked: what `getDriver`,
   * `createDriver` and `releaseDriver` would return without asking the plugin getter, and so
   * without counting references (a driver registered in-process, a legacy plugin's kept driver);
   * `undefined` otherwise. Optional.
   */
  peekDriver?(name: string): VolumeDriver | undefined;
}

/** moby's `VolumeEventLogger`. */
export interface VolumeEventSink {
  logVolumeEvent(name: string, action: string, attributes: Record<string, string>): void;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The Engine API `Volume` object, field for field (Go's names; `null` maps kept as `null`). */
export interface VolumeInfo {
  CreatedAt?: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: VolumeScope;
  Status?: Record<string, unknown>;
  UsageData?: { RefCount: number; Size: number };
}

export interface ListResult {
  volumes: VolumeInfo[];
  warnings: string[];
}

export interface PruneReport {
  VolumesDeleted: string[];
  SpaceReclaimed: number;
}
