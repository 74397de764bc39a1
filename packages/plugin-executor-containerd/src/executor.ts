import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, conflict, isConflict, isNotFound, kindOf, notFound, wrap } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import { ContainerdClient, type CallOptions } from './client.js';
import { ExitMonitor } from './exit-monitor.js';
import { packRuncOptions, packSpec, type Any, type Container, type TaskExit } from './proto/messages.js';
import { signalNumber } from './signals.js';
import { fifoPaths, makeFifos, removeFifos, TaskStdio, type FifoPaths } from './stdio.js';

/** What the executor calls when a plugin's task has exited. The plugin manager implements it. */
export interface ExitHandler {
  handleExitEvent(id: string): void | Promise<void>;
}

/** How to reach containerd: an address (and namespace) to dial, or a client to share. */
export type ContainerdConnection =
  | {
      /** containerd's gRPC socket: a path or a `unix://` URL. */
      address: string;
      /** Default `plugins.moby`. */
      namespace?: string | undefined;
      /** Deadline of unary calls, in ms. Default 10 000. */
      timeoutMs?: number | undefined;
    }
  | {
      /** A client to use (its address and namespace apply); `close()` leaves it open. */
      client: ContainerdClient;
    };

export type ContainerdExecutorOptions = ContainerdConnection & {
  /** Where each plugin's bundle directory (`<stateDir>/<id>`) with its stdio FIFOs lives: moby's plugin exec root. */
  stateDir: string;
  exitHandler: ExitHandler;
  /** runc's state directory (`runc --root`), e.g. `<exec-root>/runtime-runc`. Default: runc's own. */
  runtimeRoot?: string | undefined;
  /** containerd runtime (shim) name. Default `io.containerd.runc.v2`. */
  runtime?: string | undefined;
  logger?: Logger | undefined;
};

export interface OperationOptions {
  signal?: AbortSignal | undefined;
}

/** Label moby puts on plugin containers, naming the bundle directory. */
export const BUNDLE_LABEL = 'com.docker/engine.bundle.path';
export const DEFAULT_RUNTIME = 'io.containerd.runc.v2';

const SIGKILL = 9;
// Once a task is deleted the shim has closed its FIFO ends; output still in the pipe is read within
// milliseconds. The bound only matters when a leftover process keeps a pipe open.
const OUTPUT_DRAIN_MS = 2_000;
const FORCE_DELETE_WAIT_MS = 10_000;

interface Task {
  readonly id: string;
  /** Init pid of this incarnation; exit events of an earlier task with the same ID carry another. */
  readonly pid: number;
  state: 'running' | 'exiting' | 'detached';
  readonly stdio: TaskStdio | undefined;
  /** Stops the Wait loop. */
  readonly abort: AbortController;
  /** Task and container deleted, output drained; set once the exit is being handled. */
  cleanup?: Promise<void>;
}

/**
 * Runs managed plugins as containerd tasks, the way moby's plugin executor does: one container per
 * plugin (the OCI spec's `root.path` is the plugin's rootfs directory, no snapshotter), a task with
 * stdout and stderr FIFOs copied into the caller's streams, and one `handleExitEvent(id)` per exit.
 *
 * Exits are learnt from two sources, whichever comes first: a Tasks.Wait issued before Tasks.Start
 * (and re-issued after containerd comes back), and the `/tasks/exit` event stream. When the event
 * stream is re-established every known task's state is looked at again, so an exit that happened
 * while containerd (or the connection) was down is still reported, once.
 */
export class ContainerdExecutor {
  readonly #client: ContainerdClient;
  readonly #ownsClient: boolean;
  readonly #stateDir: string;
  readonly #exitHandler: ExitHandler;
  readonly #runtime: string;
  readonly #runtimeOptions: Any | undefined;
  readonly #logger: Logger;
  readonly #tasks = new Map<string, Task>();
  readonly #exiting = new Set<Promise<void>>();
  /** IDs with a create or restore in flight. */
  readonly #starting = new Set<string>();
  readonly #monitor: ExitMonitor;
  #closed = false;

