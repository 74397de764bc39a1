export { EtcdClusterStore } from './etcd-cluster-store.js';
export type { EtcdClusterStoreOptions, RemovalClaim, CallOptions } from './etcd-cluster-store.js';
export type { GlobalVolumeInput, GlobalVolumeRecord, GlobalVolumeEvent, StringMap } from './volume-cache.js';
export type { HeldVolume } from './held-references.js';
export { HELD_REFERENCES_FILE } from './held-references.js';
