import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { beforeAll, describe } from 'vitest';
import { ContainerdClient, startContainerd, type ContainerdProcess } from '@berth/plugin-executor-containerd';
import { buildVolumePluginDir, packPluginDir, volumePluginRequirements } from '@berth/plugin-manager/testing';
import { dockerCliAvailable, type Berthd } from './harness.js';

export { buildVolumePluginDir, packPluginDir };

const run = promisify(execFile);

/** Why managed plugins cannot run here (root, containerd, runc, ldd, the docker CLI), or undefined. */
export function pluginRequirements(): string | undefined {
  return volumePluginRequirements() ?? (dockerCliAvailable() ? undefined : 'the docker CLI is not on PATH');
}

/**
 * `describe` for tests that run managed plugins with containerd and drive them with the real docker
 * CLI. Without what they need they are skipped with the reason printed, except under CI, where they
 * fail.
 */
export function describeWithPlugins(name: string, body: () => void): void {
  const missing = pluginRequirements();
  if (missing !== undefined && process.env.CI === undefined) {
    console.warn(`Skipping "${name}": ${missing} (under CI these tests fail instead).`);
    describe.skip(name, body);
    return;
  }
  describe(name, () => {
    beforeAll(() => {
      if (missing !== undefined) throw new Error(`CI must run "${name}", but ${missing}`);
    });
    body();
  });
}

/**
 * A short temp directory for a daemon: `<dir>/exec/plugins/<64-hex id>/vol.sock` must fit in a
 * unix socket path (107 bytes).
 */
export function shortTempDir(): Promise<string> {
  return mkdtemp('/tmp/bp-');
}

/** A containerd of the test's own, for `berthd --containerd <address>`. */
export async function privateContainerd(dir: string): Promise<ContainerdProcess> {
  return startContainerd({ dir });
}

/** The address of the containerd berthd started for itself under its exec root. */
export function ownContainerdAddress(daemon: Berthd): string {
  return join(daemon.execRoot, 'containerd', 'containerd.sock');
}

/** The host pid of a plugin's task, or undefined when it has none. */
export async function taskPid(address: string, id: string): Promise<number | undefined> {
  const client = new ContainerdClient({ address, timeoutMs: 5_000 });
  try {
    const task = await client.getTask(id);
    return task.status === 'running' ? task.pid : undefined;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Polls until `check` holds (or returns a value other than undefined/false). */
export async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    }
    await sleep(100);
  }
}

/**
 * Leaves nothing behind of a containerd and what it ran: every task killed and deleted, runc
 * leftovers removed, containerd stopped (by its process handle or pid), the shims serving its
 * address killed, and the mounts below `dir` unmounted. Never throws.
 */
export async function reapContainerd(options: {
  address: string;
  process?: ContainerdProcess | undefined;
  pid?: number | undefined;
  runtimeRoot?: string | undefined;
  dir?: string | undefined;
}): Promise<void> {
  const { address } = options;
  const client = new ContainerdClient({ address, timeoutMs: 3_000 });
  try {
    for (const task of await client.listTasks().catch(() => [])) {
      await client.killTask(task.id, 9, { all: true }).catch(() => undefined);
      await client.waitTask(task.id, { timeoutMs: 5_000 }).catch(() => undefined);
      await client.deleteTask(task.id).catch(() => undefined);
      await client.deleteContainer(task.id).catch(() => undefined);
    }
  } finally {
    client.close();
  }
  if (options.runtimeRoot !== undefined) {
    const { stdout } = await run('runc', ['--root', options.runtimeRoot, 'list', '-q']).catch(() => ({ stdout: '' }));
    for (const id of stdout.split('\n').filter(Boolean)) {
      await run('runc', ['--root', options.runtimeRoot, 'delete', '--force', id]).catch(() => undefined);
    }
  }
  if (options.process !== undefined) {
    await options.process.stop({ timeoutMs: 5_000 }).catch(() => undefined);
  } else if (options.pid !== undefined && processAlive(options.pid)) {
    signal(options.pid, 'SIGTERM');
    for (let i = 0; i < 50 && processAlive(options.pid); i++) await sleep(100);
    signal(options.pid, 'SIGKILL');
  }
  const shims = shimPids(address);
  for (const pid of shims) signal(pid, 'SIGKILL');
  for (let i = 0; i < 50 && shims.some(processAlive); i++) await sleep(20);
  if (options.dir !== undefined) await unmountBelow(options.dir);
}

/** Stops a daemon (if running) and reaps the containerd it started for itself, then removes its directory. */
export async function cleanupDaemonWithOwnContainerd(daemon: Berthd | undefined): Promise<void> {
  if (daemon === undefined) return;
  if (daemon.running) await daemon.stop();
  const pid = Number.parseInt(await readFile(join(daemon.execRoot, 'containerd', 'containerd.pid'), 'utf8').catch(() => ''), 10);
  await reapContainerd({
    address: ownContainerdAddress(daemon),
    pid: Number.isInteger(pid) ? pid : undefined,
    runtimeRoot: join(daemon.execRoot, 'runtime-runc'),
    dir: daemon.dir,
  });
  await rm(daemon.dir, { recursive: true, force: true });
}

/** The directories under `<data-root>/plugins` (but `tmp/` and the content store `storage/`), and what `tmp/` holds. */
export async function pluginLeftovers(dataRoot: string): Promise<{ plugins: string[]; tmp: string[] }> {
  const root = join(dataRoot, 'plugins');
  const plugins = (await readdir(root)).filter((e) => e !== 'tmp' && e !== 'storage').sort();
  const tmp = await readdir(join(root, 'tmp'));
  return { plugins, tmp };
}

function shimPids(address: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.indexOf('-address');
      if (argv[0]?.includes('containerd-shim') && at >= 0 && argv[at + 1] === address) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

async function unmountBelow(dir: string): Promise<void> {
  const targets = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((target): target is string => target !== undefined && (target === dir || target.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const target of targets) await run('umount', ['-l', target]).catch(() => undefined);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone
  }
}
