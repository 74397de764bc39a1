import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsyncDir } from './fsync-dir.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-host-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

describe('fsyncDir', () => {
  it('syncs a real directory and leaves no descriptor open', async () => {
    await writeFile(join(dir, 'entry'), 'x');
    const before = await openFds();
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
    expect(await openFds()).toBe(before);
  });

  it('refuses a path that is not a directory instead of syncing a file', async () => {
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    await expect(fsyncDir(file)).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('passes on a missing directory as ENOENT', async () => {
    const before = await openFds();
    await expect(fsyncDir(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await openFds()).toBe(before);
  });
});
