import type { Dirent, Stats } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { unavailable } from '@berth/errdefs';

/** What the walk needs of `node:fs`; passed in, because the walk also runs in a worker. */
export interface SyncFs {
  lstatSync(path: string, options: { throwIfNoEntry: false }): Stats | undefined;
  readdirSync(path: string, options: { withFileTypes: true }): Dirent[];
}

/**
 * Bytes used by the files under `dir`, as moby's `directory.Size`: directories themselves are not
 * counted, symlinks count their own size, hard links count once, and entries that vanish during the
 * walk are skipped. A missing `dir` is an error. Synchronous, iterative (no depth limit); it runs in
 * the sizer's worker threads, whose source it is part of: it uses nothing from outside its body.
 */
export function directorySizeSync(fs: SyncFs, dir: string): number {
  const seen = new Set<string>();
  let size = 0;
  const count = (stats: Stats): void => {
    // Only a file with several links can be met twice.
    if (stats.nlink > 1) {
      const inode = `${stats.dev}:${stats.ino}`;
      if (seen.has(inode)) return;
      seen.add(inode);
    }
    size += stats.size;
  };
  const root = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (root === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, lstat '${dir}'`), { code: 'ENOENT' });
  if (!root.isDirectory()) {
    count(root);
    return size;
  }
  const pending = [dir];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    let entries: Dirent[];
    try {
      entries = fs.readdirSync(path, { withFileTypes: true });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (path !== dir && (code === 'ENOENT' || code === 'ENOTDIR')) continue;
      throw err;
    }
    for (const entry of entries) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory()) {
        pending.push(child);
        continue;
      }
      const stats = fs.lstatSync(child, { throwIfNoEntry: false });
      if (stats === undefined) continue;
      if (stats.isDirectory()) pending.push(child);
      else count(stats);
    }
  }
  return size;
}

/** The worker thread's program: sizes each directory of a batch, answering a size or an error text. */
function sizerWorker(parentPort: import('node:worker_threads').MessagePort, fs: SyncFs, walk: typeof directorySizeSync): void {
  parentPort.on('message', (dirs: string[]) => {
    parentPort.postMessage(
      dirs.map((dir) => {
        try {
          return walk(fs, dir);
        } catch (err) {
          return err instanceof Error ? err.message : String(err);
        }
      }),
    );
  });
}

// Evaluated as a script in the worker: no file to find next to a bundle, no TypeScript to load in
// tests. The modules are required in the text itself, not in a function's body: a bundler renames
// `require` in code it bundles (to a helper the worker does not have), never inside a string.
const WORKER_SOURCE =
  `const { parentPort } = require('node:worker_threads');\n` +
  `(${sizerWorker.toString()})(parentPort, require('node:fs'), ${directorySizeSync.toString()});`;

/** Directories handed to a worker at once: small enough that an abort or a new caller waits little. */
const BATCH = 32;

export type SizeResult = { readonly size: number } | { readonly error: string };

export interface DirectorySizerOptions {
  /** Worker threads walking at once (default 1): the share of the machine sizing may take. */
  concurrency?: number | undefined;
  /** How long a worker with nothing to do is kept before it ends (default 5 s). */
  idleMs?: number | undefined;
}

interface Job {
  readonly dirs: readonly string[];
  readonly results: SizeResult[];
  next: number;
  inFlight: number;
  readonly resolve: (results: SizeResult[]) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

interface Slot {
  readonly worker: Worker;
  batch: { job: Job; start: number; count: number } | undefined;
  idle: NodeJS.Timeout | undefined;
}

/**
 * Sizes directories off the event loop: `directorySizeSync` runs in up to `concurrency` worker
 * threads, started on demand and ended when idle, each walking one batch of directories at a time.
 * The event loop only hands out batches and collects sizes, so requests keep being served while
 * thousands of volumes are walked. An aborted call ends the walk of its batch (the worker is
 * stopped); a worker that dies leaves its batch's directories as errors.
 */
export class DirectorySizer {
  readonly #concurrency: number;
  readonly #idleMs: number;
  readonly #jobs: Job[] = [];
  readonly #slots = new Set<Slot>();
  #closed = false;

  constructor(options: DirectorySizerOptions = {}) {
    this.#concurrency = Math.max(1, options.concurrency ?? 1);
    this.#idleMs = options.idleMs ?? 5_000;
  }

  /** The size of each directory, in order; a directory that cannot be walked gives its error text. */
  size(dirs: readonly string[], options: { signal?: AbortSignal | undefined } = {}): Promise<SizeResult[]> {
    const { signal } = options;
    if (this.#closed) return Promise.reject(unavailable('directory sizer is closed'));
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    if (dirs.length === 0) return Promise.resolve([]);
    return new Promise<SizeResult[]>((resolve, reject) => {
      const job: Job = {
        dirs,
        results: new Array<SizeResult>(dirs.length),
        next: 0,
        inFlight: 0,
        resolve: (results) => {
          signal?.removeEventListener('abort', job.onAbort);
          resolve(results);
        },
        reject: (reason) => {
          signal?.removeEventListener('abort', job.onAbort);
          reject(reason);
        },
        signal,
        onAbort: () => this.#abort(job),
      };
      signal?.addEventListener('abort', job.onAbort, { once: true });
      this.#jobs.push(job);
      this.#pump();
    });
  }

  /** Ends every worker; calls in progress and later ones fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#jobs.splice(0)) job.reject(unavailable('directory sizer is closed'));
    await Promise.all([...this.#slots].map((slot) => this.#stop(slot)));
  }

  #pump(): void {
    for (;;) {
      const job = this.#jobs.find((j) => j.next < j.dirs.length);
      if (job === undefined) break;
      const slot = [...this.#slots].find((s) => s.batch === undefined) ?? this.#spawn();
      if (slot === undefined) break;
      const count = Math.min(BATCH, job.dirs.length - job.next);
      slot.batch = { job, start: job.next, count };
      job.next += count;
      job.inFlight++;
      clearTimeout(slot.idle);
      slot.worker.ref();
      slot.worker.postMessage(job.dirs.slice(slot.batch.start, slot.batch.start + count));
    }
  }

  #spawn(): Slot | undefined {
    if (this.#slots.size >= this.#concurrency) return undefined;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'berth-directory-sizer' });
    const slot: Slot = { worker, batch: undefined, idle: undefined };
    worker.on('message', (sizes: Array<number | string>) => this.#done(slot, sizes));
    worker.on('error', (err) => this.#lost(slot, err.message));
    worker.on('exit', () => this.#lost(slot, 'directory sizer worker exited'));
    this.#slots.add(slot);
    return slot;
  }

  #done(slot: Slot, sizes: Array<number | string>): void {
    const batch = slot.batch;
    slot.batch = undefined;
    if (batch !== undefined) {
      sizes.forEach((s, i) => (batch.job.results[batch.start + i] = typeof s === 'number' ? { size: s } : { error: s }));
      this.#settle(batch.job);
    }
    this.#pump();
    if (slot.batch === undefined) this.#rest(slot);
  }

  /** A worker that failed or exited: its batch's directories could not be sized. */
  #lost(slot: Slot, message: string): void {
    if (!this.#slots.delete(slot)) return;
    clearTimeout(slot.idle);
    const batch = slot.batch;
    slot.batch = undefined;
    if (batch !== undefined) {
      for (let i = 0; i < batch.count; i++) batch.job.results[batch.start + i] = { error: message };
      this.#settle(batch.job);
    }
    if (!this.#closed) this.#pump();
  }

  #settle(job: Job): void {
    job.inFlight--;
    if (job.next < job.dirs.length || job.inFlight > 0) return;
    const index = this.#jobs.indexOf(job);
    if (index < 0) return;
    this.#jobs.splice(index, 1);
    job.resolve(job.results);
  }

  #abort(job: Job): void {
    const index = this.#jobs.indexOf(job);
    if (index < 0) return;
    this.#jobs.splice(index, 1);
    job.reject(job.signal?.reason);
    // Its batches in flight are of no use to anyone: stop walking them.
    for (const slot of this.#slots) if (slot.batch?.job === job) void this.#stop(slot);
    this.#pump();
  }

  /** An idle worker does not keep the process alive, and ends after `idleMs`. */
  #rest(slot: Slot): void {
    slot.worker.unref();
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => void this.#stop(slot), this.#idleMs);
    slot.idle.unref();
  }

  async #stop(slot: Slot): Promise<void> {
    this.#slots.delete(slot);
    clearTimeout(slot.idle);
    slot.batch = undefined;
    await slot.worker.terminate();
  }
}
