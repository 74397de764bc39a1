import { chmod, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { conflict, invalidParameter, isConflict, wrap } from '@berth/errdefs';
import { fsyncDir } from '@berth/host';
import {
  computePrivileges,
  initEmptySettings,
  parsePluginConfig,
  pluginNameForCreate,
  pluginNameForPull,
  validatePrivileges,
  type PluginConfig,
  type PluginObject,
  type PluginPrivilege,
} from '@berth/plugin-store';
import type { Logger } from '@berth/logger';
import type { CallOptions } from './call-options.js';
import type { ManagedPlugin, PluginEvents, PluginImageRecord } from './contracts.js';
import type { Controller } from './controller.js';
import { errorMessage } from './errors.js';
import { imageExtras } from './images.js';
import { recursiveUnmount } from './mounts.js';
import {
  CONFIG_FILE,
  newPluginId,
  oldRootfsDir,
  pluginDir,
  rootfsDir,
  savePluginFile,
  type PersistedExtras,
  tmpDir,
  UPGRADE_CONFIG_FILE,
} from './plugin-dir.js';
import type { PluginTable } from './plugin-table.js';
import { extractPluginContext } from './tar-context.js';

/** A fetched plugin to install (`installFromRootfs`) or to swap in (`upgradeRootfs`). */
export interface RootfsInstallOptions extends CallOptions, PluginImageRecord {
  /**
   * The extracted rootfs, on the manager's filesystem (under `tmpDir`): moved into place on
   * success, removed on failure. It is consumed either way.
   */
  rootfsDir: string;
  /** The plugin's config, as fetched (its blob is `configDigest`). */
  config: PluginConfig;
  /** moby's `PluginReference`: `reference.String()` of the remote, `docker.io/vieux/sshfs:latest`. */
  pluginReference: string;
  /**
   * The privileges the user accepted (the body of pull and upgrade); they must equal those the
   * config asks for, else `incorrect privileges`. Undefined: not checked.
   */
  privileges?: readonly PluginPrivilege[] | undefined;
}

export interface PluginInstallerOptions<P extends ManagedPlugin> {
  readonly plugins: PluginTable<P>;
  readonly events: PluginEvents | undefined;
  readonly logger: Logger;
  /** Largest `config.json` accepted by `createFromContext`. */
  readonly maxConfigBytes: number | undefined;
  /** Throws once the manager is shut down. */
  readonly assertOpen: () => void;
}

/**
 * Putting plugins on disk: created from a build context (moby's `CreateFromContext`), installed
 * from a fetched rootfs (`createPlugin` for pull), upgraded in place (`upgradePlugin`), and the
 * image a push built recorded. Each leaves either the whole result or nothing.
 */
export class PluginInstaller<P extends ManagedPlugin> {
  readonly #plugins: PluginTable<P>;
  readonly #events: PluginEvents | undefined;
  readonly #logger: Logger;
  readonly #maxConfigBytes: number | undefined;
  readonly #assertOpen: () => void;

  constructor(options: PluginInstallerOptions<P>) {
    this.#plugins = options.plugins;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#maxConfigBytes = options.maxConfigBytes;
    this.#assertOpen = options.assertOpen;
  }

  /** `<root>/tmp`: where a create or a fetch extracts its rootfs (the filesystem of the plugins). */
  get tmpDir(): string {
    return tmpDir(this.#plugins.root);
  }

  /**
   * `POST /plugins/create?name=`: unpacks a build context (`config.json` + `rootfs/`), streamed
   * to disk, into a new plugin, disabled. On any refusal nothing is left on disk.
   */
  async createFromContext(name: string, context: Readable | AsyncIterable<Uint8Array>, options: CallOptions = {}): Promise<P> {
    this.#assertOpen();
    const store = this.#plugins.store;
    const fullName = pluginNameForCreate(name);
    store.validateName(fullName);
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    const tmp = await mkdtemp(path.join(this.tmpDir, '.rootfs'));
    let plugin: P;
    try {
      await chmod(tmp, 0o755);
      const extracted = await extractPluginContext(context, tmp, { signal: options.signal, maxConfigBytes: this.#maxConfigBytes });
      if (!extracted.hasRootfs) throw invalidParameter('no rootfs found: EOF');
      if (extracted.config === undefined) throw invalidParameter('config not found');
      const config = parsePluginConfig(extracted.config.toString('utf8'));
      // moby records the digest of the gzipped rootfs layer it keeps for `push`; berth keeps no
      // blobs and records the digest of the context it received.
      config.rootfs = { diff_ids: [extracted.digest], type: 'layers' };
      plugin = await this.#plugins.withName(fullName, undefined, async () => {
        store.validateName(fullName);
        return this.#putInPlace(newObject(fullName, config, fullName), tmp, {});
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    this.#events?.logPluginEvent(plugin.id, fullName, 'create');
    return plugin;
  }

  /**
   * Installs a fetched plugin (moby's `createPlugin` for pull): a new ID, `Settings` from its
   * config, the rootfs renamed into `<root>/<id>/rootfs`, moby's `Config`, `Blobsums` and
   * `Manifest` persisted in `config.json` beside the object, disabled. The name is checked again
   * (400 `plugin <name> already exists`), then the privileges. `rootfsDir` is consumed.
   */
  async installFromRootfs(name: string, options: RootfsInstallOptions): Promise<P> {
    try {
      this.#assertOpen();
      const fullName = pluginNameForPull(name, name);
      return await this.#plugins.withName(fullName, options.signal, async () => {
        try {
          this.#plugins.store.validateName(fullName);
        } catch (err) {
          throw isConflict(err) ? invalidParameter((err as Error).message, { cause: err }) : err;
        }
        checkPrivileges(options);
        options.signal?.throwIfAborted();
        const object = newObject(fullName, structuredClone(options.config), options.pluginReference);
        return this.#putInPlace(object, options.rootfsDir, imageExtras(options));
      });
    } finally {
      await rm(options.rootfsDir, { recursive: true, force: true });
    }
  }

  /**
   * `POST /plugins/{name}/upgrade` once fetched (moby's `upgradePlugin`): only while disabled
   * (409 `plugin must be disabled before upgrading: plugin <name> is enabled`); the privileges are
   * checked, then the new config is staged as `config.json.upgrade`, `rootfs` becomes
   * `rootfs-old`, the new rootfs moves in, and renaming the staged config over `config.json`
   * commits; `rootfs-old` is then deleted. Any failure before the commit puts the old rootfs back;
   * a crash is finished or undone by the next `open`. The plugin keeps its ID, name and
   * `Settings`; `Config`, `PluginReference` and the image record are the new ones. `rootfsDir` is
   * consumed.
   */
  async upgradeRootfs(name: string, options: RootfsInstallOptions): Promise<P> {
    try {
      this.#assertOpen();
      return await this.#plugins.withPlugin(name, options.signal, async (plugin, c) => {
        if (plugin.enabled || c.run !== undefined) throw mustBeDisabled(plugin.name);
        checkPrivileges(options);
        options.signal?.throwIfAborted();
        await this.#swapRootfs(plugin, c, options);
        return plugin;
      });
    } finally {
      await rm(options.rootfsDir, { recursive: true, force: true });
    }
  }

  /**
   * Records the image built for a plugin (by its first push), as moby's `CreateFromContext`
   * records the one it builds: `Config`, `Blobsums`, `Manifest` in `config.json`, and
   * `Config.rootfs.diff_ids` naming the layers.
   */
  async recordImage(name: string, image: PluginImageRecord, options: CallOptions = {}): Promise<void> {
    this.#assertOpen();
    await this.#plugins.withPlugin(name, options.signal, async (plugin, c) => {
      const extras = { ...c.extras, ...imageExtras(image) };
      const config = { ...plugin.object.Config, rootfs: { type: 'layers', diff_ids: [...image.blobsums] } };
      await savePluginFile(this.#plugins.root, { ...plugin.object, Config: config }, extras);
      plugin.object.Config = config;
      c.extras = extras;
    });
  }

  /** Moves `rootfs` into a new plugin directory, writes its `config.json`, and adds it to the store. */
  async #putInPlace(object: PluginObject, rootfs: string, extras: PersistedExtras): Promise<P> {
    const root = this.#plugins.root;
    const id = object.Id ?? '';
    const dir = pluginDir(root, id);
    await mkdir(dir, { mode: 0o700 });
    try {
      await rename(rootfs, rootfsDir(root, id));
      await savePluginFile(root, object, extras);
      await fsyncDir(root);
      const plugin = this.#plugins.track(object, extras);
      this.#plugins.store.add(plugin);
      return plugin;
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async #swapRootfs(plugin: P, c: Controller, options: RootfsInstallOptions): Promise<void> {
    const root = this.#plugins.root;
    const id = plugin.id;
    const dir = pluginDir(root, id);
    const current = rootfsDir(root, id);
    const old = oldRootfsDir(root, id);
    const staged = path.join(dir, UPGRADE_CONFIG_FILE);
    // Nothing may stay mounted in the old rootfs (a plugin disabled with force while in use).
    try {
      await recursiveUnmount(current);
    } catch (err) {
      throw wrap(err, 'error unmounting plugin rootfs');
    }
    const object: PluginObject = { ...plugin.object, Config: structuredClone(options.config), PluginReference: options.pluginReference };
    const extras = { ...c.extras, ...imageExtras(options) };
    await rm(old, { recursive: true, force: true });
    await savePluginFile(root, object, extras, UPGRADE_CONFIG_FILE);
    let movedOld = false;
    try {
      try {
        await rename(current, old);
        movedOld = true;
      } catch (err) {
        throw wrap(err, 'error backing up plugin data before upgrade');
      }
      try {
        await rename(options.rootfsDir, current);
      } catch (err) {
        throw wrap(err, 'error upgrading');
      }
      await fsyncDir(dir);
      // The commit point: from here the upgrade stands, also after a crash.
      await rename(staged, path.join(dir, CONFIG_FILE));
      await fsyncDir(dir);
    } catch (err) {
      if (movedOld) {
        await rm(current, { recursive: true, force: true });
        await rename(old, current).catch((restoreErr: unknown) =>
          this.#logger.error('error restoring old plugin root on upgrade failure', { plugin: id, error: errorMessage(restoreErr) }),
        );
      }
      await rm(staged, { force: true });
      throw err;
    }
    plugin.object.Config = object.Config;
    plugin.object.PluginReference = options.pluginReference;
    c.extras = extras;
    await rm(old, { recursive: true, force: true }).catch((err: unknown) =>
      this.#logger.error('error cleaning up old plugin root after successful upgrade', { plugin: id, error: errorMessage(err) }),
    );
  }
}

/** moby's refusal to upgrade a plugin that is enabled. */
export function mustBeDisabled(name: string): Error {
  return conflict(`plugin must be disabled before upgrading: plugin ${name} is enabled`);
}

function checkPrivileges(options: RootfsInstallOptions): void {
  if (options.privileges !== undefined) validatePrivileges(computePrivileges(options.config), options.privileges);
}

/** A new plugin's object: a new ID, disabled, `Settings` from what the config offers. */
function newObject(name: string, config: PluginConfig, reference: string): PluginObject {
  return {
    Config: config,
    Enabled: false,
    Id: newPluginId(),
    Name: name,
    PluginReference: reference,
    Settings: initEmptySettings(config),
  };
}