  constructor(options: ContainerdExecutorOptions) {
    if ('client' in options) {
      this.#client = options.client;
      this.#ownsClient = false;
    } else {
      this.#client = new ContainerdClient({
        address: options.address,
        namespace: options.namespace,
        timeoutMs: options.timeoutMs,
      });
      this.#ownsClient = true;
    }
    this.#stateDir = options.stateDir;
    this.#exitHandler = options.exitHandler;
    this.#runtime = options.runtime ?? DEFAULT_RUNTIME;
    this.#runtimeOptions = options.runtimeRoot === undefined ? undefined : packRuncOptions({ root: options.runtimeRoot });
    this.#logger = options.logger ?? noopLogger;
    this.#monitor = new ExitMonitor({
      client: this.#client,
      logger: this.#logger,
      onExit: (exit) => this.#onExitEvent(exit),
      onConnected: () => this.#reconcile(),
    });
  }

  /** The client in use; for callers that want to talk to the same containerd. */
  get client(): ContainerdClient {
    return this.#client;
  }

  /**
   * Creates the plugin's container and task and starts it. A container left behind under the same
   * ID (a previous run of the daemon) is removed first, its task killed.
   */
  async create(id: string, spec: object, stdout: Writable, stderr: Writable, options?: OperationOptions): Promise<void> {
    await this.#claim(id);
    try {
      await this.#create(id, spec, stdout, stderr, options);
    } finally {
      this.#starting.delete(id);
    }
  }

  async #create(id: string, spec: object, stdout: Writable, stderr: Writable, options?: OperationOptions): Promise<void> {
    const signal = options?.signal;
    const paths = await makeFifos(this.#bundle(id), id);
    let stdio: TaskStdio | undefined;
    let task: Task | undefined;
    let created = false;
    try {
      stdio = new TaskStdio(paths, { stdout, stderr }, this.#logger, true);
      await this.#replaceContainer(id, spec, { signal });
      created = true;
      const { pid } = await this.#client.createTask(
        { containerId: id, stdout: paths.stdout, stderr: paths.stderr, options: this.#runtimeOptions },
        { signal },
      );
      stdio.release();
      // Tracking starts the Wait loop, whose first Wait goes out before Start: a task that exits at
      // once is still waited for.
      task = this.#track(id, pid, stdio);
      await this.#client.startTask(id, { signal });
      this.#logger.debug('plugin task started', { plugin: id, pid });
    } catch (err) {
      if (task !== undefined) this.#untrack(task);
      stdio?.close();
      if (created) await this.#deleteTaskAndContainer(id);
      await removeFifos(paths).catch(() => undefined);
      throw BerthError.from(err);
    }
  }

  /**
   * Re-attaches to the plugin's task after a daemon restart. Alive (running or paused): output flows
   * to the new streams again and its exit will be reported; returns true. Otherwise whatever is left
   * of the task and container is deleted and it returns false (no exit is reported for it).
   */
  async restore(id: string, stdout: Writable, stderr: Writable, options?: OperationOptions): Promise<boolean> {
    await this.#claim(id);
    try {
      return await this.#restore(id, stdout, stderr, options);
    } finally {
      this.#starting.delete(id);
    }
  }

  async #restore(id: string, stdout: Writable, stderr: Writable, options?: OperationOptions): Promise<boolean> {
    const call = { signal: options?.signal };
    try {
      await this.#client.getContainer(id, call);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    let found;
    try {
      found = await this.#client.getTask(id, call);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.#deleteTaskAndContainer(id);
      return false;
    }
    const paths: FifoPaths =
      found.stdout !== '' && found.stderr !== ''
        ? { stdout: found.stdout, stderr: found.stderr }
        : fifoPaths(this.#bundle(id), id);
    if (found.status !== 'running' && found.status !== 'paused' && found.status !== 'pausing') {
      // A task that never started (the daemon died between Create and Start) counts as dead too.
      this.#logger.info('removing dead plugin task', { plugin: id, status: found.status });
      await this.#deleteTaskAndContainer(id);
      await removeFifos(paths).catch(() => undefined);
      return false;
    }
    let stdio: TaskStdio | undefined;
    try {
      stdio = new TaskStdio(paths, { stdout, stderr }, this.#logger, false);
    } catch (err) {
      this.#logger.warn('cannot re-attach to plugin output', { plugin: id, error: (err as Error).message });
    }
    try {
      this.#track(id, found.pid, stdio);
    } catch (err) {
      stdio?.close();
      throw err;
    }
    return true;
  }

  async isRunning(id: string, options?: OperationOptions): Promise<boolean> {
    const task = this.#known(id);
    if (task.state !== 'running') return false;
    try {
      return (await this.#client.getTask(id, { signal: options?.signal })).status === 'running';
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Sends a signal (a number, or a name such as `SIGTERM`) to the plugin's init process. */
  async signal(id: string, signal: number | string, options?: OperationOptions): Promise<void> {
    const n = signalNumber(signal);
    this.#known(id);
    await this.#client.killTask(id, n, { signal: options?.signal });
  }

  /**
   * Stops following the tasks and closes the connection. Tasks keep running (live restore picks
   * them up with `restore`); exits already being handled are finished first.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#monitor.close();
    for (const task of this.#tasks.values()) {
      if (task.state === 'running') this.#untrack(task);
    }
    await Promise.allSettled([...this.#exiting]);
    if (this.#ownsClient) this.#client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #bundle(id: string): string {
    return join(this.#stateDir, id);
  }

  #known(id: string): Task {
    const task = this.#tasks.get(id);
    if (task === undefined) throw notFound(`unknown plugin "${id}"`);
    return task;
  }

  /**
   * Reserves the ID for a create or restore: refuses while a task of it runs or is being started,
   * and waits out the cleanup of one that just exited.
   */
  async #claim(id: string): Promise<void> {
    if (this.#closed) throw new BerthError('unavailable', 'containerd plugin executor is closed');
    const existing = this.#tasks.get(id);
    if (existing?.state === 'running' || this.#starting.has(id)) throw conflict(`plugin "${id}" is already running`);
    this.#starting.add(id);
    if (existing?.cleanup !== undefined) await existing.cleanup;
  }

  #track(id: string, pid: number, stdio: TaskStdio | undefined): Task {
    // close() ran while this create or restore was in flight; nobody would follow the task.
    if (this.#closed) throw new BerthError('unavailable', 'containerd plugin executor is closed');
    const task: Task = { id, pid, state: 'running', stdio, abort: new AbortController() };
    this.#tasks.set(id, task);
    void this.#wait(task);
    return task;
  }

  /** Forgets a task without reporting an exit for it. */
  #untrack(task: Task): void {
    task.state = 'detached';
    task.abort.abort();
    task.stdio?.close();
    if (this.#tasks.get(task.id) === task) this.#tasks.delete(task.id);
  }

  async #replaceContainer(id: string, spec: object, call: CallOptions): Promise<void> {
    const container: Container = {
      id,
      labels: { [BUNDLE_LABEL]: this.#bundle(id) },
      runtime: { name: this.#runtime, options: this.#runtimeOptions },
      spec: packSpec(spec),
    };
    try {
      await this.#client.createContainer(container, call);
      return;
    } catch (err) {
      if (!isConflict(err)) throw wrap(err, 'error creating containerd container for plugin');
    }
    this.#logger.warn('replacing a container left behind', { plugin: id });
    await this.#deleteTaskAndContainer(id);
    try {
      await this.#client.createContainer(container, call);
    } catch (err) {
      throw wrap(err, 'error creating containerd container for plugin');
    }
  }

  /**
   * moby's force delete: a task that is not stopped is killed and waited for first (containerd
   * refuses to delete a live one, with an untyped error). Failures are logged, not thrown.
   */
  async #deleteTaskAndContainer(id: string, knownStopped = false): Promise<void> {
    let exists = true;
    if (!knownStopped) {
      try {
        if ((await this.#client.getTask(id)).status !== 'stopped') {
          await this.#client.killTask(id, SIGKILL, { all: true }).catch(() => undefined);
          await this.#client.waitTask(id, { timeoutMs: FORCE_DELETE_WAIT_MS }).catch(() => undefined);
        }
      } catch (err) {
        exists = !isNotFound(err);
      }
    }
    if (exists) {
      await this.#client
        .deleteTask(id)
        .catch((e: unknown) => this.#logUnlessNotFound(e, 'failed to delete plugin task from containerd', id));
    }
    await this.#client
      .deleteContainer(id)
      .catch((e: unknown) => this.#logUnlessNotFound(e, 'failed to delete plugin container from containerd', id));
  }

  #logUnlessNotFound(err: unknown, msg: string, id: string): void {
    if (!isNotFound(err)) this.#logger.error(msg, { plugin: id, error: (err as Error).message });
  }

  /** Tasks.Wait until it answers; re-issued after deadlines and while containerd is away. */
  async #wait(task: Task): Promise<void> {
    const signal = task.abort.signal;
    let delay = 100;
    while (task.state === 'running') {
      try {
        const { exitStatus } = await this.#client.waitTask(task.id, { signal });
        this.#exited(task, 'wait', exitStatus);
        return;
      } catch (err) {
        if (signal.aborted || task.state !== 'running') return;
        const kind = kindOf(err);
        if (kind === 'not-found') {
          this.#exited(task, 'wait: task is gone');
          return;
        }
        if (kind === 'deadline-exceeded') {
          delay = 100;
          continue;
        }
        this.#logger.debug('waiting for plugin task failed; retrying', { plugin: task.id, error: (err as Error).message });
      }
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return;
      }
      delay = Math.min(delay * 2, 2_000);
    }
  }

  #onExitEvent(exit: TaskExit): void {
    const task = this.#tasks.get(exit.containerId);
    // Exec'd processes and earlier incarnations under the same ID are not this task's exit.
    if (task === undefined || (exit.id !== '' && exit.id !== exit.containerId)) return;
    if (task.pid !== 0 && exit.pid !== task.pid) return;
    this.#exited(task, 'event', exit.exitStatus);
  }

  /** After (re)subscribing: catch exits whose event was published while nobody listened. */
  #reconcile(): void {
    for (const task of this.#tasks.values()) {
      if (task.state !== 'running') continue;
      this.#client.getTask(task.id).then(
        (p) => {
          if (p.status === 'stopped') this.#exited(task, 'reconcile', p.exitStatus);
        },
        (err: unknown) => {
          if (isNotFound(err)) this.#exited(task, 'reconcile: task is gone');
          else this.#logger.debug('cannot look at plugin task', { plugin: task.id, error: (err as Error).message });
        },
      );
    }
  }

  /** The one place an exit is accepted: first caller wins, later ones find the task no longer running. */
  #exited(task: Task, source: string, exitStatus?: number): void {
    if (task.state !== 'running') return;
    task.state = 'exiting';
    task.abort.abort();
    this.#logger.info('plugin task exited', { plugin: task.id, pid: task.pid, exitStatus, source });
    const cleanup = (async () => {
      await this.#deleteTaskAndContainer(task.id, true);
      if (task.stdio !== undefined) {
        await task.stdio.drained(OUTPUT_DRAIN_MS);
        task.stdio.close();
        await removeFifos(task.stdio.paths).catch(() => undefined);
      }
    })();
    task.cleanup = cleanup;
    const handled = cleanup.then(async () => {
      if (this.#tasks.get(task.id) === task) this.#tasks.delete(task.id);
      try {
        await this.#exitHandler.handleExitEvent(task.id);
      } catch (err) {
        this.#logger.error('plugin exit handler failed', { plugin: task.id, error: (err as Error).message });
      }
    });
    this.#exiting.add(handled);
    void handled.finally(() => this.#exiting.delete(handled));
  }
}
