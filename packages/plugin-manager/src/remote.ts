import { BerthError, invalidParameter, isConflict, wrap } from '@berth/errdefs';
import { familiarString, parseNormalizedNamed, pluginNameForPull, type NamedReference, type PluginPrivilege, type RemoteCallOptions } from '@berth/plugin-store';
import type { Logger } from '@berth/logger';
import type { ManagedPlugin, PluginEvents } from './contracts.js';
import type { Distribution } from './distribution.js';
import { imageRecord, type ImageCollector } from './images.js';
import { mustBeDisabled, type PluginInstaller, type RootfsInstallOptions } from './install.js';
import type { PluginTable } from './plugin-table.js';

export interface RemotePluginsOptions<P extends ManagedPlugin> {
  readonly plugins: PluginTable<P>;
  readonly installer: PluginInstaller<P>;
  readonly images: ImageCollector;
  readonly distribution: Distribution | undefined;
  readonly events: PluginEvents | undefined;
  readonly logger: Logger;
}

/**
 * Plugins to and from registries, moby's `Privileges`, `Pull`, `Upgrade` and `Push`
 * (`daemon/pkg/plugin/backend_linux.go`): sequences of the distribution's fetch, build and push
 * with the installer's steps, under a content lease so that garbage collection keeps the blobs
 * they write until a plugin references them.
 */
export class RemotePlugins<P extends ManagedPlugin> {
  readonly #plugins: PluginTable<P>;
  readonly #installer: PluginInstaller<P>;
  readonly #images: ImageCollector;
  readonly #distribution: Distribution | undefined;
  readonly #events: PluginEvents | undefined;
  readonly #logger: Logger;

  constructor(options: RemotePluginsOptions<P>) {
    this.#plugins = options.plugins;
    this.#installer = options.installer;
    this.#images = options.images;
    this.#distribution = options.distribution;
    this.#events = options.events;
    this.#logger = options.logger;
  }

  /**
   * Checks, before anything is fetched, that a plugin may be installed under `name` (moby's
   * `Pull` does so first): returns the normalised name (`foo/bar:latest`); a taken name is the
   * store's `plugin <name> already exists` (conflict).
   */
  validateName(name: string): string {
    const fullName = pluginNameForPull(name, name);
    this.#plugins.store.validateName(fullName);
    return fullName;
  }

  /** The `pull` event of an install or upgrade: actor the remote in familiar form, `name` the local name (moby). */
  logPullEvent(remote: string, name: string): void {
    this.#events?.logPluginEvent(remote, name, 'pull');
  }

  /**
   * `GET /plugins/privileges?remote=`: the privileges the remote plugin's config asks for
   * (`null` for none, moby's nil slice). A failed fetch answers `[]` (moby's quirk: the client
   * then goes on to the pull, which reports the real error).
   */
  async privileges(ref: NamedReference, options: RemoteCallOptions): Promise<PluginPrivilege[] | null> {
    try {
      const { privileges } = await this.#remote().fetchConfig(ref, options);
      return privileges.length === 0 ? null : [...privileges];
    } catch (err) {
      this.#logger.debug('error fetching plugin privileges', { remote: familiarString(ref), error: err });
      return [];
    }
  }

  /**
   * `POST /plugins/pull` (moby's `Pull`): the name is checked first (400 `plugin <name> already
   * exists`), then the plugin is fetched into `<plugins>/tmp` and the content store, the `pull`
   * event is logged, and it is installed, disabled, after checking the privileges the client
   * accepted. On any failure nothing is installed, the fetched rootfs is gone and the blobs no
   * plugin uses are collected.
   */
  async pull(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RemoteCallOptions): Promise<void> {
    let fullName: string;
    try {
      fullName = this.validateName(name);
    } catch (err) {
      throw isConflict(err) ? invalidParameter((err as Error).message, { cause: err }) : err;
    }
    let failed = true;
    try {
      await this.#fetchInto(ref, fullName, privileges, options, (image) => this.#installer.installFromRootfs(fullName, image));
      failed = false;
    } finally {
      if (failed) void this.#images.collect();
    }
  }

  /**
   * `POST /plugins/{name}/upgrade` (moby's `Upgrade`): only a disabled plugin (409 `plugin must
   * be disabled before upgrading: plugin <name> is enabled`, checked before and after the fetch);
   * the new rootfs replaces the old one under the same ID, name and settings. The `pull` event is
   * logged after the fetch. The blobs of the old version are collected afterwards.
   */
  async upgrade(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RemoteCallOptions): Promise<void> {
    const plugin = this.#plugins.store.getV2Plugin(name);
    if (plugin.enabled) throw mustBeDisabled(plugin.name);
    try {
      await this.#fetchInto(ref, name, privileges, options, (image) => this.#installer.upgradeRootfs(name, image));
    } finally {
      void this.#images.collect();
    }
  }

  /**
   * `POST /plugins/{name}/push` (moby's `Push`): to the repository its name says. A plugin with a
   * recorded, pushable image is pushed as is — a pulled plugin keeps its digest. Otherwise (a
   * created plugin's first push) the image is built from its rootfs and config (one gzip layer)
   * and recorded, so that later pushes send the same image. Registry errors read
   * `error pushing plugin: …`.
   */
  async push(name: string, options: RemoteCallOptions): Promise<void> {
    const distribution = this.#remote();
    const plugin = this.#plugins.store.getV2Plugin(name);
    try {
      parseNormalizedNamed(plugin.name);
    } catch (err) {
      throw wrap(err, `plugin has invalid name ${plugin.name} for push`);
    }
    await this.#images.withLease(async () => {
      const recorded = imageRecord(this.#plugins.controller(plugin.id)?.extras ?? {});
      let manifestDigest = recorded !== undefined && (await distribution.isPushable(recorded)) ? recorded.manifestDigest : undefined;
      if (manifestDigest === undefined) {
        this.#logger.debug('no pushable image recorded for the plugin; building one', { plugin: plugin.name });
        const built = await distribution.buildImage({ config: plugin.object.Config, rootfsDir: plugin.rootfs, signal: options.signal });
        await this.#installer.recordImage(plugin.name, {
          configDigest: built.configDigest,
          manifestDigest: built.manifestDigest,
          blobsums: built.layerDigests,
        });
        manifestDigest = built.manifestDigest;
      }
      try {
        await distribution.push(plugin.name, manifestDigest, options);
      } catch (err) {
        if (options.signal?.aborted === true) throw err;
        throw wrap(err, 'error pushing plugin');
      }
    });
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
    const distribution = this.#remote();
    await this.#images.withLease(async () => {
      const fetched = await distribution.fetch(ref, { ...options, tmpDir: this.#installer.tmpDir });
      this.logPullEvent(familiarString(ref), localName);
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

  #remote(): Distribution {
    if (this.#distribution === undefined) throw new BerthError('not-implemented', 'plugin manager has no distribution: registries cannot be reached');
    return this.#distribution;
  }
}
