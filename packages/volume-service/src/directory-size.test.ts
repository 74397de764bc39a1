import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../test/fakes.js';
import { directorySize } from './directory-size.js';

describe('directorySize', () => {
  it('sums files recursively, counts hard links once and symlinks as themselves', async () => {
    const dir = await scratchDir();
    await mkdir(join(dir, 'a', 'b'), { recursive: true });
    await writeFile(join(dir, 'one'), 'x'.repeat(100));
    await writeFile(join(dir, 'a', 'b', 'two'), 'y'.repeat(1000));
    await link(join(dir, 'one'), join(dir, 'a', 'hardlink'));
    await symlink('one', join(dir, 'sym'));
    expect(await directorySize(dir)).toBe(100 + 1000 + 'one'.length);
    expect(await directorySize(join(dir, 'a', 'b'))).toBe(1000);
  });

  it('fails for a missing directory', async () => {
    await expect(directorySize(join(await scratchDir(), 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
