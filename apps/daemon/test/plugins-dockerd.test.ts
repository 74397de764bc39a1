import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerdProcess } from '@berth/plugin-executor-containerd';
import { Berthd, httpRequest, runDocker, type ExecResult } from './harness.js';
import { buildVolumePluginDir, cleanupDaemonWithOwnContainerd, privateContainerd, reapContainerd, shortTempDir, until } from './plugin-helpers.js';
import { fetchManifest, registryRequirements, startRegistry, type RunningRegistry } from './registry-helpers.js';

/**
 * Acceptance 3 of plugins from a registry: a plugin pushed by berthd installs (and runs) in the
 * reference dockerd — Debian's docker.io 20.10, fetched by `scripts/ensure-dockerd.sh` — and one
 * pushed by dockerd installs (and runs) in berthd; a plugin berthd pulled is pushed again with
 * dockerd's digest. dockerd runs on its own data-root, exec-root, socket and containerd, with vfs
 * and no networking of its own. Without dockerd (or root, containerd, runc, the registry, the docker
 * CLI) these tests are skipped with the reason printed, except under CI, where they fail.
 */

const ENSURE_DOCKERD = fileURLToPath(new URL('../../../scripts/ensure-dockerd.sh', import.meta.url));

function findDockerd(): { path?: string; reason?: string } {
  const missing = registryRequirements();
  if (missing !== undefined) return { reason: missing };
  const found = spawnSync('bash', [ENSURE_DOCKERD], { encoding: 'utf8', timeout: 600_000 });
  if (found.status === 0 && found.stdout.trim() !== '') return { path: found.stdout.trim() };
  return { reason: (found.stderr || found.error?.message || 'scripts/ensure-dockerd.sh failed').trim() };
}

const dockerd = findDockerd();
const describeWithDockerd = (name: string, body: () => void): void => {
  if (dockerd.path === undefined && process.env.CI === undefined) {
    console.warn(`Skipping "${name}": ${dockerd.reason ?? ''} (under CI these tests fail instead).`);
    describe.skip(name, body);
    return;
  }
  describe(name, () => {
    beforeAll(() => {
      if (dockerd.path === undefined) throw new Error(`CI must run "${name}", but ${dockerd.reason ?? ''}`);
    });
    body();
  });
};

/** dockerd 20.10 on directories of its own, with its own containerd. */
class Dockerd {
  readonly socket: string;
  readonly #child: ChildProcess;
  readonly #log: string;

  private constructor(child: ChildProcess, socket: string, log: string) {
    this.#child = child;
    this.socket = socket;
    this.#log = log;
  }

