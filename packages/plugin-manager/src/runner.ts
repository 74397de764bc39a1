import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isNotFound, system } from '@berth/errdefs';
import { interfaceTypes } from '@berth/plugin-store';
import type { Logger } from '@berth/logger';
import type { Executor, ManagedPlugin } from './contracts.js';
import type { Controller, Run } from './controller.js';
import { errorMessage } from './errors.js';
import { setupInitLayer } from './init-layer.js';
import { pluginLogStream } from './log-stream.js';
import { makeRShared, recursiveUnmount } from './mounts.js';
import { propagatedMountDir } from './plugin-dir.js';
import type { PluginTable } from './plugin-table.js';
import { waitForSocket } from './socket-wait.js';
import { buildSpec } from './spec.js';

export interface PluginRunnerOptions<P extends ManagedPlugin> {
  readonly plugins: PluginTable<P>;
  /** `<execRoot>/<id>/` is bound at `/run/docker/plugins` inside each running plugin. */
  readonly execRoot: string;
  readonly executor: Executor;
  readonly liveRestore: boolean;
  readonly logger: Logger;
  readonly socketTimeoutMs: number;
  readonly socketPollMs: number;
  readonly stopTimeoutMs: number;
  /** Whether the manager is shutting down: nothing is restarted then. */
  readonly closed: () => boolean;
  /** Told of every restart of a plugin that exited while enabled, and whether it started (metrics). */
  readonly onRestart?: ((pluginName: string, started: boolean) => void) | undefined;
}

// Types whose propagated mount moby migrates out of the rootfs and creates on load.
const PROPAGATING_CAPABILITIES = new Set(['volumedriver', 'graphdriver', 'csinode', 'csicontroller']);
const MAX_SOCKET_PATH = 107;

/**
 * Running plugins (moby's `enable`, `pluginPostStart`, `shutdownPlugin`, `restore` and exit
 * handling): a run is created through the executor and is ready once its socket answers; it is
 * stopped with SIGTERM, a grace, SIGKILL. A plugin that exits while enabled is started again
 * after a back-off delay, for as long as it stays enabled. Callers hold the plugin's lock.
 */
export class PluginRunner<P extends ManagedPlugin> {
  readonly #plugins: PluginTable<P>;
  readonly #execRoot: string;
  readonly #executor: Executor;
  readonly #liveRestore: boolean;
  readonly #logger: Logger;
  readonly #socketTimeoutMs: number;
  readonly #socketPollMs: number;
  readonly #stopTimeoutMs: number;
  readonly #closed: () => boolean;
  readonly #onRestart: PluginRunnerOptions<P>['onRestart'];

  constructor(options: PluginRunnerOptions<P>) {
    this.#plugins = options.plugins;
    this.#execRoot = options.execRoot;
    this.#executor = options.executor;
    this.#liveRestore = options.liveRestore;
    this.#logger = options.logger;
    this.#socketTimeoutMs = options.socketTimeoutMs;
    this.#socketPollMs = options.socketPollMs;
    this.#stopTimeoutMs = options.stopTimeoutMs;
    this.#closed = options.closed;
    this.#onRestart = options.onRestart;
  }

