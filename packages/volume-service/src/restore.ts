import type { Logger } from '@berth/logger';
import type { Volume, VolumeDriver, VolumeScope } from '@berth/volume-drivers';
import type { HeldReferences } from './cluster-store.js';
import { getFromDriver, scopeOf } from './lookup.js';
import type { MetadataStore, VolumeRecord } from './metadata-store.js';
import type { CacheEntry } from './stored-volume.js';
import type { VolumeDriverRegistry } from './types.js';

export interface RestoreDeps {
  metadata: MetadataStore;
  drivers: VolumeDriverRegistry;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /**
   * This host's references on global volumes, kept by the cluster store: those volumes are
   * restored as well (from their drivers, with their references live-restored); their records are
   * the cluster's, never deleted here.
   */
  held?: ReadonlyMap<string, HeldReferences> | undefined;
}

type Outcome = { kind: 'cache'; entry: CacheEntry } | { kind: 'delete' } | { kind: 'keep' };

/**
 * moby's `restore()`: rebuilds the cache from the metadata records, in parallel, and acquires one
 * driver reference per restored volume. Only records are considered; drivers are not probed for
 * volumes created behind berth's back.
 *
 * - driver cannot be reached: warn, keep the record, do not cache it (it reappears with its driver);
 * - driver has no such volume: delete the record;
 * - found: cache it with its labels, options and persisted refs, and live-restore each ref;
 * - pending (a create never acknowledged): remove the volume from its driver, delete the record.
 */
export async function restoreVolumes(deps: RestoreDeps): Promise<Map<string, CacheEntry>> {
  const records = await deps.metadata.list();
  const global = heldRecords(records, deps.held);
  records.push(...global.values());
  // One scope question per driver, not per volume.
  const scopes = new Map<VolumeDriver, Promise<VolumeScope>>();
  const scope = (driver: VolumeDriver): Promise<VolumeScope> => {
    let known = scopes.get(driver);
    if (known === undefined) scopes.set(driver, (known = scopeOf(driver, deps.signal)));
    return known;
  };

  const cache = new Map<string, CacheEntry>();
  const stale: string[] = [];
  const settle = (name: string, outcome: Outcome): void => {
    if (outcome.kind === 'cache') cache.set(name, outcome.entry);
    else if (outcome.kind === 'delete' && !global.has(name)) stale.push(name);
  };
  const byDriver = new Map<string, VolumeRecord[]>();
  const work: Array<Promise<void>> = [];
  for (const record of records) {
    if (record.pending) {
      work.push(undoPending(record, deps).then((outcome) => settle(record.name, outcome)));
      continue;
    }
    const group = byDriver.get(record.driver);
    if (group === undefined) byDriver.set(record.driver, [record]);
    else group.push(record);
  }
  for (const [driverName, group] of byDriver) work.push(restoreGroup(driverName, group, deps, scope, settle));
  await Promise.all(work);
  deps.signal?.throwIfAborted();

  try {
    await deps.metadata.delete(stale);
  } catch (err) {
    deps.logger.warn('Error removing stale entries from volume db', { error: String(err), volumes: stale });
  }
  return cache;
}

/** Records for the global volumes this host holds references on, unless a local record has the name. */
function heldRecords(local: readonly VolumeRecord[], held: ReadonlyMap<string, HeldReferences> | undefined): Map<string, VolumeRecord> {
  const records = new Map<string, VolumeRecord>();
  if (held === undefined || held.size === 0) return records;
  const names = new Set(local.map((r) => r.name));
  for (const [name, { driver, refs }] of held) {
    if (!names.has(name)) records.set(name, { name, driver, labels: null, options: null, pending: false, refs });
  }
  return records;
}

/**
 * The volumes of one driver. The first is restored as any volume is, which looks the driver up;
 * when the registry then has the driver at hand (`peekDriver`: registered in-process, or a legacy
 * plugin's kept driver, whose lookups count no references) and the driver knows its volumes in
 * memory (`getSync`, the local driver), the others are restored in one synchronous pass: the same
 * outcome, without one lookup and one promise chain per volume (thousands at start). Anything else
 * (managed plugins, volumes with references to live-restore) goes through `restoreOne`.
 */
