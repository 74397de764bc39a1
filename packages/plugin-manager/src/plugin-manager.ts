import path from 'node:path';
import type { Readable } from 'node:stream';
import { unavailable, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { computePrivileges, interfaceTypes, type NamedReference, type PluginObject, type PluginPrivilege, type RemoteCallOptions } from '@berth/plugin-store';
import { noopLogger, type Logger } from '@berth/logger';
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from './backoff.js';
import type { CallOptions, EnableOptions, ForceOptions } from './call-options.js';
import type { ContentStoreLike, CreatePlugin, Executor, ExitHandler, ManagedPlugin, PluginEvents, PluginImageRecord, PluginStoreLike } from './contracts.js';
import type { Distribution } from './distribution.js';
import { alreadyDisabled, alreadyEnabled, errorMessage, pluginEnabled, pluginInUse, setWhileEnabled } from './errors.js';
import { ImageCollector, imageRecord } from './images.js';
import { PluginInstaller, type RootfsInstallOptions } from './install.js';
import { recursiveUnmount } from './mounts.js';
import { atomicRemoveAll, pluginDir, storageDir, tmpDir } from './plugin-dir.js';
import { PluginTable } from './plugin-table.js';
import { reloadPlugins } from './reload.js';
import { RemotePlugins } from './remote.js';
import { PluginRunner } from './runner.js';
import { applySettings } from './settings.js';

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
  /**
   * How plugins are fetched from and pushed to registries (`@berth/plugin-registry`'s
   * `PluginDistribution`). Optional: without it pull, upgrade and push are not available.
   */
  distribution?: Distribution | undefined;
}


/**
 * Docker's managed plugin manager (moby's `plugin.Manager`): the plugins under `root`, created
 * from tar contexts or pulled from registries, enabled and disabled through an `Executor`, with
 * their settings, their OCI spec, and their restart when they exit while enabled.
 *
 * "Enabled" is the user's intent, persisted and reported as `Enabled`; whether the plugin's
 * process runs right now is `isRunning(name)`. A plugin that exits while enabled is started again
 * with back-off, for as long as it stays enabled (dockerd restarts it at once, without back-off).
 *
 * This class is the manager's face; the work is done by its parts: `PluginTable` (the plugins,
 * their controllers and locks), `PluginRunner` (running a plugin), `PluginInstaller` (putting one
 * on disk), `ImageCollector` (image records and their garbage collection), `RemotePlugins` (pull,
 * upgrade, push) and `reloadPlugins` (what a start finds on disk).
 */
export class PluginManager<P extends ManagedPlugin> implements ExitHandler {
  readonly #plugins: PluginTable<P>;
  readonly #runner: PluginRunner<P>;
  readonly #installer: PluginInstaller<P>;
  readonly #images: ImageCollector;
  readonly #remote: RemotePlugins<P>;
  readonly #events: PluginEvents | undefined;
  readonly #usersOf: PluginManagerOptions<P>['usersOf'];
  readonly #logger: Logger;
  #closed = false;

