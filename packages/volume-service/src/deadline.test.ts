import { kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { withDeadline } from './deadline.js';

describe('withDeadline', () => {
  it('passes results and errors through', async () => {
    await expect(withDeadline(1000, 'late', undefined, async () => 42)).resolves.toBe(42);
    await expect(withDeadline(1000, 'late', undefined, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });

  it('settles at the deadline even when the work ignores its signal', async () => {
    let seen: AbortSignal | undefined;
    const err = await withDeadline(20, 'driver did not answer within 20ms', undefined, (signal) => {
      seen = signal;
      return new Promise<never>(() => undefined);
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('driver did not answer within 20ms');
    expect(kindOf(err)).toBe('deadline-exceeded');
    expect(seen?.aborted).toBe(true);
  });

  it("follows the caller's signal", async () => {
    const controller = new AbortController();
    const pending = withDeadline(10_000, 'late', controller.signal, () => new Promise<never>(() => undefined));
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
    await expect(withDeadline(10, 'late', controller.signal, async () => 1)).rejects.toThrow('caller gave up');
  });
});
