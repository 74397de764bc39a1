import { withDeadline } from './deadline.js';
import type { VolumeQuery } from './list-filters.js';
import { scopeOf } from './lookup.js';
import { opError } from './op-error.js';
import { snapshot, type CacheEntry, type StoredVolume } from './stored-volume.js';
import type { Logger, Volume, VolumeDriver, VolumeDriverRegistry, VolumeScope } from './types.js';

export interface FindDeps {
  drivers: VolumeDriverRegistry;
  /** The store's bindings, read only. */
  cache: ReadonlyMap<string, CacheEntry>;
  logger: Logger;
  listTimeoutMs: number;
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
 */
export async function findVolumes(deps: FindDeps, query: VolumeQuery, signal: AbortSignal | undefined): Promise<FindResult> {
  let all: VolumeDriver[];
  try {
    all = await deps.drivers.getAllDrivers({ signal });
  } catch (err) {
    throw opError('list', '', err);
  }
  const wanted = query.drivers;
  const selected = wanted === undefined ? all : all.filter((d) => wanted.includes(d.name));
  const listed = await Promise.all(selected.map((d) => listDriver(deps, d, signal)));
  signal?.throwIfAborted();

  const warnings: string[] = [];
  const volumes: StoredVolume[] = [];
  for (const result of listed) {
    if (result.warning !== undefined) warnings.push(result.warning);
    for (const v of result.volumes) if (selects(deps, v, query)) volumes.push(v);
  }
  volumes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { volumes, warnings };
}

async function listDriver(
  deps: FindDeps,
  driver: VolumeDriver,
  signal: AbortSignal | undefined,
): Promise<{ volumes: StoredVolume[]; warning?: string }> {
  const ms = deps.listTimeoutMs;
  try {
    const [volumes, scope] = await withDeadline(ms, `driver did not answer within ${ms}ms`, signal, (s) =>
      Promise.all([driver.list({ signal: s }), scopeOf(driver, s)]),
    );
    return { volumes: volumes.map((v) => withMetadata(deps, v, scope)) };
  } catch (err) {
    signal?.throwIfAborted();
    const known: StoredVolume[] = [];
    for (const [name, entry] of deps.cache) if (entry.driverName === driver.name) known.push(snapshot(name, entry));
    return { volumes: known, warning: opError('list', driver.name, err).message };
  }
}

function withMetadata({ cache }: FindDeps, volume: Volume, scope: VolumeScope): StoredVolume {
  const entry = cache.get(volume.name);
  return {
    name: volume.name,
    driverName: volume.driverName,
    scope,
    labels: entry?.labels ?? null,
    options: entry?.options ?? null,
    volume,
  };
}

function selects({ cache, logger }: FindDeps, volume: StoredVolume, query: VolumeQuery): boolean {
  const bound = cache.get(volume.name);
  if (bound !== undefined && bound.driverName !== volume.driverName) {
    logger.warn(
      `Volume name ${volume.name} already exists for driver ${bound.driverName}, not including volume returned by ${volume.driverName}`,
    );
    return false;
  }
  const referenced = bound !== undefined && bound.refs.size > 0;
  if (query.referenced !== undefined && referenced !== query.referenced) return false;
  return query.match?.(volume) ?? true;
}