  private constructor(options: PluginManagerOptions<P>) {
    const root = path.resolve(options.root);
    const logger = options.logger ?? noopLogger;
    this.#events = options.events;
    this.#usersOf = options.usersOf;
    this.#logger = logger;
    this.#plugins = new PluginTable({
      root,
      store: options.store,
      createPlugin: options.createPlugin,
      restartPolicy: { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy },
    });
    this.#runner = new PluginRunner({
      plugins: this.#plugins,
      execRoot: path.resolve(options.execRoot),
      executor: options.createExecutor(this),
      liveRestore: options.liveRestore ?? false,
      logger,
      socketTimeoutMs: options.socketTimeoutMs ?? 10_000,
      socketPollMs: options.socketPollMs ?? 100,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      closed: () => this.#closed,
      onRestart: options.onRestart,
    });
    this.#installer = new PluginInstaller({
      plugins: this.#plugins,
      events: options.events,
      logger,
      maxConfigBytes: options.maxConfigBytes,
      assertOpen: () => this.#assertOpen(),
    });
    this.#images = new ImageCollector({ store: options.contentStore, controllers: () => this.#plugins.controllers(), logger });
    this.#remote = new RemotePlugins({
      plugins: this.#plugins,
      installer: this.#installer,
      images: this.#images,
      distribution: options.distribution,
      events: options.events,
      logger,
    });
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
      await reloadPlugins(
        { plugins: manager.#plugins, runner: manager.#runner, images: manager.#images, execRoot: path.resolve(options.execRoot), logger: manager.#logger },
        options.signal,
      );
    } catch (err) {
      await manager.shutdown().catch(() => undefined);
      throw wrap(err, 'failed to restore plugins');
    }
    return manager;
  }

  /** `<data-root>/plugins`. */
  get root(): string {
    return this.#plugins.root;
  }

  /** `<root>/tmp`: where fetched rootfs directories are extracted (same filesystem as the plugins). */
  get tmpDir(): string {
    return tmpDir(this.#plugins.root);
  }

  /** `<root>/storage`: where the content store of plugin images belongs (moby's layout). */
  get storageDir(): string {
    return storageDir(this.#plugins.root);
  }

  // ---- the plugins as they are ------------------------------------------------------------

  /** `GET /plugins/{name}/json`: the plugin's Engine API object (moby-shaped; `Enabled` is intent). */
  inspect(name: string): PluginObject {
    return this.#plugins.store.getV2Plugin(name).object;
  }

  /** The store's plugin by name, name:tag, ID or unique ID prefix. */
  get(name: string): P {
    return this.#plugins.store.getV2Plugin(name);
  }

  /** Whether the plugin's process runs and its socket answered. berth's addition to `Enabled`. */
  isRunning(name: string): boolean {
    return this.#plugins.controller(this.#plugins.store.getV2Plugin(name).id)?.run?.ready === true;
  }

  /**
   * `GET /plugins`: filters `enabled` (`true|1|false|0`) and `capability` (a regular expression
   * every one of the plugin's interface capabilities must match); other keys are `invalid filter`.
   */
  list(filters: Filters = Filters.empty()): PluginObject[] {
    filters.validate(['enabled', 'capability']);
    const enabled = filters.contains('enabled') ? filters.getBoolOrDefault('enabled', false) : undefined;
    const out: PluginObject[] = [];
    for (const plugin of this.#plugins.store.getAll().values()) {
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
    return computePrivileges(this.#plugins.store.getV2Plugin(name).object.Config);
  }

  /**
   * The image recorded for a plugin (moby's `Config`, `Blobsums`, `Manifest`): for a pulled
   * plugin what was fetched, for a created one what its first push built; undefined when none.
   */
  image(name: string): PluginImageRecord | undefined {
    const plugin = this.#plugins.store.getV2Plugin(name);
    return imageRecord(this.#plugins.controller(plugin.id)?.extras ?? {});
  }

  // ---- Engine API operations ---------------------------------------------------------------

  /**
   * `POST /plugins/create?name=`: unpacks a build context (`config.json` + `rootfs/`), streamed
   * to disk, into a new plugin, disabled. On any refusal nothing is left on disk.
   */
  createFromContext(name: string, context: Readable | AsyncIterable<Uint8Array>, options: CallOptions = {}): Promise<P> {
    return this.#installer.createFromContext(name, context, options);
  }

  /**
   * `POST /plugins/{name}/enable`: starts the plugin and waits until its socket answers, then
   * marks it enabled and runs the store's handlers. A plugin that does not come up is stopped and
   * stays disabled.
   */
  async enable(name: string, options: EnableOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = await this.#plugins.withPlugin(name, options.signal, async (plugin, c) => {
      if (plugin.enabled) throw alreadyEnabled(plugin.name);
      c.timeoutSeconds = options.timeoutSeconds ?? 0;
      c.backoff.reset();
      await this.#runner.start(plugin, c, options.signal);
      return plugin;
    });
    this.#events?.logPluginEvent(plugin.id, name, 'enable');
  }

  /**
   * `POST /plugins/{name}/disable`: refused while volumes hold references unless forced; stops
   * the plugin (SIGTERM, grace, SIGKILL) and marks it disabled.
   */
  async disable(name: string, options: ForceOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = await this.#plugins.withPlugin(name, options.signal, async (plugin, c) => {
      if (options.force !== true && plugin.refCount > 0) throw await this.#inUse(plugin);
      if (!plugin.enabled) throw alreadyDisabled(plugin.name);
      await this.#runner.disable(plugin, c);
      return plugin;
    });
    this.#events?.logPluginEvent(plugin.id, name, 'disable');
  }

  /**
   * `DELETE /plugins/{name}`: without force, refused while in use or enabled; with force, an
   * enabled plugin is disabled first. Its directory goes through `<id>-removing`.
   */
  async remove(name: string, options: ForceOptions = {}): Promise<void> {
    this.#assertOpen();
    const plugin = await this.#plugins.withPlugin(name, options.signal, async (plugin, c) => {
      if (options.force !== true) {
        if (plugin.refCount > 0) throw await this.#inUse(plugin);
        if (plugin.enabled) throw pluginEnabled(plugin.name);
      }
      if (plugin.enabled || c.run !== undefined) {
        await this.#runner.disable(plugin, c).catch((err: unknown) =>
          this.#logger.error('failed to disable plugin', { plugin: plugin.id, error: errorMessage(err) }),
        );
      }
      c.cancelRestart();
      const dir = pluginDir(this.#plugins.root, plugin.id);
      try {
        await recursiveUnmount(dir);
      } catch (err) {
        throw wrap(err, 'error unmounting plugin data');
      }
      await atomicRemoveAll(dir);
      await this.#runner.removeExecDir(plugin);
      this.#plugins.forget(plugin);
      return plugin;
    });
    this.#events?.logPluginEvent(plugin.id, name, 'remove');
    // moby: `go pm.GC()` — the blobs only this plugin used.
    void this.gc();
  }

  /**
   * `POST /plugins/{name}/set`: `name[.field][=value]` arguments, only while disabled; all or
   * nothing (moby keeps those before a failing one).
   */
  async set(name: string, args: readonly string[], options: CallOptions = {}): Promise<void> {
    this.#assertOpen();
    await this.#plugins.withPlugin(name, options.signal, async (plugin, c) => {
      if (plugin.enabled) throw setWhileEnabled();
      const object = plugin.object;
      const before = { Settings: object.Settings, Config: object.Config };
      Object.assign(object, applySettings(object, args));
      try {
        await this.#plugins.save(plugin, c);
      } catch (err) {
        Object.assign(object, before);
        throw err;
      }
    });
  }

  // ---- registries --------------------------------------------------------------------------

  /** `GET /plugins/privileges?remote=`: what the remote plugin asks for; see `RemotePlugins.privileges`. */
  remotePrivileges(ref: NamedReference, options: RemoteCallOptions = {}): Promise<PluginPrivilege[] | null> {
    return this.#remote.privileges(ref, options);
  }

  /** `POST /plugins/pull`: fetch and install, disabled; see `RemotePlugins.pull`. */
  pull(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RemoteCallOptions = {}): Promise<void> {
    this.#assertOpen();
    return this.#remote.pull(ref, name, privileges, options);
  }

  /** `POST /plugins/{name}/upgrade`: fetch and swap in, keeping ID and settings; see `RemotePlugins.upgrade`. */
  upgrade(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RemoteCallOptions = {}): Promise<void> {
    this.#assertOpen();
    return this.#remote.upgrade(ref, name, privileges, options);
  }

  /** `POST /plugins/{name}/push`: to the repository its name says; see `RemotePlugins.push`. */
  push(name: string, options: RemoteCallOptions = {}): Promise<void> {
    this.#assertOpen();
    return this.#remote.push(name, options);
  }

  /**
   * Checks, before anything is fetched, that a plugin may be installed under `name`: returns the
   * normalised name (`foo/bar:latest`); a taken name is the store's `plugin <name> already exists`.
   */
  validateName(name: string): string {
    return this.#remote.validateName(name);
  }

  /** Installs a fetched rootfs as a new plugin; see `PluginInstaller.installFromRootfs`. */
  installFromRootfs(name: string, options: RootfsInstallOptions): Promise<P> {
    return this.#installer.installFromRootfs(name, options);
  }

  /** Swaps a fetched rootfs in under a disabled plugin; see `PluginInstaller.upgradeRootfs`. */
  upgradeRootfs(name: string, options: RootfsInstallOptions): Promise<P> {
    return this.#installer.upgradeRootfs(name, options);
  }

  /** Records the image a push built for a plugin; see `PluginInstaller.recordImage`. */
  recordImage(name: string, image: PluginImageRecord, options: CallOptions = {}): Promise<void> {
    return this.#installer.recordImage(name, image, options);
  }

  /** The `pull` event of an install or upgrade: actor the remote in familiar form, `name` the local name (moby). */
  logPullEvent(remote: string, name: string): void {
    this.#remote.logPullEvent(remote, name);
  }

  /**
   * Runs `fn` (a fetch and install, an upgrade, a push) while garbage collection waits: blobs it
   * writes are not referenced by any plugin until it records them. moby's `muGC` read lock.
   */
  withContentLease<T>(fn: () => Promise<T>): Promise<T> {
    return this.#images.withLease(fn);
  }

  /**
   * Deletes every blob of the content store that no plugin references (its `Config`, `Blobsums`
   * or `Manifest`). Deferred while a lease is held; never throws (failures are logged).
   */
  gc(): Promise<void> {
    return this.#images.collect();
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Stops every running plugin — unless live restore is on, then enabled ones keep running for
   * the next `open()` — and closes the executor. Later calls fail as `unavailable`.
   */
  async shutdown(options: CallOptions = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#runner.shutdown(options.signal);
  }

  /**
   * Called by the executor when a plugin's process has exited. Wakes whoever waits for the exit;
   * a plugin still enabled is started again after a back-off delay.
   */
  handleExitEvent(id: string): void {
    this.#runner.handleExit(id);
  }

  async #inUse(plugin: P): Promise<Error> {
    let users: readonly string[] = [];
    try {
      users = (await this.#usersOf?.(plugin.name)) ?? [];
    } catch (err) {
      this.#logger.debug('cannot name the users of a plugin', { plugin: plugin.id, error: errorMessage(err) });
    }
    return pluginInUse(plugin.name, users);
  }

  #assertOpen(): void {
    if (this.#closed) throw unavailable('plugin manager is shut down');
  }
}
