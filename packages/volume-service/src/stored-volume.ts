import type { Volume, VolumeDriver, VolumeScope } from '@berth/volume-drivers';
import type { StringMap } from './metadata-store.js';

/** A driver's volume with what the store knows about it (moby's `volumeWrapper`). */
export interface StoredVolume {
  readonly name: string;
  readonly driverName: string;
  readonly scope: VolumeScope;
  readonly labels: Readonly<StringMap> | null;
  readonly options: Readonly<StringMap> | null;
  readonly volume: Volume;
  /**
   * The creation time the store keeps (ms since the epoch; see `VolumeRecord.createdAt`; a global
   * volume's from the cluster), which
   * then stands for the volume's own; `undefined` when the volume's driver reports it.
   */
  readonly createdAt?: number | undefined;
}

/**
 * A name bound to a driver in the store's cache (moby's `names`, `labels`, `options`, `refs` maps in
 * one place). `driverRef` is the name this entry passed to `createDriver` (one plugin reference),
 * so that purging releases exactly what was acquired; `undefined` when none is held. Labels and
 * options are never changed in place (a new binding makes a new entry).
 */
export interface CacheEntry {
  volume: Volume;
  driverName: string;
  scope: VolumeScope;
  labels: StringMap | null;
  options: StringMap | null;
  /** Never changed in place: replaced (`withRef`, `withoutRef`), and shared while empty. */
  refs: ReadonlySet<string>;
  driverRef: string | undefined;
  readonly createdAt: number | undefined;
  /** The last {@link snapshot} of this entry, handed out again while it still describes it. */
  snapshot?: StoredVolume | undefined;
}

/**
 * The entry as a `StoredVolume`. The same object while the entry's volume, driver and scope stay
 * the same, so that what is derived from it (the `volume ls` answer of each volume) can be kept
 * with it: thousands of volumes are listed without one allocation each.
 */
export function snapshot(name: string, entry: CacheEntry): StoredVolume {
  const known = entry.snapshot;
  if (known !== undefined && known.volume === entry.volume && known.scope === entry.scope && known.driverName === entry.driverName) return known;
  const fresh: StoredVolume = {
    name,
    driverName: entry.driverName,
    scope: entry.scope,
    labels: entry.labels,
    options: entry.options,
    volume: entry.volume,
    createdAt: entry.createdAt,
  };
  entry.snapshot = fresh;
  return fresh;
}

/**
 * The creation time the store keeps for `volume` (ms since the epoch): for a driver that keeps its
 * volumes itself and answers from memory (`getSync`: the local driver, whose volumes' time is
 * their directory's, read once here); `undefined` for the others (plugins), which report theirs.
 */
export function ownCreatedAt(driver: VolumeDriver | undefined, volume: Volume): number | undefined {
  if (driver?.getSync === undefined) return undefined;
  try {
    return volume.createdAtSync?.()?.getTime();
  } catch {
    return undefined;
  }
}

const NO_REFS: ReadonlySet<string> = new Set();

/** A set of references; every entry without any shares one (thousands of volumes have none). */
export function refSet(refs: Iterable<string>): ReadonlySet<string> {
  const set = new Set(refs);
  return set.size === 0 ? NO_REFS : set;
}

export function withRef(refs: ReadonlySet<string>, ref: string): ReadonlySet<string> {
  return refs.has(ref) ? refs : new Set([...refs, ref]);
}

export function withoutRef(refs: ReadonlySet<string>, ref: string): ReadonlySet<string> {
  if (!refs.has(ref)) return refs;
  return refSet([...refs].filter((r) => r !== ref));
}
