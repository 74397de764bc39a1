import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PidFile } from './pidfile.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-pid-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PidFile', () => {
  it('writes the pid and removes it on release', async () => {
    const path = join(dir, 'run', 'berthd.pid');
    const pidfile = await PidFile.acquire(path);
    expect(await readFile(path, 'utf8')).toBe(String(process.pid));
    await pidfile.release();
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses while another live process holds it', async () => {
    const path = join(dir, 'berthd.pid');
    await writeFile(path, String(process.ppid));
    await expect(PidFile.acquire(path)).rejects.toThrow(
      `failed to start daemon, ensure berthd is not running or delete ${path}: process with PID ${process.ppid} is still running`,
    );
    expect(await readFile(path, 'utf8')).toBe(String(process.ppid));
  });

  it('replaces a stale or garbled pidfile, and one holding its own pid', async () => {
    const path = join(dir, 'berthd.pid');
    for (const content of ['2147483646', 'garbage', '', String(process.pid)]) {
      await writeFile(path, content);
      const pidfile = await PidFile.acquire(path);
      expect(await readFile(path, 'utf8')).toBe(String(process.pid));
      await pidfile.release();
    }
  });

  it('leaves a pidfile that is no longer its own', async () => {
    const path = join(dir, 'berthd.pid');
    const pidfile = await PidFile.acquire(path);
    await writeFile(path, '12345');
    await pidfile.release();
    expect(await readFile(path, 'utf8')).toBe('12345');
  });
});
