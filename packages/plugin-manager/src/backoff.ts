/** How a plugin that exits while enabled is restarted. */
export interface RestartPolicy {
  /** First delay after a crash. Default 100 ms. */
  initialDelayMs: number;
  /** Delays double up to this. Default 10 s. */
  maxDelayMs: number;
  /** A plugin that ran at least this long before exiting starts over at the first delay. Default 30 s. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 10_000,
  resetAfterMs: 30_000,
};

/** Restart delays of one plugin: doubling while it keeps failing, reset once it stayed up. */
export class RestartBackoff {
  readonly #policy: RestartPolicy;
  #next: number;

  constructor(policy: RestartPolicy) {
    this.#policy = policy;
    this.#next = policy.initialDelayMs;
  }

  /** The delay before the next attempt; `uptimeMs` is how long the last run lasted, if it ran. */
  next(uptimeMs = 0): number {
    if (uptimeMs >= this.#policy.resetAfterMs) this.#next = this.#policy.initialDelayMs;
    const delay = this.#next;
    this.#next = Math.min(delay * 2, this.#policy.maxDelayMs);
    return delay;
  }

  reset(): void {
    this.#next = this.#policy.initialDelayMs;
  }
}
