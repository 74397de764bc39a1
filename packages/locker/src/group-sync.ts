/**
 * Shares one run of an expensive flush (an fsync) among concurrent callers. `sync()` resolves after
 * a run that *started* after the call, so everything the caller did before calling is covered; callers that arrive while one
 * runs share the next one (at most one runs at a time, and at most one more is queued).
 */
export class GroupSync {
  readonly #fn: () => Promise<void>;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #runs = 0;

  constructor(fn: () => Promise<void>) {
    this.#fn = fn;
  }

  /** Runs started so far; for tests and metrics. */
  get runs(): number {
    return this.#runs;
  }

  sync(): Promise<void> {
    if (this.#running === undefined) return this.#start();
    const after = (): Promise<void> => this.#start();
    this.#next ??= this.#running.then(after, after);
    return this.#next;
  }

  /** Resolves once no run is going or queued (e.g. before closing what the runs flush). */
  async idle(): Promise<void> {
    while (this.#running !== undefined || this.#next !== undefined) {
      await (this.#next ?? this.#running)?.catch(() => undefined);
    }
  }

  #start(): Promise<void> {
    this.#next = undefined;
    this.#runs++;
    let run: Promise<void>;
    try {
      run = this.#fn();
    } catch (err) {
      run = Promise.reject(err);
    }
    const settled = (): void => {
      if (this.#running === tracked) this.#running = undefined;
    };
    const tracked = run.then(settled, settled);
    this.#running = tracked;
    return run;
  }
}
