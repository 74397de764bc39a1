export { PluginStore } from './plugin-store.js';
export type { PluginStoreOptions, StoreCallOptions, GetAllByCapOptions, GetPluginOptions } from './plugin-store.js';
export { PROTOCOL_SCHEME_HTTP_V1, REF_DELTA } from './compat-plugin.js';
export type { CompatPlugin, RefMode } from './compat-plugin.js';
export { Plugin, DEFAULT_MANAGED_PLUGIN_TIMEOUT_MS } from './plugin.js';
export type { PluginInit } from './plugin.js';
export { emptyPluginConfig } from './plugin-types.js';
export type {
  PluginObject,
  PluginConfig,
  PluginSettings,
  PluginInterface,
  PluginMount,
  PluginDevice,
  PluginEnv,
  PluginArgs,
  PluginLinux,
  PluginUser,
  PluginRootfs,
} from './plugin-types.js';
export { parseCapability, formatCapability, pluginType, interfaceTypes } from './capability.js';
export { parsePluginConfig, decodePluginObject, initEmptySettings, DEFAULT_MAX_CONFIG_BYTES } from './plugin-config.js';
export { computePrivileges, validatePrivileges } from './privileges.js';
export type { PluginPrivilege } from './privileges.js';
export { pluginNameForCreate, pluginNameForPull } from './plugin-names.js';
export { extractRootfsTar } from './rootfs-extract.js';
export type { ExtractRootfsOptions, ExtractRootfsResult, TarEntry } from './rootfs-extract.js';
export type { CapabilityID } from './capability.js';
export { parseNormalizedNamed, familiarName, familiarString, tagNameOnly, referenceString } from './reference.js';
export type { NamedReference } from './reference.js';
export type { RegistryAuth, JsonMessage, RemoteCallOptions } from './registry-types.js';
export {
  pluginNotFound,
  pluginAmbiguous,
  pluginDisabled,
  pluginInUse,
  pluginEnabled,
  pluginAlreadyExists,
  inadequateCapability,
  notImplements,
} from './errors.js';
export {
  LegacyRegistry,
  DEFAULT_DISCOVERY_GRACE_MS,
  DEFAULT_DISCOVERY_POLL_MS,
  DEFAULT_UNREACHABLE_TTL_MS,
  DEFAULT_ACTIVATION_TIMEOUT_MS,
  DEFAULT_PROBE_TIMEOUT_MS,
} from './legacy-registry.js';
export type { LegacyRegistryOptions, LookupOptions, GetAllOptions, PluginHandler } from './legacy-registry.js';
export { LegacyPlugin } from './legacy-plugin.js';
export type { Manifest } from './legacy-plugin.js';
export { DEFAULT_SOCKET_DIRS, DEFAULT_SPEC_DIRS, defaultLegacyDirs } from './discovery.js';
export type { LegacyDirs, LegacyPluginSpec } from './discovery.js';
export {
  PluginClient,
  VERSION_MIMETYPE,
  UNIX_SOCKET_HOST,
  PLUGIN_LONG_TIMEOUT_MS,
  PLUGIN_SHORT_TIMEOUT_MS,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_DIAL_TIMEOUT_MS,
  DEFAULT_MAX_RESPONSE_BYTES,
  pluginStatusCode,
  isPluginNotFound,
} from './plugin-client.js';
export type { PluginClientOptions, PluginCallOptions, PluginCallObserver, PluginCallOutcome, PluginStatus, TlsConfig } from './plugin-client.js';
export { parsePluginAddress } from './plugin-address.js';
export type { PluginTarget } from './plugin-address.js';
export { backoffMs, shouldAbortRetry, DEFAULT_RETRY_POLICY } from './backoff.js';
export type { RetryPolicy } from './backoff.js';
export type { ReachabilityGate, DialTicket } from './reachability.js';
export { systemClock } from './clock.js';
export type { Clock } from './clock.js';
