export { fetchPlugin, fetchPluginConfig } from './fetch-plugin.js';
export type { FetchPluginOptions, FetchedPlugin, FetchConfigOptions, FetchedPluginConfig } from './fetch-plugin.js';
export { pushPlugin, buildPluginImage } from './push-plugin.js';
export type { PushPluginOptions, PushResult, BuildPluginImageOptions, PluginImage } from './push-plugin.js';
export { PluginDistribution } from './plugin-distribution.js';
export type { PluginDistributionOptions, RecordedImage } from './plugin-distribution.js';
export { ContentStore } from './content-store.js';
export type { ContentStoreOptions, BlobInfo, ExpectedBlob, WriteBlobOptions } from './content-store.js';
export { decodeRegistryAuth, encodeRegistryAuth, REGISTRY_AUTH_HEADER } from './auth-config.js';
export { RegistryClient, pluginScope, registryHost, MAX_MANIFEST_BYTES } from './registry-client.js';
export type {
  RegistryOptions,
  RegistryClientOptions,
  RequestOptions,
  FetchedManifest,
  BlobStream,
  UploadOptions,
} from './registry-client.js';
export { loginRegistry, loginHost, LOGIN_SUCCEEDED } from './login.js';
export type { LoginOptions } from './login.js';
export { DEFAULT_INSECURE_REGISTRIES, isInsecureRegistry } from './insecure.js';
export { parseRemote } from './names.js';
export { applyLayer } from './layer-extract.js';
export type { ApplyLayerOptions } from './layer-extract.js';
export { packRootfs } from './rootfs-tar.js';
export type { PackOptions } from './rootfs-tar.js';
export type { ProgressHandler } from './progress.js';
export type { Descriptor, ImageManifest } from './manifest.js';
export { isSha256Digest, sha256Digest, shortDigest } from './digest.js';
export * as mediaTypes from './media-types.js';
