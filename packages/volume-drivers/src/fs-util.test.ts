import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../test/support.js';
import { fsyncDir } from '@berth/host';
import { createFile } from './fs-util.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await removeTempDir(dir);
});


describe('createFile', () => {
  it('creates a new file with exactly the mode, whatever the umask, and syncs it', async () => {
    const old = process.umask(0o077);
    try {
      const file = createFile(join(dir, 'opts.json'), '{"a":1}', 0o640);
      await file.sync();
      await fsyncDir(dir);
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, 'opts.json'))).mode & 0o777).toBe(0o640);
    expect(await readFile(join(dir, 'opts.json'), 'utf8')).toBe('{"a":1}');
    expect(() => createFile(join(dir, 'opts.json'), 'x', 0o600)).toThrow(/EEXIST/);
  });
});
