/** moby's retry schedule for transport errors: 1 s doubling, capped at 30 s, within a 30 s budget. */
export interface RetryPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  /** A retry is not attempted when the time spent plus the next wait would reach this. */
  readonly budgetMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { initialMs: 1_000, maxMs: 30_000, budgetMs: 30_000 };

/** The wait before retry number `retries + 1` (moby's `backoff`). */
export function backoffMs(retries: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY): number {
  let wait = policy.initialMs;
  for (let left = retries; wait < policy.maxMs && left > 0; left--) wait *= 2;
  return Math.min(wait, policy.maxMs);
}

/**
 * moby's `abort`: give up when waiting `nextMs` more would reach the budget. With the defaults the
 * waits are 1+2+4+8 s, so a dead address is given up on after about 15 s, not 30 s.
 */
export function shouldAbortRetry(
  elapsedMs: number,
  nextMs: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
): boolean {
  return elapsedMs + nextMs >= policy.budgetMs;
}
