import type { NamedReference, PluginConfig, RemoteCallOptions } from '@berth/plugin-store';
import type { ContentStore } from './content-store.js';
import { fetchPlugin, fetchPluginConfig, type FetchedPlugin, type FetchedPluginConfig } from './fetch-plugin.js';
import { parseImageManifest } from './manifest.js';
import { MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_PLUGIN_CONFIG } from './media-types.js';
import { buildPluginImage, pushPlugin, type PluginImage } from './push-plugin.js';
import type { RegistryOptions } from './registry-client.js';

export interface PluginDistributionOptions {
  /** The content store of plugin images (`<data-root>/plugins/storage`). */
  readonly store: ContentStore;
  /** `insecureRegistries`, `userAgent`, … (the daemon's registry configuration). */
  readonly registry?: RegistryOptions | undefined;
}

/** The image a plugin's recorded digests name. */
export interface RecordedImage {
  readonly manifestDigest: string;
}

/**
 * Distribution of plugin images between one content store and registries: what
 * `@berth/plugin-manager`'s `Distribution` asks for, satisfied structurally. The manager sequences
 * pull, upgrade and push; this fetches, builds and sends images.
 */
export class PluginDistribution {
  readonly store: ContentStore;
  readonly #registry: RegistryOptions;

  constructor(options: PluginDistributionOptions) {
    this.store = options.store;
    this.#registry = options.registry ?? {};
  }

  /** Manifest and config of a remote plugin, without its layers (kept in the store too, as moby does). */
  fetchConfig(remote: NamedReference, options: RemoteCallOptions = {}): Promise<FetchedPluginConfig> {
    return fetchPluginConfig({ remote, auth: options.auth, registry: this.#options(options), signal: options.signal });
  }

  /** A remote plugin's blobs into the store, its layers extracted into a new directory under `tmpDir`. */
  fetch(remote: NamedReference, options: RemoteCallOptions & { readonly tmpDir: string }): Promise<FetchedPlugin> {
    return fetchPlugin({
      store: this.store,
      tmpDir: options.tmpDir,
      remote,
      auth: options.auth,
      registry: this.#options(options),
      signal: options.signal,
      onProgress: options.onProgress,
    });
  }

  /** One gzip layer of `rootfsDir`, the config and a schema2 manifest, written to the store. */
  buildImage(options: { readonly config: PluginConfig; readonly rootfsDir: string; readonly signal?: AbortSignal | undefined }): Promise<PluginImage> {
    return buildPluginImage({ store: this.store, config: options.config, rootfsDir: options.rootfsDir, signal: options.signal });
  }

  /**
   * Whether a recorded image can be pushed as is: a docker schema2 manifest with a plugin config
   * and gzip layers, every blob in the store. Anything unreadable is `false` (the caller builds a
   * new image).
   */
  async isPushable(image: RecordedImage): Promise<boolean> {
    try {
      const bytes = await this.store.readBytes(image.manifestDigest);
      const { mediaType } = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
      if (mediaType !== MEDIA_TYPE_DOCKER_MANIFEST) return false;
      const manifest = parseImageManifest(bytes, mediaType);
      if (manifest.config.mediaType !== MEDIA_TYPE_PLUGIN_CONFIG) return false;
      if (manifest.layers.length === 0 || manifest.layers.some((l) => l.mediaType !== MEDIA_TYPE_DOCKER_LAYER_GZIP)) return false;
      for (const blob of [manifest.config, ...manifest.layers]) if (!(await this.store.has(blob.digest))) return false;
      return true;
    } catch {
      return false;
    }
  }

  /** Pushes the image of `manifestDigest` (in the store) to the repository `remote` names. */
  async push(remote: string, manifestDigest: string, options: RemoteCallOptions = {}): Promise<void> {
    await pushPlugin({
      store: this.store,
      remote,
      manifestDigest,
      auth: options.auth,
      registry: this.#options(options),
      signal: options.signal,
      onProgress: options.onProgress,
    });
  }

  #options(options: RemoteCallOptions): RegistryOptions {
    if (options.headers === undefined || Object.keys(options.headers).length === 0) return this.#registry;
    return { ...this.#registry, headers: { ...this.#registry.headers, ...options.headers } };
  }
}