async function restoreGroup(
  driverName: string,
  group: VolumeRecord[],
  deps: RestoreDeps,
  scope: (driver: VolumeDriver) => Promise<VolumeScope>,
  settle: (name: string, outcome: Outcome) => void,
): Promise<void> {
  const [first, ...rest] = group;
  if (first === undefined) return;
  settle(first.name, await restoreOne(first, deps, scope));
  const driver = deps.drivers.peekDriver?.(driverName);
  const slow: VolumeRecord[] = [];
  if (driver?.getSync === undefined) {
    slow.push(...rest);
  } else {
    const driverScope = await scope(driver);
    for (const record of rest) {
      if (record.refs.length > 0) {
        slow.push(record);
        continue;
      }
      let volume: Volume | undefined;
      try {
        volume = driver.getSync(record.name);
      } catch {
        slow.push(record); // let the general path log and decide
        continue;
      }
      if (volume === undefined) settle(record.name, { kind: 'delete' });
      else settle(record.name, { kind: 'cache', entry: cacheEntry(record, volume, driverScope) });
    }
  }
  await Promise.all(slow.map(async (record) => settle(record.name, await restoreOne(record, deps, scope))));
}

function cacheEntry(record: VolumeRecord, volume: Volume, scope: VolumeScope): CacheEntry {
  return {
    volume,
    driverName: volume.driverName,
    scope,
    labels: record.labels === null ? null : { ...record.labels },
    options: record.options === null ? null : { ...record.options },
    refs: new Set(record.refs),
    driverRef: record.driver,
  };
}

async function restoreOne(
  record: VolumeRecord,
  { drivers, logger, signal }: RestoreDeps,
  scope: (driver: VolumeDriver) => Promise<VolumeScope>,
): Promise<Outcome> {
  const fields = { driver: record.driver, volume: record.name };
  let driver;
  try {
    // A plugin that is not there yet is not waited for: the start would wait with it (dockerd's
    // 15 s per missing plugin), and the record is kept, so the volume comes back with its plugin.
    driver = await drivers.createDriver(record.driver, { signal, waitForPlugin: false });
  } catch (err) {
    logger.warn('Error restoring volume', { ...fields, error: String(err) });
    return { kind: 'keep' };
  }
  const release = async (): Promise<void> => {
    try {
      await drivers.releaseDriver(record.driver, { signal, waitForPlugin: false });
    } catch (err) {
      logger.error('Error releasing reference to volume driver', { ...fields, error: String(err) });
    }
  };

  let volume;
  try {
    // A driver that knows its volumes in memory (the local driver) answers without a promise.
    volume = driver.getSync !== undefined ? driver.getSync(record.name) : await getFromDriver(driver, record.name, logger, signal);
  } catch (err) {
    logger.warn('Error restoring volume', { ...fields, error: String(err) });
    await release();
    return { kind: 'keep' };
  }
  if (volume === undefined) {
    await release();
    return { kind: 'delete' };
  }

  for (const ref of record.refs) {
    try {
      await volume.liveRestore?.(ref, { signal });
    } catch (err) {
      logger.warn('Error live-restoring volume reference', { ...fields, ref, error: String(err) });
    }
  }
  return { kind: 'cache', entry: cacheEntry(record, volume, await scope(driver)) };
}

/** Undoes a create that crashed before it was acknowledged; retried on the next start if the driver is away. */
async function undoPending(record: VolumeRecord, { drivers, logger, signal }: RestoreDeps): Promise<Outcome> {
  const fields = { driver: record.driver, volume: record.name };
  try {
    const driver = await drivers.getDriver(record.driver, { signal, waitForPlugin: false });
    const volume = await getFromDriver(driver, record.name, logger, signal);
    if (volume !== undefined) {
      await driver.remove(volume, { signal });
      logger.info('Removed volume of an unacknowledged create', fields);
    }
    return { kind: 'delete' };
  } catch (err) {
    logger.warn('Error undoing an unacknowledged volume create', { ...fields, error: String(err) });
    return { kind: 'keep' };
  }
}
