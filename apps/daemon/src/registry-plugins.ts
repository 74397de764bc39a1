import { readFile } from 'node:fs/promises';
import { conflict, invalidParameter, isConflict, wrap } from '@berth/errdefs';
import type { PluginManager, RootfsInstallOptions } from '@berth/plugin-manager';
import type { ContentStore, JsonMessage, RegistryAuth, RegistryOptions } from '@berth/plugin-registry';
import { computePrivileges, familiarString, parseNormalizedNamed, type NamedReference, type Plugin, type PluginPrivilege } from '@berth/plugin-store';
import { loadRegistry } from './lazy-modules.js';
import type { Logger } from './logger.js';

/** What every registry call of the API carries. */
export interface RemoteCallOptions {
  /** From `X-Registry-Auth` (`{}` when absent or undecodable, as moby's plugin routes). */
  readonly auth: RegistryAuth;
  /** The request's `X-Meta-*` headers, forwarded to the registry as moby does. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly signal?: AbortSignal | undefined;
  /** The JSON progress messages streamed to the client. */
  readonly onProgress?: ((message: JsonMessage) => void) | undefined;
}

export interface RegistryPluginsOptions {
  readonly manager: PluginManager<Plugin>;
  /** The content store at the manager's `storageDir` (made on first use, with the registry client). */
  readonly store: () => Promise<ContentStore>;
  /** `insecureRegistries`, `userAgent`, … (the daemon's registry configuration). */
  readonly registry: RegistryOptions;
  readonly logger: Logger;
}

/**
 * The registry side of the plugin manager, composed here because `@berth/plugin-manager` does not
 * depend on `@berth/plugin-registry` (the other way round): moby's `Privileges`, `Pull`,
 * `Upgrade` and `Push` of `daemon/pkg/plugin/backend_linux.go`, as sequences of the manager's
 * primitives (`validateName`, `installFromRootfs`, `upgradeRootfs`, `recordImage`, `gc`, the
 * content lease) and the registry package's fetch and push.
 */
export class RegistryPlugins {
  readonly #manager: PluginManager<Plugin>;
  readonly #store: () => Promise<ContentStore>;
  readonly #registry: RegistryOptions;
  readonly #logger: Logger;

  constructor(options: RegistryPluginsOptions) {
    this.#manager = options.manager;
    this.#store = options.store;
    this.#registry = options.registry;
    this.#logger = options.logger;
  }

