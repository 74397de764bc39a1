export { VolumesService, metadataPath, DEFAULT_LIST_TIMEOUT_MS } from './volumes-service.js';
export type {
  VolumesServiceOptions,
  CreateVolumeRequest,
  GetVolumeOptions,
  RemoveVolumeOptions,
} from './volumes-service.js';
export { ANONYMOUS_LABEL } from './list-filters.js';
export { SqliteMetadataStore, METADATA_FILE_NAME, METADATA_FILE_NAMES, METADATA_RESERVE_BYTES } from './sqlite-metadata-store.js';
export type { SqliteMetadataStoreOptions, EmptyStart } from './sqlite-metadata-store.js';
export { REBUILT_MOUNT_REFERENCE } from './rebuild.js';
export {
  adoptDockerMetadata,
  exportDockerMetadata,
  dockerMetadataPath,
  DOCKER_METADATA_FILE_NAME,
  RESERVED_VOLUME_NAMES,
} from './docker-metadata.js';
export type { AdoptDockerMetadataOptions, AdoptionReport, ExportDockerMetadataOptions } from './docker-metadata.js';
export { MemoryMetadataStore } from './memory-metadata-store.js';
export { HOST_ATTRIBUTE } from './global-volumes.js';
export type {
  ClusterStore,
  ClusterVolumeInput,
  ClusterVolumeRecord,
  ClusterVolumeEvent,
  HeldReferences,
  RemovalClaim,
} from './cluster-store.js';
export type { MetadataStore, VolumeRecord, VolumeRecordInput, StringMap } from './metadata-store.js';
export { isNotExist, isInUse, isNameConflict } from './op-error.js';
export type { VolumeDriverRegistry, VolumeEventSink, VolumeInfo, ListResult, PruneReport } from './types.js';
