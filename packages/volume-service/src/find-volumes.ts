import type { Logger } from '@berth/logger';
import type { Volume, VolumeDriver, VolumeScope } from '@berth/volume-drivers';
import { allDrivers } from './all-drivers.js';
import { withDeadline } from './deadline.js';
import type { GlobalVolumes } from './global-volumes.js';
import type { VolumeQuery } from './list-filters.js';
import { scopeOf } from './lookup.js';
import { opError } from './op-error.js';
import { snapshot, type CacheEntry, type StoredVolume } from './stored-volume.js';
import type { VolumeDriverRegistry } from './types.js';

export interface FindDeps {
  drivers: VolumeDriverRegistry;
  /** The store's bindings, read only. */
  cache: ReadonlyMap<string, CacheEntry>;
  logger: Logger;
  listTimeoutMs: number;
  /** Global volumes: their labels, options, creation time and every host's references come from the cluster's cache. */
  global?: GlobalVolumes | undefined;
}

export interface FindResult {
  volumes: StoredVolume[];
  warnings: string[];
}

/**
 * moby's `VolumeStore.Find`: every driver (or `query.drivers`) is listed in parallel, each within
 * the list deadline. A driver that fails or does not answer in time adds `list <driver>: <err>` to
 * the warnings and the store's volumes of that driver are used instead. Labels and options come from
 * the store; volumes whose name is bound to another driver are dropped. Sorted by name.
 *
 * Listing the drivers is bounded too: a plugin still starting (hung in its handshake) adds
 * `list <plugin>: <err>` and its volumes come from the store; when the registry cannot list its
 * plugins in time at all, the drivers it knows are listed, a `list: <err>` warning says so, and the
 * volumes the store knows on the other drivers are listed from the cache.
 *
 * Global volumes are described from the cluster store's cache (never waiting for the cluster); while
 * the cluster cannot be reached, its warning says that this may be stale.
 */
export async function findVolumes(deps: FindDeps, query: VolumeQuery, signal: AbortSignal | undefined): Promise<FindResult> {
  const all = await allDrivers(deps.drivers, deps.listTimeoutMs, signal);
  const wanted = query.drivers;
  const selected = wanted === undefined ? all.drivers : all.drivers.filter((d) => wanted.includes(d.name));
  const listed = await Promise.all(selected.map((d) => listDriver(deps, d, query, signal)));
  signal?.throwIfAborted();
  if (all.warning !== undefined) {
    const seen = new Set(all.drivers.map((d) => d.name));
    const unseen = (name: string): boolean => !seen.has(name) && (wanted === undefined || wanted.includes(name));
    listed.push({ volumes: cachedVolumes(deps, unseen, query), warning: opError('list', '', all.warning).message });
  }
  for (const { name, error } of all.leftOut) {
    if (wanted !== undefined && !wanted.includes(name)) continue;
    listed.push({ volumes: cachedVolumes(deps, (driverName) => driverName === name, query), warning: opError('list', name, error).message });
  }

  const warnings: string[] = [];
  const clusterWarning = deps.global?.cluster.warning();
  if (clusterWarning !== undefined) warnings.push(`${clusterWarning}; global volumes are listed as this host last saw them`);
  const volumes: StoredVolume[] = [];
  for (const result of listed) {
    if (result.warning !== undefined) warnings.push(result.warning);
    for (const v of result.volumes) volumes.push(v);
  }
  volumes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { volumes, warnings };
}

/** The volumes of one driver that `query` selects, with what the store knows of them. */
async function listDriver(
  deps: FindDeps,
  driver: VolumeDriver,
  query: VolumeQuery,
  signal: AbortSignal | undefined,
): Promise<{ volumes: StoredVolume[]; warning?: string }> {
  const ms = deps.listTimeoutMs;
  try {
    const [volumes, scope] = await withDeadline(ms, `driver did not answer within ${ms}ms`, signal, (s) =>
      Promise.all([driver.list({ signal: s }), scopeOf(driver, s)]),
    );
    const selected: StoredVolume[] = [];
    for (const volume of volumes) {
      const stored = select(deps, volume, scope, query);
      if (stored !== undefined) selected.push(stored);
    }
    return { volumes: selected };
  } catch (err) {
    signal?.throwIfAborted();
    return { volumes: cachedVolumes(deps, (name) => name === driver.name, query), warning: opError('list', driver.name, err).message };
  }
}

/** The store's volumes on the drivers `which` selects, that `query` selects. */
function cachedVolumes(deps: FindDeps, which: (driverName: string) => boolean, query: VolumeQuery): StoredVolume[] {
  const known: StoredVolume[] = [];
  for (const [name, entry] of deps.cache) {
    if (!which(entry.driverName)) continue;
    const own = snapshot(name, entry);
    const stored = deps.global?.view(own) ?? own;
    if (matches(deps, stored, entry, query)) known.push(stored);
  }
  return known;
}

/**
 * A listed volume with the store's labels and options, when `query` selects it (one lookup of its
 * binding). A volume whose name is bound to another driver is dropped. The cached volume itself (a
 * driver that keeps its volumes in memory lists the same objects) is the entry's own snapshot, so
 * what is derived from it is kept with it.
 */
function select(deps: FindDeps, volume: Volume, scope: VolumeScope, query: VolumeQuery): StoredVolume | undefined {
  const entry = deps.cache.get(volume.name);
  if (entry !== undefined && entry.driverName !== volume.driverName) {
    deps.logger.warn(
      `Volume name ${volume.name} already exists for driver ${entry.driverName}, not including volume returned by ${volume.driverName}`,
    );
    return undefined;
  }
  const own: StoredVolume =
    entry !== undefined && entry.volume === volume && entry.scope === scope
      ? snapshot(volume.name, entry)
      : {
          name: volume.name,
          driverName: volume.driverName,
          scope,
          labels: entry?.labels ?? null,
          options: entry?.options ?? null,
          volume,
          createdAt: entry?.createdAt,
        };
  const stored = deps.global?.view(own) ?? own;
  return matches(deps, stored, entry, query) ? stored : undefined;
}

function matches({ global }: FindDeps, volume: StoredVolume, entry: CacheEntry | undefined, query: VolumeQuery): boolean {
  const referenced = global?.referenced(volume.name, volume.driverName) ?? (entry !== undefined && entry.refs.size > 0);
  if (query.referenced !== undefined && referenced !== query.referenced) return false;
  return query.match?.(volume) ?? true;
}
