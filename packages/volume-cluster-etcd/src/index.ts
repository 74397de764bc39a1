export {
  EtcdClusterStore,
  DEFAULT_PREFIX,
  DEFAULT_LEASE_TTL_SECONDS,
  DEFAULT_COMMAND_TIMEOUT_MS,
  HOST_NAME_PATTERN,
} from './etcd-cluster-store.js';
export type { EtcdClusterStoreOptions, RemovalClaim, CallOptions } from './etcd-cluster-store.js';
export type { GlobalVolumeInput, GlobalVolumeRecord, GlobalVolumeEvent, StringMap } from './volume-cache.js';
export type { HeldVolume } from './held-references.js';
export { HELD_REFERENCES_FILE } from './held-references.js';
