import type { Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME, type Volume, type VolumeDriver, type VolumeScope } from '@berth/volume-drivers';
import type { HeldReferences } from './cluster-store.js';
import { getFromDriver, scopeOf } from './lookup.js';
import type { MetadataStore, VolumeRecord } from './metadata-store.js';
import { ownCreatedAt, refSet, type CacheEntry } from './stored-volume.js';
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

/** What one restore collects while records are restored in parallel. */
interface Restoring {
  readonly deps: RestoreDeps;
  readonly cache: Map<string, CacheEntry>;
  /** Records to delete (their volume is gone). */
  readonly stale: string[];
  /** Records that gain the creation time read at restore (written before berth kept it). */
  readonly timed: VolumeRecord[];
  scope(driver: VolumeDriver): Promise<VolumeScope>;
  settle(record: VolumeRecord, outcome: Outcome): void;
}

/**
 * moby's `restore()`: rebuilds the cache from the metadata records, in parallel, and acquires one
 * driver reference per restored volume.
 *
 * - driver cannot be reached: warn, keep the record, do not cache it (it reappears with its driver);
 * - driver has no such volume: delete the record, unless the driver makes the volume again
 *   (`recreateMissing`: the local driver, whose directory a machine crash may have lost; logged);
 * - found: cache it with its labels, options, creation time and persisted refs, and live-restore each ref;
 * - pending (a create never acknowledged): remove the volume from its driver, delete the record.
 *
 * Then the volumes the local driver has without a record are adopted (moby lists them too): each
 * gets a record with its driver options and creation time. Records without a creation time (from
 * before berth kept it) get the one read now.
 */
