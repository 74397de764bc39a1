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
  status(): Record<string, unknown> | undefined;
  liveRestore?(id: string, options?: CallOptions): Promise<void>;
}

export interface VolumeDriver {
  readonly name: string;
  scope(options?: CallOptions): Promise<VolumeScope>;
  create(name: string, options: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume>;
  remove(volume: Volume, options?: CallOptions): Promise<void>;
  list(options?: CallOptions): Promise<Volume[]>;
  get(name: string, options?: CallOptions): Promise<Volume | undefined>;
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
  getAllDrivers(options?: CallOptions): Promise<VolumeDriver[]>;
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
