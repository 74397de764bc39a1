import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { DATA_ROOT_LOCK_FILE, DataRootLock } from './data-root-lock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('DataRootLock', () => {
  it('is exclusive, names its holder, and is free again once released', async () => {
    const first = DataRootLock.acquire(dir, 4242);
    expect(await readFile(join(dir, DATA_ROOT_LOCK_FILE), 'utf8')).toBe(`${'4242'.padEnd(15)}\n`);
    // flock belongs to the open file: a second open, even in this process, is refused.
    let refused: unknown;
    try {
      DataRootLock.acquire(dir, 4343);
    } catch (err) {
      refused = err;
    }
    expect(kindOf(refused)).toBe('conflict');
    expect((refused as Error).message).toBe(`data-root ${dir} is in use by another berthd (PID 4242)`);
    expect(await readFile(join(dir, DATA_ROOT_LOCK_FILE), 'utf8')).toBe(`${'4242'.padEnd(15)}\n`);

    first.release();
    first.release();
    const second = DataRootLock.acquire(dir, 4343);
    expect(await readFile(join(dir, DATA_ROOT_LOCK_FILE), 'utf8')).toBe(`${'4343'.padEnd(15)}\n`);
    second.release();
  });
});
