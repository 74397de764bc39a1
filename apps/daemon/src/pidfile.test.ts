import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

  it('replaces a pidfile whose holder is a zombie: it has exited, only its pid is left', async () => {
    // The shell's background child is inherited by `sleep`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.05 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      const state = (): string | undefined => {
        const stat = readFileSync(`/proc/${zombie}/stat`, 'utf8');
        return stat[stat.lastIndexOf(')') + 2];
      };
      for (let i = 0; i < 200 && state() !== 'Z'; i++) await sleep(10);
      expect(state()).toBe('Z');
      const path = join(dir, 'berthd.pid');
      await writeFile(path, String(zombie));
      const pidfile = await PidFile.acquire(path);
      expect(await readFile(path, 'utf8')).toBe(String(process.pid));
      await pidfile.release();
    } finally {
      parent.kill('SIGKILL');
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
