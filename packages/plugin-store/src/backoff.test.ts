import { describe, expect, it } from 'vitest';
import { backoffMs, DEFAULT_RETRY_POLICY, shouldAbortRetry } from './index.js';

describe('back-off (moby TestBackoff, TestAbortRetry)', () => {
  it('doubles from 1 s and caps at 30 s', () => {
    const cases: Array<[number, number]> = [
      [0, 1],
      [1, 2],
      [2, 4],
      [4, 16],
      [6, 30],
      [10, 30],
    ];
    for (const [retries, seconds] of cases) expect(backoffMs(retries)).toBe(seconds * 1000);
  });

  it('gives up once elapsed time plus the next wait reaches the 30 s budget', () => {
    const cases: Array<[number, boolean]> = [
      [1, false],
      [2, false],
      [10, false],
      [30, true],
      [40, true],
    ];
    for (const [seconds, abort] of cases) expect(shouldAbortRetry(0, seconds * 1000)).toBe(abort);
    expect(shouldAbortRetry(15_000, 16_000)).toBe(true);
    expect(shouldAbortRetry(7_000, 8_000)).toBe(false);
  });

  it('follows a custom policy', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, initialMs: 10, maxMs: 50 };
    expect([0, 1, 2, 3].map((n) => backoffMs(n, policy))).toEqual([10, 20, 40, 50]);
  });
});
