export { PluginManager } from './plugin-manager.js';
export type { PluginManagerOptions } from './plugin-manager.js';
export type { CallOptions, EnableOptions, ForceOptions } from './call-options.js';
export type { RootfsInstallOptions } from './install.js';
export type {
  ManagedPlugin,
  PluginStoreLike,
  CreatePlugin,
  Executor,
  ExecutorCallOptions,
  ExitHandler,
  PluginEvents,
  PluginEventAction,
  ContentStoreLike,
  PluginImageRecord,
} from './contracts.js';
export type { Distribution, FetchedImage, BuiltImage } from './distribution.js';
export { buildSpec, DEFAULT_CAPABILITIES, DEFAULT_PATH_ENV, PLUGIN_RUNTIME_DESTINATION } from './spec.js';
export type { OciSpec, OciMount, SpecPaths } from './spec.js';
export type { OciDevice, OciDeviceRule } from './devices.js';
export { applySettings } from './settings.js';
export { DEFAULT_RESTART_POLICY } from './backoff.js';
export type { RestartPolicy } from './backoff.js';