  /**
   * `GET /plugins/privileges?remote=`: the privileges the remote plugin's config asks for
   * (`null` for none, moby's nil slice). A failed fetch answers `[]` (moby's quirk: the client
   * then goes on to the pull, which reports the real error).
   */
  async privileges(ref: NamedReference, options: RemoteCallOptions): Promise<PluginPrivilege[] | null> {
    try {
      const { config } = await (await loadRegistry()).fetchPluginConfig({ remote: ref, auth: options.auth, registry: this.#options(options), signal: options.signal });
      const privileges = computePrivileges(config);
      return privileges.length === 0 ? null : privileges;
    } catch (err) {
      this.#logger.debug('error fetching plugin privileges', { remote: familiarString(ref), error: err });
      return [];
    }
  }

  /**
   * `POST /plugins/pull` (moby's `Pull`): the name is checked first (400 `plugin <name> already
   * exists`), then the plugin is fetched into `<plugins>/tmp` and the content store, the `pull`
   * event is logged, and the manager installs it, disabled, after checking the privileges the
   * client accepted. On any failure nothing is installed, the fetched rootfs is gone and the
   * blobs no plugin uses are collected.
   */
  async pull(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RemoteCallOptions): Promise<void> {
    let fullName: string;
    try {
      fullName = this.#manager.validateName(name);
    } catch (err) {
      throw isConflict(err) ? invalidParameter((err as Error).message, { cause: err }) : err;
    }
    let failed = true;
    try {
      await this.#fetchInto(ref, fullName, privileges, options, (image) => this.#manager.installFromRootfs(fullName, image));
      failed = false;
    } finally {
      if (failed) void this.#manager.gc();
    }
  }

  /**
   * `POST /plugins/{name}/upgrade` (moby's `Upgrade`): only a disabled plugin (409 `plugin must
   * be disabled before upgrading: plugin <name> is enabled`, checked before and after the fetch);
   * the new rootfs replaces the old one under the same ID, name and settings. The `pull` event is
   * logged after the fetch. The blobs of the old version are collected afterwards.
   */
  async upgrade(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RemoteCallOptions): Promise<void> {
    const plugin = this.#manager.get(name);
    if (plugin.enabled) throw conflict(`plugin must be disabled before upgrading: plugin ${plugin.name} is enabled`);
    try {
      await this.#fetchInto(ref, name, privileges, options, (image) => this.#manager.upgradeRootfs(name, image));
    } finally {
      void this.#manager.gc();
    }
  }

  /**
   * Fetches the remote plugin under a content lease, logs moby's `pull` event (actor: the remote,
   * `name`: the local name) and hands the fetched image to `apply` (install or upgrade).
   */
  async #fetchInto(
    ref: NamedReference,
    localName: string,
    privileges: readonly PluginPrivilege[],
    options: RemoteCallOptions,
    apply: (image: RootfsInstallOptions) => Promise<unknown>,
  ): Promise<void> {
    await this.#manager.withContentLease(async () => {
      const fetched = await (await loadRegistry()).fetchPlugin({
        store: await this.#store(),
        tmpDir: this.#manager.tmpDir,
        remote: ref,
        auth: options.auth,
        registry: this.#options(options),
        signal: options.signal,
        onProgress: options.onProgress,
      });
      this.#manager.logPullEvent(familiarString(ref), localName);
      await apply({
        rootfsDir: fetched.rootfsDir,
        config: fetched.config,
        configDigest: fetched.configDigest,
        manifestDigest: fetched.manifestDigest,
        blobsums: fetched.layerDigests,
        pluginReference: fetched.reference,
        privileges,
        signal: options.signal,
      });
    });
  }

  /**
   * `POST /plugins/{name}/push` (moby's `Push`): to the repository its name says. A plugin with a
   * recorded, pushable image (schema2 manifest, plugin config, gzip layers, all in the store) is
   * pushed as is — a pulled plugin keeps its digest. Otherwise (a created plugin's first push) the
   * image is built from its rootfs and config (one gzip layer) and recorded, so that later pushes
   * send the same image. Registry errors read `error pushing plugin: …`.
   */
  async push(name: string, options: RemoteCallOptions): Promise<void> {
    const plugin = this.#manager.get(name);
    try {
      parseNormalizedNamed(plugin.name);
    } catch (err) {
      throw wrap(err, `plugin has invalid name ${plugin.name} for push`);
    }
    await this.#manager.withContentLease(async () => {
      let manifestDigest = await this.#pushableManifest(plugin.name);
      if (manifestDigest === undefined) {
        const image = await (await loadRegistry()).buildPluginImage({
          store: await this.#store(),
          config: plugin.object.Config,
          rootfsDir: plugin.rootfs,
          signal: options.signal,
        });
        await this.#manager.recordImage(plugin.name, {
          configDigest: image.configDigest,
          manifestDigest: image.manifestDigest,
          blobsums: image.layerDigests,
        });
        manifestDigest = image.manifestDigest;
      }
      try {
        await (await loadRegistry()).pushPlugin({
          store: await this.#store(),
          remote: plugin.name,
          manifestDigest,
          auth: options.auth,
          registry: this.#options(options),
          signal: options.signal,
          onProgress: options.onProgress,
        });
      } catch (err) {
        if (options.signal?.aborted === true) throw err;
        throw wrap(err, 'error pushing plugin');
      }
    });
  }

  /** `POST /auth` (`docker login` through the daemon): `{Status: "Login Succeeded", IdentityToken: ""}`. */
  async login(auth: RegistryAuth & { serverAddress?: string | undefined }, signal?: AbortSignal): Promise<{ Status: string; IdentityToken: string }> {
    const { status } = await (await loadRegistry()).loginRegistry({ serverAddress: auth.serverAddress, auth, registry: this.#registry, signal });
    return { Status: status, IdentityToken: '' };
  }

  /** The recorded manifest when it can be pushed as is: docker schema2, plugin config, gzip layers, every blob here. */
  async #pushableManifest(name: string): Promise<string | undefined> {
    const image = this.#manager.image(name);
    if (image === undefined) return undefined;
    try {
      const info = await (await this.#store()).info(image.manifestDigest);
      if (info === undefined) return undefined;
      const doc = JSON.parse(await readFile((await this.#store()).blobPath(image.manifestDigest), 'utf8')) as {
        mediaType?: unknown;
        config?: { mediaType?: unknown; digest?: unknown };
        layers?: Array<{ mediaType?: unknown; digest?: unknown }>;
      };
      if (doc.mediaType !== (await loadRegistry()).mediaTypes.MEDIA_TYPE_DOCKER_MANIFEST) return undefined;
      if (doc.config?.mediaType !== (await loadRegistry()).mediaTypes.MEDIA_TYPE_PLUGIN_CONFIG || typeof doc.config.digest !== 'string') return undefined;
      if (!Array.isArray(doc.layers) || doc.layers.length === 0) return undefined;
      const blobs = [doc.config.digest];
      for (const layer of doc.layers) {
        if (layer.mediaType !== (await loadRegistry()).mediaTypes.MEDIA_TYPE_DOCKER_LAYER_GZIP || typeof layer.digest !== 'string') return undefined;
        blobs.push(layer.digest);
      }
      for (const digest of blobs) if (!(await (await this.#store()).has(digest))) return undefined;
      return image.manifestDigest;
    } catch (err) {
      this.#logger.debug('recorded plugin manifest cannot be pushed as is; building one', { plugin: name, error: err });
      return undefined;
    }
  }

  #options(options: RemoteCallOptions): RegistryOptions {
    if (options.headers === undefined || Object.keys(options.headers).length === 0) return this.#registry;
    return { ...this.#registry, headers: { ...this.#registry.headers, ...options.headers } };
  }
}
