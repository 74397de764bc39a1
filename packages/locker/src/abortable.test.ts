import { describe, expect, it } from 'vitest';
import { abortable } from './index.js';

describe('abortable', () => {
  it('settles with the promise, or with the signal’s reason once it aborts', async () => {
    expect(await abortable(Promise.resolve(1), undefined)).toBe(1);
    expect(await abortable(Promise.resolve(2), new AbortController().signal)).toBe(2);
    await expect(abortable(Promise.reject(new Error('failed')), new AbortController().signal)).rejects.toThrow('failed');
    await expect(abortable(Promise.resolve(3), AbortSignal.abort(new Error('already gone')))).rejects.toThrow('already gone');
    const controller = new AbortController();
    let finished = false;
    const work = new Promise((resolve) => setTimeout(resolve, 50)).then(() => (finished = true));
    const waiting = abortable(work, controller.signal);
    controller.abort(new Error('left'));
    await expect(waiting).rejects.toThrow('left');
    await work;
    expect(finished).toBe(true);
  });
});
