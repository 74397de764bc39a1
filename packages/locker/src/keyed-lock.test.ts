import { describe, expect, it } from 'vitest';
import { KeyedLock } from './index.js';

describe('KeyedLock', () => {
  it('serialises one key in FIFO order and drops idle entries', async () => {
    const lock = new KeyedLock();
    const order: number[] = [];
    const first = await lock.acquire('a');
    const waiting = [1, 2, 3].map((n) => lock.with('a', () => void order.push(n)));
    expect(lock.size).toBe(1);
    first.release();
    await Promise.all(waiting);
    expect(order).toEqual([1, 2, 3]);
    expect(lock.size).toBe(0);
  });

  it('never blocks other keys', async () => {
    const lock = new KeyedLock();
    const held = await lock.acquire('slow');
    let ran = false;
    await lock.with('fast', () => {
      ran = true;
    });
    expect(ran).toBe(true);
    held.release();
  });

  it('gives up waiting when the signal aborts and leaves the lock usable', async () => {
    const lock = new KeyedLock();
    const held = await lock.acquire('a');
    const controller = new AbortController();
    const waiter = lock.acquire('a', { signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(waiter).rejects.toThrow('stop');
    held.release();
    expect(lock.size).toBe(0);
    (await lock.acquire('a')).release();
  });

  it('ignores a second release', async () => {
    const lock = new KeyedLock();
    const h = await lock.acquire('a');
    h.release();
    h.release();
    const h2 = await lock.acquire('a');
    const waiter = lock.acquire('a');
    h.release();
    let got = false;
    void waiter.then(() => (got = true));
    await new Promise((r) => setTimeout(r, 5));
    expect(got).toBe(false);
    h2.release();
    (await waiter).release();
  });

  it('says whether a key is free: nobody holds it and nobody waits', async () => {
    const lock = new KeyedLock();
    expect(lock.isFree('a')).toBe(true);
    const held = await lock.acquire('a');
    expect(lock.isFree('a')).toBe(false);
    expect(lock.isFree('b')).toBe(true);
    const waiter = lock.acquire('a');
    held.release();
    expect(lock.isFree('a')).toBe(false);
    (await waiter).release();
    expect(lock.isFree('a')).toBe(true);
  });
});
