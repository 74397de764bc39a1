import type { CallOptions, VolumeDriver, VolumeScope } from '@berth/volume-drivers';

// What the volume service consumes, declared here and satisfied structurally by
// `@berth/volume-drivers`' registry and by the daemon (event sink), and the Engine API objects it
// answers with. Drivers and volumes are `@berth/volume-drivers`' own types.

/** A lookup of one driver; `waitForPlugin: false` answers a plugin that is not there at once (restore). */
export interface DriverLookupOptions extends CallOptions {
  waitForPlugin?: boolean | undefined;
}

export interface ListDriversOptions extends CallOptions {
  probeTimeoutMs?: number | undefined;
  onLeftOut?: ((name: string, error: Error) => void) | undefined;
}

/** moby's `drivers.Store` as the volume store uses it. */
export interface VolumeDriverRegistry {
  /** Lookup without touching plugin reference counts. */
  getDriver(name: string, options?: DriverLookupOptions): Promise<VolumeDriver>;
  /** Lookup that acquires one plugin reference (for a volume created or restored on it). */
  createDriver(name: string, options?: DriverLookupOptions): Promise<VolumeDriver>;
  /** Lookup that releases one plugin reference. */
  releaseDriver(name: string, options?: DriverLookupOptions): Promise<VolumeDriver>;
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