  /** Starts a run of the plugin and waits for its socket (moby's `enable(force)` + `pluginPostStart`). */
  async start(plugin: P, c: Controller, signal: AbortSignal | undefined): Promise<void> {
    const id = plugin.id;
    const root = this.#plugins.root;
    const execDir = path.join(this.#execRoot, id);
    const socket = this.#socketPath(plugin);
    await mkdir(execDir, { recursive: true, mode: 0o700 });
    await rm(socket, { force: true });
    const propagated = plugin.object.Config.PropagatedMount !== '';
    if (propagated) {
      await mkdir(propagatedMountDir(root, id), { recursive: true, mode: 0o755 });
      await makeRShared(propagatedMountDir(root, id));
    }
    await setupInitLayer(plugin.rootfs);
    const spec = await buildSpec(plugin.object, { rootfs: plugin.rootfs, execDir, propagatedMount: propagatedMountDir(root, id) });
    const run = c.beginRun();
    try {
      await this.#executor.create(id, spec, ...this.#outputStreams(id), { signal });
    } catch (err) {
      c.dropRun(run);
      if (propagated) await recursiveUnmount(propagatedMountDir(root, id)).catch(() => undefined);
      throw err;
    }
    await this.#postStart(plugin, c, run, signal);
  }

  /** moby's `restore`: re-attach to a running plugin with live restore, else start it afresh. */
  async restore(plugin: P, c: Controller, signal: AbortSignal | undefined): Promise<void> {
    const run = c.beginRun();
    let alive: boolean;
    try {
      alive = await this.#executor.restore(plugin.id, ...this.#outputStreams(plugin.id), { signal });
    } catch (err) {
      c.dropRun(run);
      throw err;
    }
    if (!alive) {
      c.dropRun(run);
      await this.start(plugin, c, signal);
      return;
    }
    if (this.#liveRestore) {
      await this.#postStart(plugin, c, run, signal);
      return;
    }
    // Without live restore a plugin found running is stopped and started fresh.
    await this.stop(plugin, c);
    await this.start(plugin, c, signal);
  }

  /** Stops the plugin and marks it disabled (persisted). */
  async disable(plugin: P, c: Controller): Promise<void> {
    c.cancelRestart();
    await this.stop(plugin, c);
    plugin.setSocketPath(undefined);
    this.#plugins.store.setState(plugin, false);
    await this.#plugins.save(plugin, c);
  }

  /** moby's `shutdownPlugin`: SIGTERM, wait, SIGKILL, wait; never throws. */
  async stop(plugin: P, c: Controller): Promise<void> {
    const run = c.run;
    if (run === undefined) return;
    c.expectExit();
    try {
      await this.#executor.signal(plugin.id, 'SIGTERM');
    } catch (err) {
      if (isNotFound(err)) {
        // The executor no longer knows it: it is gone.
        c.endRun(run);
        return;
      }
      this.#logger.error('sending SIGTERM to plugin failed', { plugin: plugin.id, error: errorMessage(err) });
      return;
    }
    if (await settles(run.exited, this.#stopTimeoutMs)) return;
    this.#logger.debug('force shutdown plugin', { plugin: plugin.id });
    await this.#executor
      .signal(plugin.id, 'SIGKILL')
      .catch((err: unknown) => this.#logger.error('sending SIGKILL to plugin failed', { plugin: plugin.id, error: errorMessage(err) }));
    if (!(await settles(run.exited, this.#stopTimeoutMs))) {
      this.#logger.warn('force shutdown plugin FAILED', { plugin: plugin.id });
    }
  }

  /** Removes the plugin's directory under the exec root (its socket's). */
  async removeExecDir(plugin: P): Promise<void> {
    await rm(path.join(this.#execRoot, plugin.id), { recursive: true, force: true });
  }

  /**
   * The executor's report that a plugin's process has exited. Wakes whoever waits for the exit; a
   * plugin still enabled is started again after a back-off delay.
   */
  handleExit(id: string): void {
    const c = this.#plugins.controller(id);
    const run = c?.run;
    if (c === undefined || run === undefined) {
      this.#logger.debug('exit of a plugin that is not running', { plugin: id });
      return;
    }
    const crashed = c.endRun(run);
    const plugin = this.#plugins.store.getAll().get(id);
    plugin?.setSocketPath(undefined);
    const uptimeMs = Date.now() - run.startedAt;
    if (crashed && plugin?.enabled === true && !this.#closed()) {
      const delay = c.backoff.next(uptimeMs);
      this.#logger.warn('plugin exited while enabled; restarting it', { plugin: id, uptimeMs, delayMs: delay });
      this.scheduleRestart(plugin, c, delay);
    } else if (plugin?.object.Config.PropagatedMount) {
      recursiveUnmount(propagatedMountDir(this.#plugins.root, id)).catch((err: unknown) =>
        this.#logger.warn('error cleaning up plugin mounts', { plugin: id, error: errorMessage(err) }),
      );
    }
  }

  /** Starts the plugin again after `delayMs`, and again with back-off while that fails and it stays enabled. */
  scheduleRestart(plugin: P, c: Controller, delayMs: number): void {
    c.scheduleRestart(delayMs, () => void this.#restartNow(plugin, c));
  }

  async #restartNow(plugin: P, c: Controller): Promise<void> {
    const wanted = (): boolean => !this.#closed() && this.#plugins.controller(plugin.id) === c && plugin.enabled;
    await this.#plugins.withLock(plugin, undefined, async () => {
      if (!wanted() || c.run !== undefined) return;
      try {
        await this.start(plugin, c, undefined);
        this.#logger.info('plugin restarted', { plugin: plugin.id });
        this.#onRestart?.(plugin.name, true);
      } catch (err) {
        if (!wanted()) return;
        this.#onRestart?.(plugin.name, false);
        const delay = c.backoff.next();
        this.#logger.error('failed to restart plugin; trying again', { plugin: plugin.id, delayMs: delay, error: errorMessage(err) });
        this.scheduleRestart(plugin, c, delay);
      }
    });
  }

  /** moby's load-time step for volume (and similar) plugins with a propagated mount. */
  async preparePropagatedMount(plugin: P): Promise<void> {
    const mount = plugin.object.Config.PropagatedMount;
    if (mount === '') return;
    const eligible = interfaceTypes(plugin.object.Config).some(
      (t) => PROPAGATING_CAPABILITIES.has(t.capability) && t.prefix === 'docker' && t.version.startsWith('1.'),
    );
    if (!eligible) return;
    const target = propagatedMountDir(this.#plugins.root, plugin.id);
    if ((await lstat(target).catch(() => undefined)) === undefined) {
      // Older layouts kept it inside the rootfs.
      const old = path.join(plugin.rootfs, path.posix.resolve('/', mount));
      if ((await lstat(old).catch(() => undefined))?.isDirectory() === true) {
        await rename(old, target).catch((err: unknown) =>
          this.#logger.error('error migrating propagated mount storage', { plugin: plugin.id, error: errorMessage(err) }),
        );
      }
    }
    await mkdir(target, { recursive: true, mode: 0o755 });
  }

  /**
   * Stops every running plugin — unless live restore is on, then enabled ones keep running for the
   * next manager — and closes the executor.
   */
  async shutdown(signal: AbortSignal | undefined): Promise<void> {
    for (const c of this.#plugins.controllers()) c.cancelRestart();
    await Promise.all(
      [...this.#plugins.store.getAll().values()].map((plugin) =>
        this.#plugins.withLock(plugin, signal, async () => {
          const c = this.#plugins.controller(plugin.id);
          if (c?.run === undefined) return;
          if (this.#liveRestore && plugin.enabled) {
            this.#logger.debug('plugin active with live restore, leaving it running', { plugin: plugin.id });
            return;
          }
          await this.stop(plugin, c);
        }),
      ),
    );
    await this.#executor.close?.();
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
      await this.stop(plugin, c);
      throw err;
    }
    c.markReady(run);
    if (c.timeoutSeconds > 0) plugin.setTimeout(c.timeoutSeconds * 1000);
    plugin.setSocketPath(socket);
    this.#plugins.store.setState(plugin, true);
    try {
      this.#plugins.store.callHandler(plugin);
    } catch (err) {
      this.#logger.error('plugin handler failed', { plugin: plugin.id, error: errorMessage(err) });
    }
    await this.#plugins.save(plugin, c);
  }

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
