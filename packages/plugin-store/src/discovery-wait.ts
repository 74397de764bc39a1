import { watch, type FSWatcher } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface GraceOptions {
  /** How long to keep looking after the first miss; `0` looks once. */
  readonly graceMs: number;
  /** Re-check interval, for what a directory watch cannot see (sub-directories, missing dirs). */
  readonly pollMs: number;
  readonly signal?: AbortSignal | undefined;
}

/**
 * Runs `probe` until it finds something or the grace window ends, probing again as soon as one of
 * `dirs` changes and every `pollMs` besides. A probe that throws (a spec file caught half-written)
 * counts as a miss until the window ends; then its error is the answer. Real time, not an injected
 * clock: the window races real files appearing.
 */
export async function probeWithGrace<T>(
  dirs: readonly string[],
  probe: () => Promise<T | undefined>,
  options: GraceOptions,
): Promise<T | undefined> {
  let failure: { error: unknown } | undefined;
  const attempt = async (): Promise<T | undefined> => {
    try {
      const found = await probe();
      failure = undefined;
      return found;
    } catch (error) {
      failure = { error };
      return undefined;
    }
  };

  let found = await attempt();
  if (found === undefined && options.graceMs > 0) {
    const deadline = performance.now() + options.graceMs;
    const wakeup = new Wakeup();
    const watchers = dirs.flatMap((dir) => watchDir(dir, () => wakeup.fire()));
    try {
      for (let left = options.graceMs; found === undefined && left > 0; left = deadline - performance.now()) {
        await wakeup.wait(Math.min(options.pollMs, left), options.signal);
        found = await attempt();
      }
    } finally {
      for (const watcher of watchers) watcher.close();
    }
  }
  if (found === undefined && failure !== undefined) throw failure.error;
  return found;
}

function watchDir(dir: string, onChange: () => void): FSWatcher[] {
  try {
    const watcher = watch(dir, { persistent: false }, onChange);
    // A watch that breaks only costs latency: the poll still runs.
    watcher.on('error', () => watcher.close());
    return [watcher];
  } catch {
    return [];
  }
}

/** A timer that an event can cut short; an event that comes between waits is not lost. */
class Wakeup {
  #pending = false;
  #wake: (() => void) | undefined;

  fire(): void {
    this.#pending = true;
    this.#wake?.();
  }

  wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#wake = undefined;
        this.#pending = false;
      };
      const done = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
