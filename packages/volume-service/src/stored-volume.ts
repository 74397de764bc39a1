import type { Volume, VolumeScope } from '@berth/volume-drivers';
import type { StringMap } from './metadata-store.js';

/** A driver's volume with what the store knows about it (moby's `volumeWrapper`). */
export interface StoredVolume {
  readonly name: string;
  readonly driverName: string;
  readonly scope: VolumeScope;
  readonly labels: Readonly<StringMap> | null;
  readonly options: Readonly<StringMap> | null;
  readonly volume: Volume;
  /** The creation time the store knows (a global volume's, from the cluster); else the driver's is used. */
  readonly createdAt?: Date | undefined;
}

/**
 * A name bound to a driver in the store's cache (moby's `names`, `labels`, `options`, `refs` maps in
 * one place). `driverRef` is the name this entry passed to `createDriver` (one plugin reference),
 * so that purging releases exactly what was acquired; `undefined` when none is held.
 */
export interface CacheEntry {
  volume: Volume;
  driverName: string;
  scope: VolumeScope;
  labels: StringMap | null;
  options: StringMap | null;
  refs: Set<string>;
  driverRef: string | undefined;
}

export function snapshot(name: string, entry: CacheEntry): StoredVolume {
  return {
    name,
    driverName: entry.driverName,
    scope: entry.scope,
    labels: entry.labels,
    options: entry.options,
    volume: entry.volume,
  };
}
