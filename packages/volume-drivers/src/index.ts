export type {
  CallOptions,
  VolumeScope,
  Volume,
  VolumeDriver,
  PluginRefMode,
  PluginGetter,
  ListPluginsOptions,
  DriverLookupOptions,
  VolumePlugin,
  PluginCaller,
  PluginCallOptions,
  PluginDriverAdapter,
  AdaptedPlugin,
} from './types.js';
export { DEFAULT_DRIVER_NAME, LOCAL_SCOPE, GLOBAL_SCOPE } from './types.js';

export { VolumeDriverRegistry, VOLUME_DRIVER_CAPABILITY } from './driver-registry.js';
export type { VolumeDriverRegistryOptions } from './driver-registry.js';

export { createPluginAdapter, PluginVolumeDriver } from './plugin-adapter.js';
export type { PluginAdapterOptions } from './plugin-adapter.js';
export { PluginVolume } from './plugin-volume.js';
export { VOLUME_DRIVER_LONG_TIMEOUT_MS, VOLUME_DRIVER_SHORT_TIMEOUT_MS } from './volume-driver-proxy.js';

export { LocalDriver, VOLUME_DATA_DIR, VOLUME_OPTIONS_FILE } from './local-driver.js';
export type { LocalDriverOptions } from './local-driver.js';
export { LocalVolume } from './local-volume.js';
export type { LocalVolumeOptions } from './local-options.js';
export { LOCAL_DRIVER_OPTIONS, validateLocalOptions } from './local-options.js';
export {
  validateLocalVolumeName,
  RESTRICTED_NAME_CHARS,
  RESTRICTED_NAME_PATTERN,
  MAX_LOCAL_VOLUME_NAME_LENGTH,
} from './names.js';

export { SystemMounter, DEFAULT_MOUNT_TIMEOUT_MS } from './mounter.js';
export type { Mounter, MountRequest, SystemMounterOptions } from './mounter.js';
export type { MountInfo } from './mountinfo.js';
/** Crash-safe file replacement (temp file, fsync, rename, directory fsync), for other packages' small state files. */
export { writeFileAtomic } from './fs-util.js';
export type { ResolveAddress } from './mount-options.js';
