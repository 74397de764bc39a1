import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir } from '../test/fakes.js';
import { DirectorySizer, directorySizeSync } from './directory-sizer.js';

async function tree(): Promise<string> {
  const dir = await scratchDir();
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await writeFile(join(dir, 'one'), 'x'.repeat(100));
  await writeFile(join(dir, 'a', 'b', 'two'), 'y'.repeat(1000));
  await link(join(dir, 'one'), join(dir, 'a', 'hardlink'));
  await symlink('one', join(dir, 'sym'));
  return dir;
}

describe('directorySizeSync', () => {
  it('sums files recursively, counts hard links once and symlinks as themselves', async () => {
    const dir = await tree();
    expect(directorySizeSync(fs, dir)).toBe(100 + 1000 + 'one'.length);
    expect(directorySizeSync(fs, join(dir, 'a', 'b'))).toBe(1000);
    // What `du -sb` counts, less the directories themselves (moby's `directory.Size` leaves them out).
    const du = Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
    const dirs = execFileSync('find', [dir, '-type', 'd', '-printf', '%s\n'], { encoding: 'utf8' }).trim().split('\n').map(Number);
    expect(du - dirs.reduce((a, b) => a + b, 0)).toBe(directorySizeSync(fs, dir));
  });

  it('walks deep trees without recursion', async () => {
    const dir = await scratchDir();
    let deep = dir;
    for (let i = 0; i < 300; i++) deep = join(deep, 'd');
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'f'), 'z');
    expect(directorySizeSync(fs, dir)).toBe(1);
  });

  it('fails for a missing directory', async () => {
    expect(() => directorySizeSync(fs, join('/nonexistent-berth', 'missing'))).toThrow(/ENOENT/);
  });
});

describe('DirectorySizer', () => {
  it('sizes directories in a worker thread, in order, with errors for the ones it cannot walk', async () => {
    const sizer = new DirectorySizer({ concurrency: 2 });
    try {
      const dir = await tree();
      const dirs = [dir, '/nonexistent-berth/x', ...Array.from({ length: 70 }, () => join(dir, 'a'))];
      const results = await sizer.size(dirs);
      expect(results[0]).toEqual({ size: 1103 });
      expect(results[1]).toEqual({ error: expect.stringMatching(/ENOENT/) });
      expect(results.slice(2).every((r) => 'size' in r && r.size === 1100)).toBe(true);
    } finally {
      await sizer.close();
    }
  });

  it('keeps the event loop free while it walks', async () => {
    const sizer = new DirectorySizer();
    try {
      const dir = await scratchDir();
      for (let i = 0; i < 200; i++) {
        await mkdir(join(dir, `v${i}`, 'x', 'y'), { recursive: true });
        await writeFile(join(dir, `v${i}`, 'x', 'y', 'f'), 'data');
      }
      const dirs = Array.from({ length: 4000 }, (_, i) => join(dir, `v${i % 200}`));
      await sizer.size([dir]); // the worker is started
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const before = performance.eventLoopUtilization();
      const results = await sizer.size(dirs);
      const busy = performance.eventLoopUtilization(before);
      clearInterval(timer);
      expect(results.every((r) => 'size' in r && r.size === 4)).toBe(true);
      // The walk ran elsewhere: this thread was mostly idle, and its timers kept firing.
      expect(busy.utilization).toBeLessThan(0.5);
      expect(ticks).toBeGreaterThan(5);
    } finally {
      await sizer.close();
    }
  });

  it('stops walking for a caller that went away, and serves the next one', async () => {
    const sizer = new DirectorySizer({ idleMs: 50 });
    try {
      const dir = await tree();
      const controller = new AbortController();
      const first = sizer.size(Array.from({ length: 5000 }, () => dir), { signal: controller.signal });
      controller.abort(new Error('client went away'));
      await expect(first).rejects.toThrow('client went away');
      expect(await sizer.size([dir])).toEqual([{ size: 1103 }]);
    } finally {
      await sizer.close();
    }
    await expect(sizer.size(['/'])).rejects.toThrow('directory sizer is closed');
  });
});
