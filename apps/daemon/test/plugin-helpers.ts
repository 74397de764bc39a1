import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerdClient, startContainerd, type ContainerdProcess } from '@berth/plugin-executor-containerd';
import { processAlive } from '@berth/host';
import { reapContainerd } from '@berth/plugin-executor-containerd/testing';
import { buildVolumePluginDir, packPluginDir, volumePluginRequirements } from '@berth/plugin-manager/testing';
import { describeWith, dockerCliAvailable, type Berthd } from './harness.js';

export { buildVolumePluginDir, packPluginDir, processAlive, reapContainerd };

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
  describeWith(name, pluginRequirements(), body);
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
