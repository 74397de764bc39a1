/** One run of a `GroupSync`, as its observer is told of it. */
export interface GroupSyncRun {
  /** How long the flush took. */
  readonly durationMs: number;
  /** The `sync()` calls it served (the batch a group commit shared). */
  readonly callers: number;
  readonly failed: boolean;
}

export interface GroupSyncOptions {
  /** Told of every run once it ends (metrics). */
  onRun?: ((run: GroupSyncRun) => void) | undefined;
}

/**
 * Shares one run of an expensive flush (an fsync) among concurrent callers. `sync()` resolves after
 * a run that *started* after the call, so everything the caller did before calling is covered; callers that arrive while one
 * runs share the next one (at most one runs at a time, and at most one more is queued).
 */
export class GroupSync {
  readonly #fn: () => Promise<void>;
  readonly #onRun: ((run: GroupSyncRun) => void) | undefined;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #nextCallers = 0;
  #runs = 0;

  constructor(fn: () => Promise<void>, options: GroupSyncOptions = {}) {
    this.#fn = fn;
    this.#onRun = options.onRun;
  }

  /** Runs started so far; for tests and metrics. */
  get runs(): number {
    return this.#runs;
  }

  sync(): Promise<void> {
    if (this.#running === undefined) return this.#start(1);
    this.#nextCallers++;
    const after = (): Promise<void> => this.#start(this.#nextCallers);
    this.#next ??= this.#running.then(after, after);
    return this.#next;
  }

  /** Resolves once no run is going or queued (e.g. before closing what the runs flush). */
  async idle(): Promise<void> {
    while (this.#running !== undefined || this.#next !== undefined) {
      await (this.#next ?? this.#running)?.catch(() => undefined);
    }
  }

  #start(callers: number): Promise<void> {
    this.#next = undefined;
    this.#nextCallers = 0;
    this.#runs++;
    const started = performance.now();
    let run: Promise<void>;
    try {
      run = this.#fn();
    } catch (err) {
      run = Promise.reject(err);
    }
    const settled = (failed: boolean): void => {
      if (this.#running === tracked) this.#running = undefined;
      this.#onRun?.({ durationMs: performance.now() - started, callers, failed });
    };
    const tracked = run.then(
      () => settled(false),
      () => settled(true),
    );
    this.#running = tracked;
    return run;
  }
}
