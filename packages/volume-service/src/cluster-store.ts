import type { CallOptions } from '@berth/volume-drivers';
import type { StringMap } from './metadata-store.js';

/**
 * What the volume service needs from a cluster store: the shared metadata of `global`-scope
 * volumes (name → driver, labels, options, creation time) and every host's references on them.
 * Declared here, satisfied structurally (by `@berth/volume-cluster-etcd`'s `EtcdClusterStore`,
 * composed by the daemon). The service never opens or closes it.
 */
export interface ClusterStore {
  /** This host's name in the cluster; references read `<host>/<ref>`. */
  readonly host: string;
  /** The record from this host's watch-fed cache: never waits for the cluster. */
  lookup(name: string): ClusterVolumeRecord | undefined;
  /** Why the cache may be stale (the cluster cannot be reached), for `ls` warnings; `undefined` when in sync. */
  warning(): string | undefined;
  /**
   * Why the cluster cannot be reached right now (a request failed to reach it, and nothing has
   * answered since); `undefined` otherwise. Narrower than `warning()`: a watch moving to another
   * member makes the cache stale for a moment, not the cluster unreachable.
   */
  unreachable(): string | undefined;
  /**
   * Create-if-absent, in one transaction: the record committed by this call (`created`), or the one
   * another call committed first (whatever its driver). Resolves only once the cluster has committed.
   */
  create(record: ClusterVolumeInput, options?: CallOptions): Promise<{ record: ClusterVolumeRecord; created: boolean }>;
  /**
   * Takes the right to remove the volume, unless a host holds references on it (`inUse`: every
   * host's, `<host>/<ref>`, sorted). While claimed, no host can add a reference. `not-found` when
   * there is no record.
   */
  claimRemoval(name: string, options?: CallOptions): Promise<RemovalClaim | { inUse: readonly string[] }>;
  /**
   * Adds a reference of this host (kept alive with the host, kept on disk to be asserted again).
   * `not-found` when the volume is gone from the cluster, `conflict` while it is being removed.
   */
  addRef(name: string, ref: string, options?: CallOptions): Promise<void>;
  /** Drops a reference of this host; an unreachable cluster drops it once it can be reached again. */
  removeRef(name: string, ref: string, options?: CallOptions): Promise<void>;
  /** The references this host holds, by volume name, as kept on this host (what a restore re-caches). */
  heldReferences(): ReadonlyMap<string, HeldReferences>;
  /** Called for volumes created or destroyed on other hosts; returns the unsubscribe function. */
  subscribe(listener: (event: ClusterVolumeEvent) => void): () => void;
}

export interface ClusterVolumeInput {
  readonly name: string;
  readonly driver: string;
  readonly labels: Readonly<StringMap> | null;
  readonly options: Readonly<StringMap> | null;
}

/** A global volume as the cluster keeps it. */
export interface ClusterVolumeRecord extends ClusterVolumeInput {
  /** When the volume was created (ms since the epoch, the creating host's clock). */
  readonly createdAt: number;
  /** The host that created it. */
  readonly host: string;
  /** Every host's references, `<host>/<ref>`, sorted, as the cache last saw them. */
  readonly refs: readonly string[];
}

export interface HeldReferences {
  readonly driver: string;
  readonly refs: readonly string[];
}

export interface RemovalClaim {
  /** Deletes the record: the volume is gone for every host. */
  commit(options?: CallOptions): Promise<void>;
  /** Gives the claim up: the volume stays. */
  release(options?: CallOptions): Promise<void>;
}

export interface ClusterVolumeEvent {
  readonly action: 'create' | 'destroy';
  readonly name: string;
  readonly driver: string;
  /** The host where it happened. */
  readonly host: string;
}