export async function restoreVolumes(deps: RestoreDeps): Promise<Map<string, CacheEntry>> {
  const records = await deps.metadata.list();
  const global = heldRecords(records, deps.held);
  records.push(...global.values());
  // One scope question per driver, not per volume.
  const scopes = new Map<VolumeDriver, Promise<VolumeScope>>();
  const r: Restoring = {
    deps,
    cache: new Map(),
    stale: [],
    timed: [],
    scope: (driver) => {
      let known = scopes.get(driver);
      if (known === undefined) scopes.set(driver, (known = scopeOf(driver, deps.signal)));
      return known;
    },
    settle: (record, outcome) => {
      if (outcome.kind === 'cache') r.cache.set(record.name, outcome.entry);
      else if (outcome.kind === 'delete' && !global.has(record.name)) r.stale.push(record.name);
    },
  };
  const byDriver = new Map<string, VolumeRecord[]>();
  const work: Array<Promise<void>> = [];
  for (const record of records) {
    if (record.pending) {
      work.push(undoPending(record, deps).then((outcome) => r.settle(record, outcome)));
      continue;
    }
    const group = byDriver.get(record.driver);
    if (group === undefined) byDriver.set(record.driver, [record]);
    else group.push(record);
  }
  for (const [driverName, group] of byDriver) work.push(restoreGroup(driverName, group, r));
  await Promise.all(work);
  deps.signal?.throwIfAborted();
  await adoptUnrecorded(new Set(records.map((record) => record.name)), r);

  try {
    await deps.metadata.delete(r.stale);
  } catch (err) {
    deps.logger.warn('Error removing stale entries from volume db', { error: String(err), volumes: r.stale });
  }
  // Committed together (their syncs are shared); a failure only costs a `stat` at the next start.
  const timed = await Promise.allSettled(r.timed.map((record) => deps.metadata.put(record, record.refs)));
  const failed = timed.find((t) => t.status === 'rejected');
  if (failed !== undefined) deps.logger.warn('Error recording the creation time of volumes', { error: String(failed.reason) });
  return r.cache;
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
 * memory (`getSync`, the local driver), the others it has are restored in one synchronous pass:
 * the same outcome, without one lookup and one promise chain per volume (thousands at start).
 * Anything else (managed plugins, volumes with references to live-restore, volumes the driver does
 * not have) goes through `restoreOne`.
 */
async function restoreGroup(driverName: string, group: VolumeRecord[], r: Restoring): Promise<void> {
  const [first, ...rest] = group;
  if (first === undefined) return;
  r.settle(first, await restoreOne(first, r));
  const driver = r.deps.drivers.peekDriver?.(driverName);
  const slow: VolumeRecord[] = [];
  if (driver?.getSync === undefined) {
    slow.push(...rest);
  } else {
    const driverScope = await r.scope(driver);
    for (const record of rest) {
      let volume: Volume | undefined;
      try {
        volume = record.refs.length > 0 ? undefined : driver.getSync(record.name);
      } catch {
        volume = undefined; // let the general path log and decide
      }
      if (volume === undefined) slow.push(record);
      else r.settle(record, { kind: 'cache', entry: cacheEntry(record, volume, driver, driverScope, r) });
    }
  }
  await Promise.all(slow.map(async (record) => r.settle(record, await restoreOne(record, r))));
}

/**
 * The cache entry of a restored record. Its creation time is the record's, else read now (and
 * recorded). The options of a volume whose record has some are read now (the local driver reads
 * them on first use), so that a volume whose options cannot be read is reported at start.
 */
function cacheEntry(record: VolumeRecord, volume: Volume, driver: VolumeDriver, scope: VolumeScope, r: Restoring): CacheEntry {
  let createdAt = record.createdAt;
  if (createdAt === undefined) {
    createdAt = ownCreatedAt(driver, volume);
    if (createdAt !== undefined) r.timed.push({ ...record, createdAt });
  }
  if (record.options !== null) volume.driverOptions?.();
  // The record is this restore's own copy: its maps are not copied again.
  return {
    volume,
    driverName: volume.driverName,
    scope,
    labels: record.labels === null ? null : (record.labels as Record<string, string>),
    options: record.options === null ? null : (record.options as Record<string, string>),
    refs: refSet(record.refs),
    driverRef: record.driver,
    createdAt,
  };
}

async function restoreOne(record: VolumeRecord, r: Restoring): Promise<Outcome> {
  const { drivers, logger, signal } = r.deps;
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
    if (volume === undefined && driver.recreateMissing !== undefined) {
      volume = await driver.recreateMissing(record.name, record.options ?? undefined, { signal });
      if (volume !== undefined) {
        logger.warn(
          `Re-created the directory of volume ${record.name}, empty: its record outlived it ` +
            '(a machine crash on a file system that does not keep directory changes in order with the metadata commit)',
          fields,
        );
      }
    }
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
  return { kind: 'cache', entry: cacheEntry(record, volume, driver, await r.scope(driver), r) };
}

/**
 * The local driver's volumes that have no record (moby's driver lists every directory in its
 * root, and so does `volume ls`): each gets a record (no labels, the driver options it keeps, its
 * creation time) and is cached, as a `get` of it would do on first sight.
 */
async function adoptUnrecorded(recorded: ReadonlySet<string>, r: Restoring): Promise<void> {
  const { drivers, metadata, logger, signal } = r.deps;
  const driver = drivers.peekDriver?.(DEFAULT_DRIVER_NAME);
  if (driver?.getSync === undefined) return;
  const unrecorded = (await driver.list({ signal })).filter((volume) => !recorded.has(volume.name));
  if (unrecorded.length === 0) return;
  const driverScope = await r.scope(driver);
  const adopted: string[] = [];
  await Promise.all(
    unrecorded.map(async (volume) => {
      const record: VolumeRecord = {
        name: volume.name,
        driver: driver.name,
        labels: null,
        options: volume.driverOptions?.() ?? null,
        createdAt: ownCreatedAt(driver, volume),
        pending: false,
        refs: [],
      };
      try {
        await metadata.put(record);
      } catch (err) {
        logger.warn('Error recording a volume found without a record', { driver: driver.name, volume: volume.name, error: String(err) });
        return;
      }
      r.cache.set(volume.name, cacheEntry(record, volume, driver, driverScope, r));
      adopted.push(volume.name);
    }),
  );
  if (adopted.length > 0) {
    logger.info(`Adopted ${adopted.length} volumes of the ${driver.name} driver that had no record, as moby lists them`, { volumes: adopted.sort() });
  }
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
