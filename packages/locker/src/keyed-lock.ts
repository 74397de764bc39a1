export interface LockHandle extends Disposable {
  release(): void;
}

interface Entry {
  held: boolean;
  waiters: Array<() => void>;
}

/**
 * Per-key FIFO mutexes with moby/locker semantics: operations on one key run one at a time, other
 * keys are never blocked, and a key's entry is dropped once nobody holds or waits for it.
 */
export class KeyedLock {
  readonly #entries = new Map<string, Entry>();

  /** Waits for the key; rejects with the signal's reason if it aborts first (nothing is held then). */
  async acquire(key: string, options?: { signal?: AbortSignal | undefined }): Promise<LockHandle> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { held: false, waiters: [] };
      this.#entries.set(key, entry);
    }
    if (entry.held) {
      const e = entry;
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = e.waiters.indexOf(wake);
          if (i >= 0) e.waiters.splice(i, 1);
          this.#dropIfIdle(key, e);
          reject(signal?.reason);
        };
        e.waiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    entry.held = true;
    return this.#handle(key, entry);
  }

  /** Runs `fn` while holding the key. */
  async with<T>(key: string, fn: () => Promise<T> | T, options?: { signal?: AbortSignal | undefined }): Promise<T> {
    const handle = await this.acquire(key, options);
    try {
      return await fn();
    } finally {
      handle.release();
    }
  }

  /**
   * Whether nobody holds or waits for `key`: a caller that only reads, synchronously, what the
   * key's holders change can then skip taking it (it would get it at once and give it back).
   */
  isFree(key: string): boolean {
    return !this.#entries.has(key);
  }

  /** Number of keys held or waited for; for tests and metrics. */
  get size(): number {
    return this.#entries.size;
  }

  #handle(key: string, entry: Entry): LockHandle {
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const next = entry.waiters.shift();
      if (next !== undefined) {
        // Ownership passes straight to the next waiter, so nobody can barge in between.
        next();
        return;
      }
      entry.held = false;
      this.#dropIfIdle(key, entry);
    };
    return { release, [Symbol.dispose]: release };
  }

  #dropIfIdle(key: string, entry: Entry): void {
    if (!entry.held && entry.waiters.length === 0 && this.#entries.get(key) === entry) this.#entries.delete(key);
  }
}
