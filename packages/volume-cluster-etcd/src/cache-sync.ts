import type { Logger } from '@berth/logger';
import type { IWatchResponse, Watcher } from 'etcd3';
import type { EtcdConnection } from './etcd-connection.js';
import type { ClusterKeys } from './keys.js';
import type { GlobalVolumeEvent, VolumeCache } from './volume-cache.js';

export interface CacheSyncOptions {
  connection: EtcdConnection;
  keys: ClusterKeys;
  cache: VolumeCache;
  logger: Logger;
  /** Volumes that appeared or went, in the order seen. */
  onEvents: (events: readonly GlobalVolumeEvent[]) => void;
}

const MAX_RETRY_MS = 2_000;

/**
 * Keeps the volume cache in step with the cluster: a snapshot of every key under the prefix, then a
 * watch from the snapshot's revision. When the watch stream fails (a member died, the cluster was
 * out of reach, the revision was compacted) the cache is loaded afresh and watched again: etcd3's
 * own resumption is not relied on (it can skip events after a reconnection, microsoft/etcd3#153).
 * The changes found by a fresh load are reported as events, so every host converges by itself.
 */
export class CacheSync {
  readonly #o: CacheSyncOptions;
  #problem: string | undefined = 'not loaded yet';
  #closed = false;
  #stop: (() => void) | undefined;
  #running: Promise<void> | undefined;
  #live = new Set<() => void>();

  constructor(options: CacheSyncOptions) {
    this.#o = options;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /** Why the cache may be stale (`undefined` while the watch runs). */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Resolves once the cache is watched, or after `ms`. */
  live(ms: number): Promise<void> {
    if (this.#problem === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#live.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#live.add(done);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stop?.();
    await this.#running;
  }

  async #run(): Promise<void> {
    const { connection, logger } = this.#o;
    for (let delay = 100; !this.#closed; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      let watcher: Watcher | undefined;
      try {
        const ended = await this.#loadAndWatch((w) => (watcher = w));
        delay = 100;
        if (this.#closed) break;
        const problem = `the watch of etcd stopped: ${ended}`;
        logger.warn('Lost the watch of the cluster store; loading it again', { store: connection.display, error: String(ended) });
        this.#problem = problem;
      } catch (err) {
        const problem = connection.failed(err).message.replace(`cluster store ${connection.display}: `, '');
        if (problem !== this.#problem) logger.warn('Could not load the cluster store; retrying', { store: connection.display, error: problem });
        this.#problem = problem;
      } finally {
        await this.#cancel(watcher);
      }
      if (!this.#closed) await new Promise<void>((resolve) => this.#pause(delay, resolve));
    }
  }

  /** Loads every key, then watches from there; resolves with why the watch ended. */
  async #loadAndWatch(keep: (watcher: Watcher) => void): Promise<string> {
    const { connection, keys, cache, onEvents } = this.#o;
    const root = keys.root;
    const snapshot = await connection.call((options) => connection.client.kv.range(root, options));
    const revision = BigInt(snapshot.header.revision);
    onEvents(cache.load(snapshot.kvs, revision));

    const watcher = connection.client
      .watch()
      .inRange({ start: root.key, end: root.range_end })
      .startRevision((revision + 1n).toString())
      .watcher();
    keep(watcher);
    const ended = new Promise<string>((resolve) => {
      watcher.once('disconnected', (err: Error) => resolve(err.message));
      watcher.once('error', (err: Error) => resolve(err.message));
      this.#stop = () => resolve('closed');
    });
    watcher.on('data', (res: IWatchResponse) => {
      connection.contact();
      onEvents(cache.apply(res.events, BigInt(res.header.revision)));
    });
    const connected = new Promise<void>((resolve) => watcher.once('connected', () => resolve()));
    const first = await connection.call(() => Promise.race([connected.then(() => undefined), ended]));
    if (first !== undefined) return first;
    this.#problem = undefined;
    for (const notify of [...this.#live]) notify();
    return ended;
  }

  async #cancel(watcher: Watcher | undefined): Promise<void> {
    if (watcher === undefined) return;
    // Cancelling waits for etcd's answer while the stream is up: bounded, the stream may be dead.
    await Promise.race([watcher.cancel().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1_000))]);
  }

  #pause(ms: number, resolve: () => void): void {
    const timer = setTimeout(resolve, ms);
    this.#stop = () => {
      clearTimeout(timer);
      resolve();
    };
  }
}
