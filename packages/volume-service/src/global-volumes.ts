import { isNotFound, unavailable } from '@berth/errdefs';
import type { ClusterStore, ClusterVolumeRecord, RemovalClaim } from './cluster-store.js';
import type { VolumeRecord, VolumeRecordInput } from './metadata-store.js';
import { inUse, isNotExist, nameConflict, noSuchVolume, opError, wrapError } from './op-error.js';
import type { StoredVolume } from './stored-volume.js';

/** The event attribute naming the host where a global volume was created or destroyed. */
export const HOST_ATTRIBUTE = 'host';

/**
 * The volume store's side of a cluster store: which names are global, and the steps of the global
 * create, reference and remove that differ from a local volume's. The record of a global volume
 * lives in the cluster only (never in the local metadata store); the store routes a name here when
 * the cluster has a record of it on the driver the store knows it by.
 */
export class GlobalVolumes {
  readonly cluster: ClusterStore;

  constructor(cluster: ClusterStore) {
    this.cluster = cluster;
  }

  /** The cluster's record of `name`, when it is bound to `driver` (to any driver when `driver` is undefined). */
  record(name: string, driver?: string): ClusterVolumeRecord | undefined {
    const record = this.cluster.lookup(name);
    return record !== undefined && (driver === undefined || record.driver === driver) ? record : undefined;
  }

  /** The cluster's record in the shape the store's lookups take; its references are this host's own. */
  metadataRecord(name: string): VolumeRecord | undefined {
    const record = this.cluster.lookup(name);
    if (record === undefined) return undefined;
    const held = this.cluster.heldReferences().get(name);
    const refs = held?.driver === record.driver ? held.refs : [];
    return { name, driver: record.driver, labels: record.labels, options: record.options, pending: false, refs };
  }

  /** The volume with what the cluster knows of it (labels, options, creation time), when it is a global volume. */
  view(volume: StoredVolume): StoredVolume {
    const record = this.record(volume.name, volume.driverName);
    if (record === undefined) return volume;
    return { ...volume, labels: record.labels, options: record.options, createdAt: record.createdAt };
  }

  /** Whether any host holds a reference on the global volume `name` of `driver`, as the cache last saw. */
  referenced(name: string, driver: string): boolean | undefined {
    const record = this.record(name, driver);
    return record === undefined ? undefined : record.refs.length > 0;
  }

  attributes(driver: string, host = this.cluster.host): Record<string, string> {
    return { driver, [HOST_ATTRIBUTE]: host };
  }

  /**
   * Fails fast while the cluster cannot be reached, before a driver is asked to create anything:
   * a volume created in a shared backend without its record would be left there for every host.
   */
  ensureReachable(): void {
    const why = this.cluster.unreachable();
    if (why !== undefined) throw unavailable(why);
  }

  /**
   * The commit of a global create: create-if-absent in the cluster. The name bound to another
   * driver is moby's conflict; bound to the same driver, the existing record (idempotent create).
   */
  async commitCreate(record: VolumeRecordInput, signal: AbortSignal | undefined): Promise<{ record: ClusterVolumeRecord; created: boolean }> {
    const committed = await this.cluster.create(record, { signal });
    if (committed.record.driver !== record.driver) {
      throw nameConflict(`driver '${committed.record.driver}' already has volume '${record.name}'`);
    }
    return committed;
  }

  /** Adds this host's reference; a volume the cluster no longer has is `no such volume`. */
  async addRef(name: string, ref: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.cluster.addRef(name, ref, { signal });
    } catch (err) {
      if (isNotFound(err)) throw noSuchVolume();
      throw wrapError(err, 'error setting volume metadata');
    }
  }

  async removeRef(name: string, ref: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.cluster.removeRef(name, ref, { signal });
    } catch (err) {
      throw wrapError(err, 'error removing volume metadata');
    }
  }

  /**
   * Claims the removal of `name`: `remove <name>: volume is in use - [<host>/<ref>, ...]` while any
   * host holds a reference on it.
   */
  async claim(name: string, signal: AbortSignal | undefined): Promise<RemovalClaim> {
    let claimed: RemovalClaim | { inUse: readonly string[] };
    try {
      claimed = await this.cluster.claimRemoval(name, { signal });
    } catch (err) {
      throw opError('remove', name, isNotFound(err) ? noSuchVolume() : err);
    }
    if ('inUse' in claimed) throw opError('remove', name, inUse(), claimed.inUse);
    return claimed;
  }

  /** Deletes the record of a volume its driver no longer has (moby's purge of a stale name). */
  async forget(name: string, signal?: AbortSignal): Promise<void> {
    let claim: RemovalClaim;
    try {
      claim = await this.claim(name, signal);
    } catch (err) {
      if (isNotExist(err)) return;
      throw err;
    }
    await claim.commit({ signal });
  }
}
