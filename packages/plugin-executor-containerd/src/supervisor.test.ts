import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerdClient } from './client.js';
import { afterEach, describe, expect, it } from 'vitest';
import { noopLogger } from '@berth/logger';
import { CONTAINERD_MISSING, ContainerdSupervisor } from './supervisor.js';

const haveContainerd = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v containerd']);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();
if (!haveContainerd && process.env.CI === undefined) {
  console.warn('Skipping the containerd supervisor tests: they need root and containerd (under CI they run).');
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp('/tmp/berth-ctd-');
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function answers(address: string): Promise<boolean> {
  const client = new ContainerdClient({ address, timeoutMs: 1000 });
  try {
    return (await client.version()).version !== '';
  } catch {
    return false;
  } finally {
    client.close();
  }
}

describe('ContainerdSupervisor', () => {
  it('uses the containerd given with --containerd as it is', async () => {
    const supervisor = new ContainerdSupervisor({ address: '/x/containerd.sock', dir: '/nonexistent', logger: noopLogger });
    expect(supervisor.managed).toBe(false);
    expect(await supervisor.address()).toBe('/x/containerd.sock');
  });

  it('says how to get containerd when there is none', async () => {
    const dir = await tempDir();
    const supervisor = new ContainerdSupervisor({ dir: join(dir, 'containerd'), binary: 'berth-no-such-containerd', logger: noopLogger });
    await expect(supervisor.address()).rejects.toMatchObject({ kind: 'unavailable', message: CONTAINERD_MISSING });
  });

  it.runIf(haveContainerd || process.env.CI !== undefined)(
    'starts its own containerd on first use, restarts it when it dies, and stops it on close',
    async () => {
      const dir = join(await tempDir(), 'containerd');
      const supervisor = new ContainerdSupervisor({ dir, logger: noopLogger, restartDelayMs: 50 });
      cleanup.push(() => supervisor.close());
      const address = await supervisor.address();
      expect(await answers(address)).toBe(true);
      const pid = Number(await readFile(join(dir, 'containerd.pid'), 'utf8'));

      process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 15_000;
      let restarted = false;
      while (!restarted && Date.now() < deadline) {
        await sleep(100);
        const now = Number(await readFile(join(dir, 'containerd.pid'), 'utf8').catch(() => '0'));
        restarted = now !== pid && now > 0 && (await answers(await supervisor.address()));
      }
      expect(restarted).toBe(true);

      const newPid = Number(await readFile(join(dir, 'containerd.pid'), 'utf8'));
      await supervisor.close();
      expect(() => process.kill(newPid, 0)).toThrow();
    },
    40_000,
  );

  it.runIf(haveContainerd || process.env.CI !== undefined)(
    'leaves its containerd running with live-restore, and the next supervisor adopts it',
    async () => {
      const dir = join(await tempDir(), 'containerd');
      const first = new ContainerdSupervisor({ dir, logger: noopLogger });
      const address = await first.address();
      const pid = Number(await readFile(join(dir, 'containerd.pid'), 'utf8'));
      await first.close({ keepRunning: true });
      expect(await answers(address)).toBe(true);

      const second = new ContainerdSupervisor({ dir, logger: noopLogger });
      cleanup.push(() => second.close());
      expect(await second.address()).toBe(address);
      expect(Number(await readFile(join(dir, 'containerd.pid'), 'utf8'))).toBe(pid);
      await second.close();
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await answers(address))) await sleep(100);
      expect(await answers(address)).toBe(false);
    },
    40_000,
  );
});
