import { describe, expect, it } from 'vitest';
import { GroupSync } from './index.js';

describe('GroupSync', () => {
  it('runs one sync at a time; callers arriving meanwhile share the next one, which starts after', async () => {
    const started: Array<() => void> = [];
    const group = new GroupSync(() => new Promise<void>((resolve) => started.push(resolve)));
    const order: string[] = [];
    const first = group.sync().then(() => order.push('first'));
    expect(started).toHaveLength(1);
    const second = group.sync().then(() => order.push('second'));
    const third = group.sync().then(() => order.push('third'));
    expect(started).toHaveLength(1); // no second sync while one runs
    started[0]!();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['first']); // the others wait for a sync that started after they called
    expect(started).toHaveLength(2);
    started[1]!();
    await Promise.all([second, third]);
    expect(order).toEqual(['first', 'second', 'third']);
    expect(group.runs).toBe(2);
    // Idle again: the next caller starts one at once.
    const fourth = group.sync();
    expect(started).toHaveLength(3);
    started[2]!();
    await fourth;
  });

  it('tells its observer of each run: how long it took and how many callers it served', async () => {
    const runs: Array<{ callers: number; failed: boolean; durationMs: number }> = [];
    let release: (() => void) | undefined;
    let fail = false;
    const group = new GroupSync(
      () =>
        new Promise<void>((resolve, reject) => {
          release = () => (fail ? reject(new Error('EIO')) : resolve());
        }),
      { onRun: (run) => runs.push(run) },
    );
    const first = group.sync();
    const shared = [group.sync(), group.sync(), group.sync()];
    release?.();
    await first;
    await new Promise((r) => setImmediate(r));
    fail = true;
    release?.();
    await Promise.allSettled(shared);
    expect(runs.map(({ callers, failed }) => ({ callers, failed }))).toEqual([
      { callers: 1, failed: false },
      { callers: 3, failed: true },
    ]);
    expect(runs.every((r) => r.durationMs >= 0)).toBe(true);
  });

  it('hands a failed sync to the callers that shared it, and carries on', async () => {
    let fail = true;
    const group = new GroupSync(async () => {
      if (fail) throw new Error('EIO');
    });
    await expect(group.sync()).rejects.toThrow('EIO');
    fail = false;
    await group.sync();
    const thrown = new GroupSync(() => {
      throw new Error('sync threw');
    });
    await expect(thrown.sync()).rejects.toThrow('sync threw');
  });
});
