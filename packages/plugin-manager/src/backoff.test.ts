import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART_POLICY, RestartBackoff } from './backoff.js';

describe('RestartBackoff', () => {
  it('doubles from 100 ms to 10 s and starts over after a run of 30 s', () => {
    const b = new RestartBackoff(DEFAULT_RESTART_POLICY);
    const delays = Array.from({ length: 9 }, () => b.next(5));
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    expect(b.next(30_000)).toBe(100);
    expect(b.next(0)).toBe(200);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
