import type { Writable } from 'node:stream';
import { BerthError, notFound } from '@berth/errdefs';
import type { Logger } from '@berth/logger';
import type { ContainerdExecutor, ExitHandler, OperationOptions } from './executor.js';

export interface LazyContainerdExecutorOptions {
  /** The containerd to use, asked on first need (berthd's own containerd starts then). */
  address: (options: { signal?: AbortSignal | undefined }) => Promise<string>;
  namespace: string;
  /** The plugin manager's exec root: each plugin's FIFOs sit beside its socket. */
  stateDir: string;
  /** `runc --root`. */
  runtimeRoot: string;
  exitHandler: ExitHandler;
  logger: Logger;
}

/**
 * A `ContainerdExecutor` connected only when a plugin is first started or re-attached: a daemon
 * without enabled plugins never loads gRPC or starts (or needs) containerd, and one without
 * containerd serves everything else, failing only plugin starts with the supervisor's clear error.
 */
export class LazyContainerdExecutor {
  readonly #options: LazyContainerdExecutorOptions;
  #executor: Promise<ContainerdExecutor> | undefined;
  #closed = false;

  constructor(options: LazyContainerdExecutorOptions) {
    this.#options = options;
  }

  /** Whether containerd has been reached (for tests and logs). */
  get connected(): boolean {
    return this.#executor !== undefined;
  }

  async create(id: string, spec: object, stdout: Writable, stderr: Writable, options?: OperationOptions): Promise<void> {
    const executor = await this.#connect(options?.signal, [stdout, stderr]);
    await executor.create(id, spec, stdout, stderr, options);
  }

  async restore(id: string, stdout: Writable, stderr: Writable, options?: OperationOptions): Promise<boolean> {
    const executor = await this.#connect(options?.signal, [stdout, stderr]);
    return executor.restore(id, stdout, stderr, options);
  }

  async signal(id: string, signal: number | string, options?: OperationOptions): Promise<void> {
    // Never connected: nothing was started through this executor, so nothing runs to be signalled.
    if (this.#executor === undefined) throw notFound(`unknown plugin "${id}"`);
    await (await this.#executor).signal(id, signal, options);
  }

  /** Stops following plugins (they keep running); a connection still being made is closed once made. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#executor;
    if (pending === undefined) return;
    const executor = await pending.catch(() => undefined);
    await executor?.close();
  }

  #connect(signal: AbortSignal | undefined, streams: readonly Writable[]): Promise<ContainerdExecutor> {
    if (this.#closed) return this.#fail(new BerthError('unavailable', 'containerd plugin executor is closed'), streams);
    this.#executor ??= (async () => {
      const address = await this.#options.address({ signal });
      const { ContainerdExecutor } = await import('./executor.js');
      return new ContainerdExecutor({
        address,
        namespace: this.#options.namespace,
        stateDir: this.#options.stateDir,
        runtimeRoot: this.#options.runtimeRoot,
        exitHandler: this.#options.exitHandler,
        logger: this.#options.logger,
      });
    })();
    const attempt = this.#executor;
    return attempt.catch((err: unknown) => {
      // The next start asks again (containerd may have been installed, or come back, meanwhile).
      if (this.#executor === attempt) this.#executor = undefined;
      return this.#fail(err, streams);
    });
  }

  /** The executor ends the output streams it is given; so does a start that never reached it. */
  #fail(err: unknown, streams: readonly Writable[]): Promise<never> {
    for (const stream of streams) stream.end();
    return Promise.reject(err);
  }
}