  static async start(binary: string, dir: string, containerd: string): Promise<Dockerd> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'daemon.json'), '{}\n');
    const socket = join(dir, 'docker.sock');
    const log = join(dir, 'dockerd.log');
    const fd = openSync(log, 'a');
    const child = spawn(
      binary,
      [
        '--config-file', join(dir, 'daemon.json'),
        '--data-root', join(dir, 'data'),
        '--exec-root', join(dir, 'exec'),
        '-H', `unix://${socket}`,
        '--pidfile', join(dir, 'dockerd.pid'),
        '--containerd', containerd,
        '--storage-driver', 'vfs',
        '--iptables=false',
        '--ip-masq=false',
        '--bridge=none',
      ],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    const daemon = new Dockerd(child, socket, log);
    try {
      await until(
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode})`);
          return (await httpRequest(socket, { path: '/_ping', timeoutMs: 1000 }).catch(() => undefined))?.status === 200;
        },
        60_000,
        'dockerd to answer /_ping',
      );
    } catch (err) {
      await daemon.stop();
      throw new Error(`${(err as Error).message}\n${await daemon.logTail()}`);
    }
    return daemon;
  }

  docker(args: string[], configDir: string): Promise<ExecResult> {
    return runDocker(this.socket, args, configDir);
  }

  async logTail(): Promise<string> {
    return (await readFile(this.#log, 'utf8').catch(() => '')).slice(-4000);
  }

  /** SIGTERM (dockerd stops its plugins), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

interface PluginJson {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
  Config: Record<string, unknown>;
}

describeWithDockerd('plugins pushed by berthd install in dockerd 20.10, and the other way round', () => {
  let dir: string;
  let registry: RunningRegistry | undefined;
  let containerd: ContainerdProcess | undefined;
  let reference: Dockerd | undefined;
  let berth: Berthd | undefined;
  let source: string;

  beforeAll(async () => {
    dir = await shortTempDir();
    registry = await startRegistry();
    containerd = await privateContainerd(join(dir, 'ctd'));
    reference = await Dockerd.start(dockerd.path as string, join(dir, 'dockerd'), containerd.address);
    berth = await Berthd.start({ dir: join(dir, 'b') });
    source = (await buildVolumePluginDir(join(dir, 'plugin'), { propagatedMount: true })).dir;
  }, 120_000);

  afterEach(async (context) => {
    if (context.task.result?.state === 'fail') {
      console.error(`dockerd's log:\n${(await reference?.logTail()) ?? ''}\nberthd's log:\n${berth?.stderr.slice(-3000) ?? ''}`);
    }
  });

  afterAll(async () => {
    await reference?.stop();
    if (containerd !== undefined) {
      await reapContainerd({ address: containerd.address, process: containerd, dir });
    }
    await cleanupDaemonWithOwnContainerd(berth);
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  const viaBerthd = (...args: string[]): Promise<ExecResult> => (berth as Berthd).docker(args);
  const viaDockerd = (...args: string[]): Promise<ExecResult> => (reference as Dockerd).docker(args, join(dir, 'dockerd-cli'));
  const succeeds = async (result: Promise<ExecResult>): Promise<string> => {
    const out = await result;
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
    return out.stdout;
  };
  const inspect = async (run: (...args: string[]) => Promise<ExecResult>, name: string): Promise<PluginJson> =>
    (JSON.parse(await succeeds(run('plugin', 'inspect', name))) as PluginJson[])[0] as PluginJson;

  it('a plugin created and pushed by berthd installs and runs in dockerd', async () => {
    const name = `${(registry as RunningRegistry).host}/berth/from-berthd:1`;
    await succeeds(viaBerthd('plugin', 'create', name, source));
    await succeeds(viaBerthd('plugin', 'push', name));
    const mine = await inspect(viaBerthd, name);

    const installed = await succeeds(viaDockerd('plugin', 'install', '--grant-all-permissions', name));
    expect(installed).toContain(`Installed plugin ${name}`);
    const theirs = await inspect(viaDockerd, name);
    expect(theirs).toMatchObject({ Name: name, Enabled: true, PluginReference: name });
    for (const key of ['Description', 'Entrypoint', 'Env', 'Interface', 'PropagatedMount', 'WorkDir', 'rootfs']) {
      expect(theirs.Config[key], key).toEqual(mine.Config[key]);
    }
    // dockerd runs it: a volume on it works.
    expect(await succeeds(viaDockerd('volume', 'create', '-d', name, 'made-by-dockerd'))).toBe('made-by-dockerd\n');
    expect(await succeeds(viaDockerd('volume', 'ls', '--format', '{{.Driver}} {{.Name}}'))).toBe(`${name} made-by-dockerd\n`);
    await succeeds(viaDockerd('volume', 'rm', 'made-by-dockerd'));
    await succeeds(viaDockerd('plugin', 'rm', '-f', name));
    await succeeds(viaBerthd('plugin', 'rm', name));
  }, 180_000);

  it('a plugin created and pushed by dockerd installs and runs in berthd, and berthd pushes it again unchanged', async () => {
    const host = (registry as RunningRegistry).host;
    const name = `${host}/berth/from-dockerd:1`;
    await succeeds(viaDockerd('plugin', 'create', name, source));
    await succeeds(viaDockerd('plugin', 'push', name));
    const theirs = await inspect(viaDockerd, name);
    const pushedByDockerd = await fetchManifest(host, 'berth/from-dockerd', '1');
    await succeeds(viaDockerd('plugin', 'rm', name));

    const installed = await succeeds(viaBerthd('plugin', 'install', '--grant-all-permissions', name));
    expect(installed).toContain(`Installed plugin ${name}`);
    const mine = await inspect(viaBerthd, name);
    expect(mine).toMatchObject({ Name: name, Enabled: true, PluginReference: name });
    for (const key of ['Description', 'Entrypoint', 'Env', 'Interface', 'PropagatedMount', 'WorkDir', 'rootfs']) {
      expect(mine.Config[key], key).toEqual(theirs.Config[key]);
    }
    expect(await succeeds(viaBerthd('volume', 'create', '-d', name, 'made-by-berthd'))).toBe('made-by-berthd\n');
    expect(await succeeds(viaBerthd('volume', 'ls', '--format', '{{.Driver}} {{.Name}}'))).toBe(`${name} made-by-berthd\n`);
    await succeeds(viaBerthd('volume', 'rm', 'made-by-berthd'));

    // A pulled plugin is pushed as it was pulled: the registry keeps dockerd's digest.
    const again = await succeeds(viaBerthd('plugin', 'push', name));
    expect(again).toContain(`1: digest: ${pushedByDockerd.digest} size: `);
    expect((await fetchManifest(host, 'berth/from-dockerd', '1')).digest).toBe(pushedByDockerd.digest);
    await succeeds(viaBerthd('plugin', 'rm', '-f', name));
  }, 180_000);
});
