import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { conflict, notFound } from '@berth/errdefs';
import type { Executor, ExitHandler, OciSpec } from '../src/index.js';

export interface FakeExecutorOptions {
  /** The socket file name plugins listen on (their `Config.Interface.Socket`). */
  socket?: string;
}

/**
 * An in-memory executor: a "plugin" is a unix socket server on `<exec dir>/<socket>` that accepts
 * and closes connections. Its state outlives the manager that used it, like containerd's, so a
 * second manager can find plugins "still running". Exits are reported asynchronously, as the real
 * executor does.
 */
export class FakeExecutor implements Executor {
  readonly specs = new Map<string, OciSpec>();
  readonly calls: string[] = [];
  readonly #running = new Map<string, { server: Server; socket: string }>();
  readonly #socket: string;
  exitHandler: ExitHandler | undefined;
  /** Thrown by the next creates while set. */
  failCreate: Error | undefined;
  /** Started plugins do not listen on their socket. */
  silent = false;
  /** SIGTERM is ignored (a PID 1 without a handler). */
  ignoreTerm = false;
  closed = false;

  constructor(options: FakeExecutorOptions = {}) {
    this.#socket = options.socket ?? 'plugin.sock';
  }

  /** For `createExecutor`: remembers the manager as the exit handler. */
  readonly factory = (handler: ExitHandler): FakeExecutor => {
    this.exitHandler = handler;
    this.closed = false;
    return this;
  };

  isRunning(id: string): boolean {
    return this.#running.has(id);
  }

  async create(id: string, spec: OciSpec, stdout: Writable, stderr: Writable): Promise<void> {
    this.calls.push(`create ${id}`);
    if (this.failCreate !== undefined) throw this.failCreate;
    if (this.#running.has(id)) throw conflict(`plugin "${id}" is already running`);
    this.specs.set(id, spec);
    const dir = spec.mounts.find((m) => m.destination === '/run/docker/plugins')?.source;
    if (dir === undefined) throw new Error('spec without the exec dir mount');
    await this.start(id, path.join(dir, this.#socket));
    stdout.end(`started ${id}\n`);
    stderr.end();
  }

  /** Starts a plugin outside any manager, as if left running by an earlier daemon. */
  async start(id: string, socket: string): Promise<void> {
    await mkdir(path.dirname(socket), { recursive: true });
    const server = createServer((conn) => conn.end());
    if (!this.silent) await new Promise<void>((resolve) => server.listen(socket, resolve));
    this.#running.set(id, { server, socket });
  }

  async restore(id: string, stdout: Writable, stderr: Writable): Promise<boolean> {
    this.calls.push(`restore ${id}`);
    if (!this.#running.has(id)) return false;
    stdout.end();
    stderr.end();
    return true;
  }

  async signal(id: string, signal: number | string): Promise<void> {
    this.calls.push(`signal ${id} ${signal}`);
    if (!this.#running.has(id)) throw notFound(`unknown plugin "${id}"`);
    if (signal === 'SIGTERM' && this.ignoreTerm) return;
    await this.crash(id);
  }

  /** The plugin's process dies: its socket goes away, then the exit is reported. */
  async crash(id: string): Promise<void> {
    const plugin = this.#running.get(id);
    if (plugin === undefined) return;
    this.#running.delete(id);
    await new Promise<void>((resolve) => plugin.server.close(() => resolve()));
    await rm(plugin.socket, { force: true });
    setImmediate(() => void this.exitHandler?.handleExitEvent(id));
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Stops every plugin without reporting anything (end of a test). */
  async dispose(): Promise<void> {
    for (const [id, plugin] of this.#running) {
      this.#running.delete(id);
      plugin.server.close();
    }
  }
}
