import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { BerthError } from '@berth/errdefs';
import { processAlive } from '@berth/host';
import type { Logger } from '@berth/logger';
import type { ContainerdProcess } from './containerd-process.js';

const run = promisify(execFile);

export const CONTAINERD_MISSING =
  'containerd is not available: install containerd and runc (Debian: apt-get install containerd runc) ' +
  'or start berthd with --containerd <socket>';

export interface ContainerdSupervisorOptions {
  /** A containerd someone else runs (`--containerd`); berthd then never starts its own. */
  address?: string | undefined;
  /** Where berthd's own containerd keeps its config, root, state and socket (`<exec-root>/containerd`). */
  dir: string;
  binary?: string | undefined;
  logger: Logger;
  /** First restart delay after the managed containerd died; doubles up to 10 s. */
  restartDelayMs?: number | undefined;
}

/**
 * The containerd plugins run on: the one given (berthd's `--containerd`), or one of its own, which
 * it starts on first use (so that a daemon without managed plugins never pays for one), adopts if
 * an earlier supervisor on the same directory left it running, restarts when it dies, and stops on
 * close. gRPC and containerd's process code are loaded only then.
 */
export class ContainerdSupervisor {
  readonly #options: ContainerdSupervisorOptions;
  readonly #pidfile: string;
  #starting: Promise<string> | undefined;
  #process: ContainerdProcess | undefined;
  #adoptedPid: number | undefined;
  #watch: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ContainerdSupervisorOptions) {
    this.#options = options;
    this.#pidfile = join(options.dir, 'containerd.pid');
  }

  /** Whether berthd runs its own containerd (rather than using `--containerd`). */
  get managed(): boolean {
    return this.#options.address === undefined;
  }

  /** The socket of a containerd that answers, starting berthd's own the first time. */
  address(options: { signal?: AbortSignal | undefined } = {}): Promise<string> {
    if (this.#options.address !== undefined) return Promise.resolve(this.#options.address);
    if (this.#closed) return Promise.reject(new BerthError('unavailable', 'the daemon is shutting down'));
    this.#starting ??= this.#startOrAdopt(options.signal).catch((err: unknown) => {
      this.#starting = undefined;
      throw err;
    });
    return this.#starting;
  }

  /**
   * Stops berthd's own containerd. With `keepRunning` (live-restore) it is left running for the
   * next berthd to adopt, like the plugins it runs.
   */
  async close(options: { keepRunning?: boolean } = {}): Promise<void> {
    this.#closed = true;
    if (this.#watch !== undefined) clearInterval(this.#watch);
    await this.#starting?.catch(() => undefined);
    if (options.keepRunning === true) return;
    if (this.#process !== undefined) {
      await this.#process.stop();
      await rm(this.#pidfile, { force: true });
    } else if (this.#adoptedPid !== undefined) {
      signalQuietly(this.#adoptedPid, 'SIGTERM');
      await rm(this.#pidfile, { force: true });
    }
  }

  async #startOrAdopt(signal: AbortSignal | undefined): Promise<string> {
    const { containerdPaths } = await import('./containerd-process.js');
    const { address } = containerdPaths(this.#options.dir);
    const adopted = await this.#adopt(address, signal);
    if (adopted) return address;
    await this.#start(signal);
    return address;
  }

  /** A containerd an earlier berthd started on this directory and that still answers. */
  async #adopt(address: string, signal: AbortSignal | undefined): Promise<boolean> {
    const pid = Number.parseInt(await readFile(this.#pidfile, 'utf8').catch(() => ''), 10);
    if (!processAlive(pid)) return false;
    const { ContainerdClient } = await import('./client.js');
    const client = new ContainerdClient({ address, timeoutMs: 2_000 });
    try {
      await client.version({ signal });
    } catch {
      return false;
    } finally {
      client.close();
    }
    this.#adoptedPid = pid;
    this.#options.logger.info('using the containerd an earlier berthd started', { pid, address });
    // Not our child: notice its death by polling, then start a new one.
    this.#watch = setInterval(() => {
      if (this.#closed || processAlive(pid)) return;
      clearInterval(this.#watch);
      this.#adoptedPid = undefined;
      this.#restartAfterDeath();
    }, 1_000);
    this.#watch.unref();
    return true;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    const binary = this.#options.binary ?? 'containerd';
    if (!(await onPath(binary))) throw new BerthError('unavailable', CONTAINERD_MISSING);
    const { startContainerd } = await import('./containerd-process.js');
    const child = await startContainerd({ dir: this.#options.dir, binary, signal, logger: this.#options.logger });
    this.#process = child;
    await writeFile(this.#pidfile, String(child.pid), { mode: 0o600 });
    void child.exited.then((exit) => {
      if (this.#closed || this.#process !== child) return;
      this.#options.logger.warn('containerd exited; restarting it', { code: exit.code, signal: exit.signal });
      this.#process = undefined;
      this.#restartAfterDeath();
    });
  }

  #restartAfterDeath(): void {
    this.#starting = (async () => {
      const { address } = (await import('./containerd-process.js')).containerdPaths(this.#options.dir);
      let delay = this.#options.restartDelayMs ?? 200;
      for (;;) {
        if (this.#closed) throw new BerthError('unavailable', 'the daemon is shutting down');
        try {
          await this.#start(undefined);
          return address;
        } catch (err) {
          this.#options.logger.error('cannot restart containerd', { error: err, retryInMs: delay });
          await sleep(delay);
          delay = Math.min(delay * 2, 10_000);
        }
      }
    })();
    this.#starting.catch(() => undefined);
  }
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

async function onPath(binary: string): Promise<boolean> {
  if (binary.includes('/')) return run('test', ['-x', binary]).then(() => true, () => false);
  return run('sh', ['-c', 'command -v "$1"', 'sh', binary]).then(() => true, () => false);
}
