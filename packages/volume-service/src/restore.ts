import { getFromDriver, scopeOf } from './lookup.js';
import type { MetadataStore, VolumeRecord } from './metadata-store.js';
import type { CacheEntry } from './stored-volume.js';
import type { Logger, VolumeDriverRegistry } from './types.js';

export interface RestoreDeps {
  metadata: MetadataStore;
  drivers: VolumeDriverRegistry;
  logger: Logger;
  signal?: AbortSignal | undefined;
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
  const outcomes = await Promise.all(
    records.map(async (record) => [record.name, await (record.pending ? undoPending : restoreOne)(record, deps)] as const),
  );
  deps.signal?.throwIfAborted();

  const cache = new Map<string, CacheEntry>();
  const stale: string[] = [];
  for (const [name, outcome] of outcomes) {
    if (outcome.kind === 'cache') cache.set(name, outcome.entry);
    else if (outcome.kind === 'delete') stale.push(name);
  }
  try {
    await deps.metadata.delete(stale);
  } catch (err) {
    deps.logger.warn('Error removing stale entries from volume db', { error: String(err), volumes: stale });
  }
  return cache;
}

async function restoreOne(record: VolumeRecord, { drivers, logger, signal }: RestoreDeps): Promise<Outcome> {
  const fields = { driver: record.driver, volume: record.name };
  let driver;
  try {
    driver = await drivers.createDriver(record.driver, { signal });
  } catch (err) {
    logger.warn('Error restoring volume', { ...fields, error: String(err) });
    return { kind: 'keep' };
  }
  const release = async (): Promise<void> => {
    try {
      await drivers.releaseDriver(record.driver, { signal });
    } catch (err) {
      logger.error('Error releasing reference to volume driver', { ...fields, error: String(err) });
    }
  };

  let volume;
  try {
    volume = await getFromDriver(driver, record.name, logger, signal);
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
  const entry: CacheEntry = {
    volume,
    driverName: volume.driverName,
    scope: await scopeOf(driver, signal),
    labels: record.labels === null ? null : { ...record.labels },
    options: record.options === null ? null : { ...record.options },
    refs: new Set(record.refs),
    driverRef: record.driver,
  };
  return { kind: 'cache', entry };
}

/** Undoes a create that crashed before it was acknowledged; retried on the next start if the driver is away. */
async function undoPending(record: VolumeRecord, { drivers, logger, signal }: RestoreDeps): Promise<Outcome> {
  const fields = { driver: record.driver, volume: record.name };
  try {
    const driver = await drivers.getDriver(record.driver, { signal });
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
