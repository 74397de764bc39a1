import { chmod, lstat, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, conflict, invalidParameter, isConflict, isNotFound, system, unavailable, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { KeyedLock } from '@berth/locker';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './backoff.js';
import type {
  ContentStoreLike,
  CreatePlugin,
  Executor,
  ExitHandler,
  ManagedPlugin,
  PluginEvents,
  PluginImageRecord,
  PluginStoreLike,
} from './contracts.js';
import { Controller, type Run } from './controller.js';
import { alreadyDisabled, alreadyEnabled, pluginEnabled, pluginInUse, pluginNotFound, setWhileEnabled } from './errors.js';
import { setupInitLayer } from './init-layer.js';
import { pluginLogStream } from './log-stream.js';
import { noopLogger, type Logger } from './logger.js';
import { makeRShared, recursiveUnmount } from './mounts.js';
import { parsePluginConfig } from './plugin-config.js';
import {
  atomicRemoveAll,
  CONFIG_FILE,
  FULL_ID,
  loadPluginFile,
  newPluginId,
  oldRootfsDir,
  type PersistedExtras,
  pluginDir,
  propagatedMountDir,
  recoverUpgrade,
  REMOVING_SUFFIX,
  rootfsDir,
  savePluginFile,
  storageDir,
  syncDir,
  tmpDir,
  UPGRADE_CONFIG_FILE,
} from './plugin-dir.js';
import type { PluginConfig, PluginObject } from '@berth/plugin-store';
import { initEmptySettings, interfaceTypes, type PluginPrivilege } from './plugin-object.js';
import { computePrivileges, validatePrivileges } from './privileges.js';
import { pluginNameForCreate, pluginNameForPull } from './reference.js';
import { applySettings } from './settings.js';
import { waitForSocket } from './socket-wait.js';
import { buildSpec } from './spec.js';
import { extractPluginContext } from './tar-context.js';

export interface PluginManagerOptions<P extends ManagedPlugin> {
  /** `<data-root>/plugins`: one directory per plugin, `tmp/` for creates in progress. */
  root: string;
  /**
   * Where each running plugin gets `<execRoot>/<id>/`, bound at `/run/docker/plugins` inside it;
   * its socket appears there. moby uses `/run/docker/plugins`; berth's daemon `<exec-root>/plugins`.
   * Keep it short: `<execRoot>/<64-hex id>/<socket>` must fit a unix socket path (107 bytes).
   */
  execRoot: string;
  store: PluginStoreLike<P>;
  /** Builds the store's plugin object (`(init) => new Plugin(init)` with `@berth/plugin-store`). */
  createPlugin: CreatePlugin<P>;
  /** Called once, with the manager as the exit handler. */
  createExecutor: (exitHandler: ExitHandler) => Executor;
  /** Leave plugins running on `shutdown()` and re-attach to them on `open()`. Default false. */
  liveRestore?: boolean | undefined;
  events?: PluginEvents | undefined;
  /**
   * Names of the volumes that hold references to a plugin (by its full name), for the text of
   * `plugin <name> is in use`. Optional; without it the text is moby's alone.
   */
  usersOf?: ((pluginName: string) => readonly string[] | Promise<readonly string[]>) | undefined;
  logger?: Logger | undefined;
  /** Aborts `open()`. */
  signal?: AbortSignal | undefined;
  /** How long `enable` waits for the plugin's socket when the caller names no timeout. Default 10 s. */
  socketTimeoutMs?: number | undefined;
  /** How often the socket is dialled while waiting. Default 100 ms. */
  socketPollMs?: number | undefined;
  /** Grace after SIGTERM, and again after SIGKILL, when stopping a plugin. Default 10 s (moby). */
  stopTimeoutMs?: number | undefined;
  /** Back-off of restarts of plugins that exit while enabled. */
  restartPolicy?: Partial<RestartPolicy> | undefined;
  /** Told of every restart of a plugin that exited while enabled, and whether it started (metrics). */
  onRestart?: ((pluginName: string, started: boolean) => void) | undefined;
  /** Largest `config.json` accepted by `createFromContext`. Default 1 MiB. */
  maxConfigBytes?: number | undefined;
  /**
   * The content store of plugin images at `<root>/storage` (`@berth/plugin-registry`'s
   * `ContentStore`). Optional: without it there is no garbage collection of blobs.
   */
  contentStore?: ContentStoreLike | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface EnableOptions extends CallOptions {
  /**
   * `POST /plugins/{name}/enable?timeout=`: seconds to wait for the plugin's socket, and the
   * deadline of plugin calls that name none. 0 or absent: the manager's defaults.
   */
  timeoutSeconds?: number | undefined;
}

export interface ForceOptions extends CallOptions {
  force?: boolean | undefined;
}

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

// Types whose propagated mount moby migrates out of the rootfs and creates on load.
const PROPAGATING_CAPABILITIES = new Set(['volumedriver', 'graphdriver', 'csinode', 'csicontroller']);
const MAX_SOCKET_PATH = 107;

/**
 * Docker's managed plugin manager (moby's `plugin.Manager`): the plugins under `root`, created
 * from tar contexts, enabled and disabled through an `Executor`, with their settings, their OCI
 * spec, and their restart when they exit while enabled.
 *
 * "Enabled" is the user's intent, persisted and reported as `Enabled`; whether the plugin's
 * process runs right now is `isRunning(name)`. A plugin that exits while enabled is started again
 * with back-off, for as long as it stays enabled (dockerd restarts it at once, without back-off).
 */
export class PluginManager<P extends ManagedPlugin> implements ExitHandler {
  readonly #root: string;
  readonly #execRoot: string;
  readonly #store: PluginStoreLike<P>;
  readonly #createPlugin: CreatePlugin<P>;
  readonly #executor: Executor;
  readonly #liveRestore: boolean;
  readonly #events: PluginEvents | undefined;
  readonly #usersOf: PluginManagerOptions<P>['usersOf'];
  readonly #logger: Logger;
  readonly #socketTimeoutMs: number;
  readonly #socketPollMs: number;
  readonly #stopTimeoutMs: number;
  readonly #restartPolicy: RestartPolicy;
  readonly #onRestart: PluginManagerOptions<P>['onRestart'];
  readonly #maxConfigBytes: number | undefined;
  readonly #contentStore: ContentStoreLike | undefined;
  readonly #controllers = new Map<string, Controller>();
  /** Fetches, installs and pushes in progress: blobs they use may not be referenced yet. */
  #leases = 0;
  #gcRunning: Promise<void> | undefined;
  #gcWanted = false;
  /** Per plugin ID; held across its start and stop, never across another plugin's. */
  readonly #locks = new KeyedLock();
  /** Per full name, around the last step of a create. */
  readonly #names = new KeyedLock();
  #closed = false;

  private constructor(options: PluginManagerOptions<P>) {
    this.#root = path.resolve(options.root);
    this.#execRoot = path.resolve(options.execRoot);
    this.#store = options.store;
    this.#createPlugin = options.createPlugin;
    this.#liveRestore = options.liveRestore ?? false;
    this.#events = options.events;
    this.#usersOf = options.usersOf;
    this.#logger = options.logger ?? noopLogger;
    this.#socketTimeoutMs = options.socketTimeoutMs ?? 10_000;
    this.#socketPollMs = options.socketPollMs ?? 100;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
    this.#restartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy };
    this.#onRestart = options.onRestart;
    this.#maxConfigBytes = options.maxConfigBytes;
    this.#contentStore = options.contentStore;
    this.#executor = options.createExecutor(this);
  }

  /**
   * Creates the manager and loads every plugin under `root` into the store (moby's `NewManager`
   * and `reload`). Plugins that were enabled are started again — or, with live restore, re-attached
   * when still running — in parallel; this resolves once each has been tried. One that fails is
   * logged and retried in the background, and stays enabled.
   */
  static async open<P extends ManagedPlugin>(options: PluginManagerOptions<P>): Promise<PluginManager<P>> {
    const manager = new PluginManager(options);
    try {
      await manager.#reload(options.signal);
    } catch (err) {
      await manager.shutdown().catch(() => undefined);
      throw wrap(err, 'failed to restore plugins');
    }
    return manager;
  }

  /** `<data-root>/plugins`. */
  get root(): string {
    return this.#root;
  }

  /** `<root>/tmp`: where fetched rootfs directories are extracted (same filesystem as the plugins). */
  get tmpDir(): string {
    return tmpDir(this.#root);
  }

  /** `<root>/storage`: where the content store of plugin images belongs (moby's layout). */
  get storageDir(): string {
    return storageDir(this.#root);
  }

  // ---- Engine API operations ---------------------------------------------------------------

  /** `GET /plugins/{name}/json`: the plugin's Engine API object (moby-shaped; `Enabled` is intent). */
  inspect(name: string): PluginObject {
    return this.#store.getV2Plugin(name).object;
  }

  /** The store's plugin by name, name:tag, ID or unique ID prefix. */
  get(name: string): P {
    return this.#store.getV2Plugin(name);
  }

  /** Whether the plugin's process runs and its socket answered. berth's addition to `Enabled`. */
  isRunning(name: string): boolean {
    return this.#controllers.get(this.#store.getV2Plugin(name).id)?.run?.ready === true;
  }

  /**
   * `GET /plugins`: filters `enabled` (`true|1|false|0`) and `capability` (a regular expression
   * every one of the plugin's interface capabilities must match); other keys are `invalid filter`.
   */
  list(filters: Filters = Filters.empty()): PluginObject[] {
    filters.validate(['enabled', 'capability']);
    const enabled = filters.contains('enabled') ? filters.getBoolOrDefault('enabled', false) : undefined;
    const out: PluginObject[] = [];
    for (const plugin of this.#store.getAll().values()) {
      if (enabled !== undefined && plugin.enabled !== enabled) continue;
      if (filters.contains('capability')) {
        const types = interfaceTypes(plugin.object.Config);
        if (!types.every((t) => filters.match('capability', t.capability.toLowerCase()))) continue;
      }
      out.push(plugin.object);
    }
    return out;
  }

  /** The privileges an installed plugin's config asks for (`GET /plugins/privileges` for a local plugin). */
  privileges(name: string): PluginPrivilege[] {
    return computePrivileges(this.#store.getV2Plugin(name).object.Config);
  }

  /**
   * `POST /plugins/create?name=`: unpacks a build context (`config.json` + `rootfs/`), streamed
   * to disk, into a new plugin, disabled. On any refusal nothing is left on disk.
   */
  async createFromContext(name: string, context: Readable | AsyncIterable<Uint8Array>, options: CallOptions = {}): Promise<P> {
    this.#assertOpen();
    const fullName = pluginNameForCreate(name);
    this.#store.validateName(fullName);
    await mkdir(tmpDir(this.#root), { recursive: true, mode: 0o700 });
    const tmp = await mkdtemp(path.join(tmpDir(this.#root), '.rootfs'));
    let plugin: P;
    try {
      await chmod(tmp, 0o755);
      const extracted = await extractPluginContext(context, tmp, {
        signal: options.signal,
        maxConfigBytes: this.#maxConfigBytes,
      });
      if (!extracted.hasRootfs) throw invalidParameter('no rootfs found: EOF');
      if (extracted.config === undefined) throw invalidParameter('config not found');
      const config = parsePluginConfig(extracted.config.toString('utf8'));
      // moby records the digest of the gzipped rootfs layer it keeps for `push`; berth keeps no
      // blobs and records the digest of the context it received.
      config.rootfs = { diff_ids: [extracted.digest], type: 'layers' };
      plugin = await this.#names.with(fullName, async () => {
        this.#store.validateName(fullName);
        const id = newPluginId();
        const object: PluginObject = {
          Config: config,
          Enabled: false,
          Id: id,
          Name: fullName,
          PluginReference: fullName,
          Settings: initEmptySettings(config),
        };
        const dir = pluginDir(this.#root, id);
        await mkdir(dir, { mode: 0o700 });
        try {
          await rename(tmp, rootfsDir(this.#root, id));
          await savePluginFile(this.#root, object);
          const created = this.#createPlugin({ object, rootfs: rootfsDir(this.#root, id) });
          this.#store.add(created);
          this.#controllers.set(id, new Controller(this.#restartPolicy));
          return created;
        } catch (err) {
          await rm(dir, { recursive: true, force: true });
          throw err;
        }
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    this.#events?.logPluginEvent(plugin.id, fullName, 'create');
    return plugin;
  }

  /**
   * `POST /plugins/{name}/enable`: starts the plugin and waits until its socket answers, then
   * marks it enabled and runs the store's handlers. A plugin that does not come up is stopped and
   * stays disabled.
   */
  async enable(name: string, options: EnableOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = this.#store.getV2Plugin(name);
    await this.#locks.with(
      plugin.id,
      async () => {
        const c = this.#current(plugin, name);
        if (plugin.enabled) throw alreadyEnabled(plugin.name);
        c.timeoutSeconds = options.timeoutSeconds ?? 0;
        c.backoff.reset();
        await this.#start(plugin, c, options.signal);
      },
      { signal: options.signal },
    );
    this.#events?.logPluginEvent(plugin.id, name, 'enable');
  }

  /**
   * `POST /plugins/{name}/disable`: refused while volumes hold references unless forced; stops
   * the plugin (SIGTERM, grace, SIGKILL) and marks it disabled.
   */
  async disable(name: string, options: ForceOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = this.#store.getV2Plugin(name);
    await this.#locks.with(
      plugin.id,
      async () => {
        const c = this.#current(plugin, name);
        if (options.force !== true && plugin.refCount > 0) throw await this.#inUse(plugin);
        if (!plugin.enabled) throw alreadyDisabled(plugin.name);
        await this.#disable(plugin, c);
      },
      { signal: options.signal },
    );
    this.#events?.logPluginEvent(plugin.id, name, 'disable');
  }

  /**
   * `DELETE /plugins/{name}`: without force, refused while in use or enabled; with force, an
   * enabled plugin is disabled first. Its directory goes through `<id>-removing`.
   */
  async remove(name: string, options: ForceOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = this.#store.getV2Plugin(name);
    await this.#locks.with(
      plugin.id,
      async () => {
        const c = this.#current(plugin, name);
        if (options.force !== true) {
          if (plugin.refCount > 0) throw await this.#inUse(plugin);
          if (plugin.enabled) throw pluginEnabled(plugin.name);
        }
        if (plugin.enabled || c.run !== undefined) {
          await this.#disable(plugin, c).catch((err: unknown) =>
            this.#logger.error('failed to disable plugin', { plugin: plugin.id, error: message(err) }),
          );
        }
        c.cancelRestart();
        const dir = pluginDir(this.#root, plugin.id);
        try {
          await recursiveUnmount(dir);
        } catch (err) {
          throw wrap(err, 'error unmounting plugin data');
        }
        await atomicRemoveAll(dir);
        await rm(path.join(this.#execRoot, plugin.id), { recursive: true, force: true });
        this.#store.remove(plugin);
        this.#controllers.delete(plugin.id);
      },
      { signal: options.signal },
    );
    this.#events?.logPluginEvent(plugin.id, name, 'remove');
    // moby: `go pm.GC()` — the blobs only this plugin used.
    void this.gc();
  }

  /**
   * Checks, before anything is fetched, that a plugin may be installed under `name` (moby's
   * `Pull` does so first): returns the normalised name (`foo/bar:latest`); a taken name is the
   * store's `plugin <name> already exists` (conflict; pull answers it as 400, as moby).
   */
  validateName(name: string): string {
    const fullName = pluginNameForPull(name);
    this.#store.validateName(fullName);
    return fullName;
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
      const fullName = pluginNameForPull(name);
      return await this.#names.with(fullName, async () => {
        try {
          this.#store.validateName(fullName);
        } catch (err) {
          throw isConflict(err) ? invalidParameter((err as Error).message, { cause: err }) : err;
        }
        if (options.privileges !== undefined) validatePrivileges(computePrivileges(options.config), options.privileges);
        options.signal?.throwIfAborted();
        const id = newPluginId();
        const config = structuredClone(options.config);
        const object: PluginObject = {
          Config: config,
          Enabled: false,
          Id: id,
          Name: fullName,
          PluginReference: options.pluginReference,
          Settings: initEmptySettings(config),
        };
        const extras = imageExtras(options);
        const dir = pluginDir(this.#root, id);
        await mkdir(dir, { mode: 0o700 });
        try {
          await rename(options.rootfsDir, rootfsDir(this.#root, id));
          await savePluginFile(this.#root, object, extras);
          await syncDir(this.#root);
          const created = this.#createPlugin({ object, rootfs: rootfsDir(this.#root, id) });
          this.#store.add(created);
          this.#controllers.set(id, new Controller(this.#restartPolicy, extras));
          return created;
        } catch (err) {
          await rm(dir, { recursive: true, force: true });
          throw err;
        }
      }, { signal: options.signal });
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
      const plugin = this.#store.getV2Plugin(name);
      await this.#locks.with(
        plugin.id,
        async () => {
          const c = this.#current(plugin, name);
          if (plugin.enabled || c.run !== undefined) {
            throw conflict(`plugin must be disabled before upgrading: plugin ${plugin.name} is enabled`);
          }
          if (options.privileges !== undefined) validatePrivileges(computePrivileges(options.config), options.privileges);
          options.signal?.throwIfAborted();
          await this.#swapRootfs(plugin, c, options);
        },
        { signal: options.signal },
      );
      return plugin;
    } finally {
      await rm(options.rootfsDir, { recursive: true, force: true });
    }
  }

  async #swapRootfs(plugin: P, c: Controller, options: RootfsInstallOptions): Promise<void> {
    const id = plugin.id;
    const dir = pluginDir(this.#root, id);
    const current = rootfsDir(this.#root, id);
    const old = oldRootfsDir(this.#root, id);
    const staged = path.join(dir, UPGRADE_CONFIG_FILE);
    // Nothing may stay mounted in the old rootfs (a plugin disabled with force while in use).
    try {
      await recursiveUnmount(current);
    } catch (err) {
      throw wrap(err, 'error unmounting plugin rootfs');
    }
    const object: PluginObject = {
      ...plugin.object,
      Config: structuredClone(options.config),
      PluginReference: options.pluginReference,
    };
    const extras = { ...c.extras, ...imageExtras(options) };
    await rm(old, { recursive: true, force: true });
    await savePluginFile(this.#root, object, extras, UPGRADE_CONFIG_FILE);
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
      await syncDir(dir);
      // The commit point: from here the upgrade stands, also after a crash.
      await rename(staged, path.join(dir, CONFIG_FILE));
      await syncDir(dir);
    } catch (err) {
      if (movedOld) {
        await rm(current, { recursive: true, force: true });
        await rename(old, current).catch((restoreErr: unknown) =>
          this.#logger.error('error restoring old plugin root on upgrade failure', { plugin: id, error: message(restoreErr) }),
        );
      }
      await rm(staged, { force: true });
      throw err;
    }
    plugin.object.Config = object.Config;
    plugin.object.PluginReference = options.pluginReference;
    c.extras = extras;
    await rm(old, { recursive: true, force: true }).catch((err: unknown) =>
      this.#logger.error('error cleaning up old plugin root after successful upgrade', { plugin: id, error: message(err) }),
    );
  }

  /** The `pull` event of an install or upgrade: actor the remote in familiar form, `name` the local name (moby). */
  logPullEvent(remote: string, name: string): void {
    this.#events?.logPluginEvent(remote, name, 'pull');
  }

  /**
   * The image recorded for a plugin (moby's `Config`, `Blobsums`, `Manifest`): for a pulled
   * plugin what was fetched, for a created one what its first push built; undefined when none.
   */
  image(name: string): PluginImageRecord | undefined {
    const plugin = this.#store.getV2Plugin(name);
    const extras = this.#controllers.get(plugin.id)?.extras ?? {};
    const configDigest = extras['Config'];
    const manifestDigest = extras['Manifest'];
    const blobsums = extras['Blobsums'];
    if (typeof configDigest !== 'string' || configDigest === '' || typeof manifestDigest !== 'string' || manifestDigest === '') return undefined;
    if (!Array.isArray(blobsums) || !blobsums.every((b): b is string => typeof b === 'string')) return undefined;
    return { configDigest, manifestDigest, blobsums };
  }

  /**
   * Records the image built for a plugin (by its first push), as moby's `CreateFromContext`
   * records the one it builds: `Config`, `Blobsums`, `Manifest` in `config.json`, and
   * `Config.rootfs.diff_ids` naming the layers.
   */
  async recordImage(name: string, image: PluginImageRecord, options: CallOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = this.#store.getV2Plugin(name);
    await this.#locks.with(
      plugin.id,
      async () => {
        const c = this.#current(plugin, name);
        const extras = { ...c.extras, ...imageExtras(image) };
        const config = { ...plugin.object.Config, rootfs: { type: 'layers', diff_ids: [...image.blobsums] } };
        await savePluginFile(this.#root, { ...plugin.object, Config: config }, extras);
        plugin.object.Config = config;
        c.extras = extras;
      },
      { signal: options.signal },
    );
  }

  /**
   * Runs `fn` (a fetch and install, an upgrade, a push) while garbage collection waits: blobs it
   * writes are not referenced by any plugin until it records them. moby's `muGC` read lock.
   */
  async withContentLease<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#gcRunning !== undefined) await this.#gcRunning;
    this.#leases++;
    try {
      return await fn();
    } finally {
      this.#leases--;
      if (this.#leases === 0 && this.#gcWanted) void this.gc();
    }
  }

  /**
   * Deletes every blob of the content store that no plugin references (its `Config`, `Blobsums`
   * or `Manifest`). Deferred while a lease is held; never throws (failures are logged).
   */
  gc(): Promise<void> {
    if (this.#contentStore === undefined) return Promise.resolve();
    if (this.#leases > 0 || this.#gcRunning !== undefined) {
      this.#gcWanted = true;
      return this.#gcRunning ?? Promise.resolve();
    }
    this.#gcWanted = false;
    const store = this.#contentStore;
    const running = this.#collect(store).finally(() => {
      this.#gcRunning = undefined;
      if (this.#gcWanted && this.#leases === 0) void this.gc();
    });
    this.#gcRunning = running;
    return running;
  }

  async #collect(store: ContentStoreLike): Promise<void> {
    const keep = new Set<string>();
    for (const c of this.#controllers.values()) {
      for (const key of ['Config', 'Manifest']) {
        const digest = c.extras[key];
        if (typeof digest === 'string') keep.add(digest);
      }
      const blobsums = c.extras['Blobsums'];
      if (Array.isArray(blobsums)) for (const digest of blobsums) if (typeof digest === 'string') keep.add(digest);
    }
    try {
      for (const digest of await store.list()) {
        if (keep.has(digest)) continue;
        await store.delete(digest);
        this.#logger.debug('removed unreferenced plugin blob', { digest });
      }
    } catch (err) {
      this.#logger.warn('error collecting plugin blobs', { error: message(err) });
    }
  }

  /**
   * `POST /plugins/{name}/set`: `name[.field][=value]` arguments, only while disabled; all or
   * nothing (moby keeps those before a failing one).
   */
  async set(name: string, args: readonly string[], options: CallOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = this.#store.getV2Plugin(name);
    await this.#locks.with(
      plugin.id,
      async () => {
        const c = this.#current(plugin, name);
        if (plugin.enabled) throw setWhileEnabled();
        const object = plugin.object;
        const before = { Settings: object.Settings, Config: object.Config };
        Object.assign(object, applySettings(object, args));
        try {
          await savePluginFile(this.#root, object, c.extras);
        } catch (err) {
          Object.assign(object, before);
          throw err;
        }
      },
      { signal: options.signal },
    );
  }

  /**
   * Stops every running plugin — unless live restore is on, then enabled ones keep running for
   * the next `open()` — and closes the executor. Later calls fail as `unavailable`.
   */
  async shutdown(options: CallOptions = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#controllers.values()) c.cancelRestart();
    await Promise.all(
      [...this.#store.getAll().values()].map((plugin) =>
        this.#locks.with(
          plugin.id,
          async () => {
            const c = this.#controllers.get(plugin.id);
            if (c?.run === undefined) return;
            if (this.#liveRestore && plugin.enabled) {
              this.#logger.debug('plugin active with live restore, leaving it running', { plugin: plugin.id });
              return;
            }
            await this.#stopRun(plugin, c);
          },
          { signal: options.signal },
        ),
      ),
    );
    await this.#executor.close?.();
  }

  /**
   * Called by the executor when a plugin's process has exited. Wakes whoever waits for the exit;
   * a plugin still enabled is started again after a back-off delay.
   */
  handleExitEvent(id: string): void {
    const c = this.#controllers.get(id);
    const run = c?.run;
    if (c === undefined || run === undefined) {
      this.#logger.debug('exit of a plugin that is not running', { plugin: id });
      return;
    }
    c.run = undefined;
    run.markExited();
    const plugin = this.#store.getAll().get(id);
    plugin?.setSocketPath(undefined);
    const uptimeMs = Date.now() - run.startedAt;
    if (c.restart && plugin?.enabled === true && !this.#closed) {
      c.restart = false;
      const delay = c.backoff.next(uptimeMs);
      this.#logger.warn('plugin exited while enabled; restarting it', { plugin: id, uptimeMs, delayMs: delay });
      this.#scheduleRestart(plugin, c, delay);
    } else if (plugin?.object.Config.PropagatedMount) {
      recursiveUnmount(propagatedMountDir(this.#root, id)).catch((err: unknown) =>
        this.#logger.warn('error cleaning up plugin mounts', { plugin: id, error: message(err) }),
      );
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  async #reload(signal: AbortSignal | undefined): Promise<void> {
    for (const dir of [this.#root, this.#execRoot, tmpDir(this.#root)]) await mkdir(dir, { recursive: true, mode: 0o700 });
    // Creates interrupted by a crash leave their half-extracted rootfs here.
    for (const leftover of await readdir(tmpDir(this.#root))) {
      await rm(path.join(tmpDir(this.#root), leftover), { recursive: true, force: true });
    }
    await this.#contentStore?.removeIngests?.().catch((err: unknown) =>
      this.#logger.warn('error clearing interrupted blob writes', { error: message(err) }),
    );
    const loaded = new Map<string, P>();
    for (const entry of await readdir(this.#root)) {
      signal?.throwIfAborted();
      if (FULL_ID.test(entry)) {
        try {
          const recovered = await recoverUpgrade(this.#root, entry);
          if (recovered !== 'none') this.#logger.warn(`an interrupted plugin upgrade was ${recovered === 'completed' ? 'completed' : 'rolled back'}`, { id: entry });
        } catch (err) {
          this.#logger.error('error recovering an interrupted plugin upgrade', { id: entry, error: message(err) });
        }
        try {
          const { object, extras } = await loadPluginFile(this.#root, entry);
          loaded.set(entry, this.#createPlugin({ object, rootfs: rootfsDir(this.#root, entry) }));
          this.#controllers.set(entry, new Controller(this.#restartPolicy, extras));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            this.#logger.warn(
              'missing plugin config, skipping: this may be caused due to a failed remove and requires manual cleanup.',
              { id: entry },
            );
          } else {
            this.#logger.error('error loading plugin, skipping', { id: entry, error: message(err) });
          }
        }
      } else if (entry.endsWith(REMOVING_SUFFIX) && FULL_ID.test(entry.slice(0, -REMOVING_SUFFIX.length))) {
        // A removal that was interrupted: finish it (moby tries, with a path relative to its cwd).
        await rm(path.join(this.#root, entry), { recursive: true, force: true }).catch((err: unknown) =>
          this.#logger.warn('error while attempting to clean up previously removed plugin', { id: entry, error: message(err) }),
        );
      }
    }
    this.#store.setAll(loaded);
    await Promise.all([...loaded.values()].map((plugin) => this.#restorePlugin(plugin, signal)));
  }

  async #restorePlugin(plugin: P, signal: AbortSignal | undefined): Promise<void> {
    const c = this.#controllers.get(plugin.id) as Controller;
    try {
      await this.#locks.with(
        plugin.id,
        async () => {
          await this.#preparePropagatedMount(plugin);
          if (plugin.enabled) await this.#restore(plugin, c, signal);
          await savePluginFile(this.#root, plugin.object, c.extras);
        },
        { signal },
      );
    } catch (err) {
      if (signal?.aborted === true) throw err;
      this.#logger.error('failed to restore plugin', { plugin: plugin.id, error: message(err) });
      if (plugin.enabled) this.#scheduleRestart(plugin, c, c.backoff.next());
    }
  }

  /** moby's `restore`: re-attach to a running plugin with live restore, else start it afresh. */
  async #restore(plugin: P, c: Controller, signal: AbortSignal | undefined): Promise<void> {
    const run = c.newRun();
    let alive: boolean;
    try {
      alive = await this.#executor.restore(plugin.id, ...this.#outputStreams(plugin.id), { signal });
    } catch (err) {
      c.run = undefined;
      throw err;
    }
    if (!alive) {
      c.run = undefined;
      await this.#start(plugin, c, signal);
      return;
    }
    if (this.#liveRestore) {
      await this.#postStart(plugin, c, run, signal);
      return;
    }
    // Without live restore a plugin found running is stopped and started fresh.
    await this.#stopRun(plugin, c);
    await this.#start(plugin, c, signal);
  }

  /** Starts a run of the plugin and waits for its socket (moby's `enable(force)` + `pluginPostStart`). */
  async #start(plugin: P, c: Controller, signal: AbortSignal | undefined): Promise<void> {
    const id = plugin.id;
    c.restart = false;
    const execDir = path.join(this.#execRoot, id);
    const socket = this.#socketPath(plugin);
    await mkdir(execDir, { recursive: true, mode: 0o700 });
    await rm(socket, { force: true });
    const propagated = plugin.object.Config.PropagatedMount !== '';
    if (propagated) {
      await mkdir(propagatedMountDir(this.#root, id), { recursive: true, mode: 0o755 });
      await makeRShared(propagatedMountDir(this.#root, id));
    }
    await setupInitLayer(plugin.rootfs);
    const spec = await buildSpec(plugin.object, {
      rootfs: plugin.rootfs,
      execDir,
      propagatedMount: propagatedMountDir(this.#root, id),
    });
    const run = c.newRun();
    try {
      await this.#executor.create(id, spec, ...this.#outputStreams(id), { signal });
    } catch (err) {
      if (c.run === run) c.run = undefined;
      if (propagated) await recursiveUnmount(propagatedMountDir(this.#root, id)).catch(() => undefined);
      throw err;
    }
    await this.#postStart(plugin, c, run, signal);
  }

  /** Waits for the socket; then the plugin is enabled and running. A plugin that does not answer is stopped. */
  async #postStart(plugin: P, c: Controller, run: Run, signal: AbortSignal | undefined): Promise<void> {
    const socket = this.#socketPath(plugin);
    try {
      await waitForSocket(socket, {
        timeoutMs: c.timeoutSeconds > 0 ? c.timeoutSeconds * 1000 : this.#socketTimeoutMs,
        pollMs: this.#socketPollMs,
        exited: run.exited,
        signal,
      });
    } catch (err) {
      await this.#stopRun(plugin, c);
      throw err;
    }
    run.ready = true;
    c.restart = true;
    if (c.timeoutSeconds > 0) plugin.setTimeout(c.timeoutSeconds * 1000);
    plugin.setSocketPath(socket);
    this.#store.setState(plugin, true);
    try {
      this.#store.callHandler(plugin);
    } catch (err) {
      this.#logger.error('plugin handler failed', { plugin: plugin.id, error: message(err) });
    }
    await savePluginFile(this.#root, plugin.object, c.extras);
  }

  async #disable(plugin: P, c: Controller): Promise<void> {
    c.cancelRestart();
    await this.#stopRun(plugin, c);
    plugin.setSocketPath(undefined);
    this.#store.setState(plugin, false);
    await savePluginFile(this.#root, plugin.object, c.extras);
  }

  /** moby's `shutdownPlugin`: SIGTERM, wait, SIGKILL, wait; never throws. */
  async #stopRun(plugin: P, c: Controller): Promise<void> {
    const run = c.run;
    if (run === undefined) return;
    c.restart = false;
    try {
      await this.#executor.signal(plugin.id, 'SIGTERM');
    } catch (err) {
      if (isNotFound(err)) {
        // The executor no longer knows it: it is gone.
        if (c.run === run) c.run = undefined;
        run.markExited();
        return;
      }
      this.#logger.error('sending SIGTERM to plugin failed', { plugin: plugin.id, error: message(err) });
      return;
    }
    if (await settles(run.exited, this.#stopTimeoutMs)) return;
    this.#logger.debug('force shutdown plugin', { plugin: plugin.id });
    await this.#executor
      .signal(plugin.id, 'SIGKILL')
      .catch((err: unknown) => this.#logger.error('sending SIGKILL to plugin failed', { plugin: plugin.id, error: message(err) }));
    if (!(await settles(run.exited, this.#stopTimeoutMs))) {
      this.#logger.warn('force shutdown plugin FAILED', { plugin: plugin.id });
    }
  }

  #scheduleRestart(plugin: P, c: Controller, delayMs: number): void {
    c.cancelRestart();
    c.timer = setTimeout(() => {
      c.timer = undefined;
      void this.#restartNow(plugin, c);
    }, delayMs);
    // Pending restarts must not keep a process alive that has nothing else to do.
    c.timer.unref();
  }

  async #restartNow(plugin: P, c: Controller): Promise<void> {
    await this.#locks.with(plugin.id, async () => {
      if (this.#closed || this.#controllers.get(plugin.id) !== c || !plugin.enabled || c.run !== undefined) return;
      try {
        await this.#start(plugin, c, undefined);
        this.#logger.info('plugin restarted', { plugin: plugin.id });
        this.#onRestart?.(plugin.name, true);
      } catch (err) {
        if (this.#closed || this.#controllers.get(plugin.id) !== c || !plugin.enabled) return;
        this.#onRestart?.(plugin.name, false);
        const delay = c.backoff.next();
        this.#logger.error('failed to restart plugin; trying again', { plugin: plugin.id, delayMs: delay, error: message(err) });
        this.#scheduleRestart(plugin, c, delay);
      }
    });
  }

  /** moby's load-time step for volume (and similar) plugins with a propagated mount. */
  async #preparePropagatedMount(plugin: P): Promise<void> {
    const mount = plugin.object.Config.PropagatedMount;
    if (mount === '') return;
    const eligible = interfaceTypes(plugin.object.Config).some(
      (t) => PROPAGATING_CAPABILITIES.has(t.capability) && t.prefix === 'docker' && t.version.startsWith('1.'),
    );
    if (!eligible) return;
    const target = propagatedMountDir(this.#root, plugin.id);
    if ((await lstat(target).catch(() => undefined)) === undefined) {
      // Older layouts kept it inside the rootfs.
      const old = path.join(plugin.rootfs, path.posix.resolve('/', mount));
      if ((await lstat(old).catch(() => undefined))?.isDirectory() === true) {
        await rename(old, target).catch((err: unknown) =>
          this.#logger.error('error migrating propagated mount storage', { plugin: plugin.id, error: message(err) }),
        );
      }
    }
    await mkdir(target, { recursive: true, mode: 0o755 });
  }

  // ---- helpers -----------------------------------------------------------------------------

  #socketPath(plugin: P): string {
    const socket = path.join(this.#execRoot, plugin.id, plugin.object.Config.Interface.Socket);
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      throw system(`plugin socket path ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter exec root`);
    }
    return socket;
  }

  /** Fresh streams for each create or restore: the executor ends them when the output ends. */
  #outputStreams(id: string): [Writable, Writable] {
    return [pluginLogStream(this.#logger, 'info', id), pluginLogStream(this.#logger, 'error', id)];
  }

  /** The plugin's controller, once the lock is held; the plugin may have been removed meanwhile. */
  #current(plugin: P, name: string): Controller {
    const c = this.#controllers.get(plugin.id);
    if (c === undefined || this.#store.getAll().get(plugin.id) !== plugin) throw pluginNotFound(name);
    return c;
  }

  async #inUse(plugin: P): Promise<BerthError> {
    let users: readonly string[] = [];
    try {
      users = (await this.#usersOf?.(plugin.name)) ?? [];
    } catch (err) {
      this.#logger.debug('cannot name the users of a plugin', { plugin: plugin.id, error: message(err) });
    }
    return pluginInUse(plugin.name, users);
  }

  #assertOpen(): void {
    if (this.#closed) throw unavailable('plugin manager is shut down');
  }
}

/** moby's persisted image fields. */
function imageExtras(image: PluginImageRecord): PersistedExtras {
  return { Config: image.configDigest, Blobsums: [...image.blobsums], Manifest: image.manifestDigest };
}

/** Whether the promise settles within `ms`. */
async function settles(promise: Promise<void>, ms: number): Promise<boolean> {
  const timeout = new AbortController();
  try {
    const elapsed = sleep(ms, false, { signal: timeout.signal }).catch(() => false);
    return await Promise.race([promise.then(() => true), elapsed]);
  } finally {
    timeout.abort();
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
