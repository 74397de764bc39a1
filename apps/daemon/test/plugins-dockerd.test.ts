import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { ContainerdProcess } from '@berth/plugin-executor-containerd';
import { Dockerd, describeWithDockerd, dockerd } from './dockerd-helpers.js';
import { Berthd, type ExecResult } from './harness.js';
import { buildVolumePluginDir, cleanupDaemonWithOwnContainerd, privateContainerd, reapContainerd, shortTempDir } from './plugin-helpers.js';
import { fetchManifest, startRegistry, type RunningRegistry } from './registry-helpers.js';

/**
 * Acceptance 3 of plugins from a registry: a plugin pushed by berthd installs (and runs) in the
 * reference dockerd — Debian's docker.io 20.10, fetched by `scripts/ensure-dockerd.sh` — and one
 * pushed by dockerd installs (and runs) in berthd; a plugin berthd pulled is pushed again with
 * dockerd's digest. dockerd runs on its own data-root, exec-root, socket and containerd, with vfs
 * and no networking of its own. Without dockerd (or root, containerd, runc, the registry, the docker
 * CLI) these tests are skipped with the reason printed, except under CI, where they fail.
 */

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
    reference = await Dockerd.start(dockerd.path as string, { dir: join(dir, 'dockerd'), containerd: containerd.address });
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
