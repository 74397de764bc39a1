import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processAlive } from '@berth/host';
import { BERTHD } from './harness.js';
import { call } from './state-check.js';

/**
 * berthd whose log pipe went away (its supervisor or `berthd 2>&1 | head` exited): logging must
 * not take the daemon down, spin, or keep it from stopping on SIGTERM.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** CPU time (user + system, in clock ticks) the process used so far. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

describe('a closed stdout and stderr', () => {
  it('neither make the daemon spin after it logs an error, nor keep it from stopping on SIGTERM', async () => {
    const dir = await mkdtemp('/tmp/berth-it-');
    await writeFile(join(dir, 'daemon.json'), '{}\n');
    const socket = join(dir, 'berth.sock');
    const child = spawn(
      process.execPath,
      [BERTHD, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '-H', `unix://${socket}`, '--config-file', join(dir, 'daemon.json')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const pid = child.pid ?? -1;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    cleanups.push(async () => {
      if (processAlive(pid)) child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    });
    // Ready once it has logged that it is: nothing is written in between that could fail.
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        if (stderr.includes('Daemon has completed initialization')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`berthd exited with ${code}:\n${stderr}`)));
    });
    // The reader goes away: every later write to stdout or stderr fails with EPIPE.
    child.stdout.destroy();
    child.stderr.destroy();

    // Something the daemon logs at error level: a mount that mount(8) refuses (a 500, as in moby).
    const body = { Name: 'unmountable', DriverOpts: { type: 'nosuchfs-berth', device: 'nodev-berth' } };
    expect((await call({ socket, dataRoot: join(dir, 'data') }, { method: 'POST', path: '/volumes/create', body })).status).toBe(201);
    const mount = await call({ socket, dataRoot: join(dir, 'data') }, { method: 'POST', path: '/volumes/unmountable/mount', body: { ID: 'x' } });
    expect(mount.status).toBe(500);

    // An idle daemon uses next to no CPU: less than a fifth of one second over one second.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = cpuTicks(pid);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const used = cpuTicks(pid) - before;
    // And SIGTERM stops it, within its 10 s shutdown bound (here with nothing in flight: well within).
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000))]);
    const spins = used >= 20 ? `${used} CPU ticks (1/100 s) in one idle second` : false;
    expect({ spins, stoppedOnSigterm: stopped }).toEqual({ spins: false, stoppedOnSigterm: true });
  });
});
