import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Berthd, unixTime, type ExecResult } from './harness.js';
import { buildVolumePluginDir, cleanupDaemonWithOwnContainerd, shortTempDir } from './plugin-helpers.js';
import {
  describeWithRegistry,
  fetchBlob,
  fetchManifest,
  pluginStorage,
  startRegistry,
  writeTinyPluginDir,
  type RunningRegistry,
} from './registry-helpers.js';

/**
 * Plugins to and from a real registry (Debian's docker-registry 2.8 on a loopback port) with the
 * real docker CLI against berthd and the containerd berthd starts for itself: `plugin create` +
 * `push`, `install` (enabled, `--disable`, with settings), `inspect` by the remote name,
 * `upgrade` while a volume exists on the plugin, htpasswd auth through `docker login`, and moby's
 * tests of these (`TestPluginInstall`, `TestPluginBackCompatMediaTypes`, `TestPluginInstallArgs`,
 * `TestPluginUpgrade`, `TestPluginBasicOps`, `TestPluginForceRemove`, `TestPluginInstallDisable`,
 * `TestPluginInspect`, `TestEventsPluginOps`), ported to a local registry. The failure cases are
 * in `plugins-registry-failures.test.ts`.
 */

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });
const daemonError = (message: string): ExecResult => ({ code: 1, stdout: '', stderr: `Error response from daemon: ${message}\n` });

const USER = { username: 'user', password: 'pass' };

/** A plugin that is only installed, never run; it asks for privileges of three kinds. */
const TINY_CONFIG = {
  Description: 'berth tiny test plugin',
  Documentation: 'https://example.invalid/tiny',
  Entrypoint: ['/bin/tiny'],
  Interface: { Socket: 'tiny.sock', Types: ['docker.volumedriver/1.0'] },
  Network: { Type: 'host' },
  Mounts: [{ Name: 'state', Source: '/var/lib/tiny', Destination: '/state', Type: 'bind', Options: ['rbind'] }],
  Linux: { Capabilities: ['CAP_SYS_ADMIN'] },
  // TestPluginInstallArgs: settable, without a value.
  Env: [{ Name: 'DEBUG', Settable: ['value'] }],
};

interface PluginJson {
  Id: string;
  Name: string;
  Enabled: boolean;
  PluginReference: string;
  Settings: { Env: string[] };
  Config: { Description: string; rootfs: { type: string; diff_ids: string[] } };
}

interface EventJson {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

describeWithRegistry('plugins from a registry with the docker CLI (docker-registry, containerd)', () => {
  let dir: string;
  let registry: RunningRegistry | undefined;
  let secured: RunningRegistry | undefined;
  let daemon: Berthd | undefined;
  let host: string;
  let tinyDir: string;
  /** What `docker plugin push` printed in `beforeAll`, by plugin name. */
  const pushes = new Map<string, ExecResult>();

  beforeAll(async () => {
    dir = await shortTempDir();
    [registry, secured] = await Promise.all([startRegistry(), startRegistry({ htpasswd: USER })]);
    host = registry.host;
    daemon = await Berthd.start({ dir: join(dir, 'd'), args: ['--insecure-registry', 'reg.invalid:5000'] });
    // The volume plugin (node + a JS VolumeDriver) keeps its volumes in its propagated mount, outside
    // the rootfs, as real volume plugins do: an upgrade replaces the rootfs, the volumes stay.
    const v1 = (await buildVolumePluginDir(join(dir, 'v1'), { propagatedMount: true })).dir;
    const v2 = (await buildVolumePluginDir(join(dir, 'v2'), { propagatedMount: true, config: { Description: 'berth test volume plugin v2' } })).dir;
    await writeFile(join(v2, 'rootfs', 'v2'), 'the second version\n');
    tinyDir = await writeTinyPluginDir(join(dir, 'tiny'), TINY_CONFIG, { 'bin/tiny': '#!/bin/sh\n', version: '1\n' });
    for (const [name, source] of [
      [`${host}/berth/tiny:1`, tinyDir],
      [`${host}/berth/vol:1`, v1],
      [`${host}/berth/vol:2`, v2],
    ] as const) {
      const created = await docker('plugin', 'create', name, source);
      if (created.code !== 0) throw new Error(`plugin create ${name}: ${created.stderr}`);
      pushes.set(name, await docker('plugin', 'push', name));
      const removed = await docker('plugin', 'rm', name);
      if (removed.code !== 0) throw new Error(`plugin rm ${name}: ${removed.stderr}`);
    }
  }, 180_000);

  afterEach((context) => {
    if (context.task.result?.state === 'fail' && daemon !== undefined) {
      console.error(`berthd's log, last 4000 characters:\n${daemon.stderr.slice(-4000)}`);
    }
  });

  afterAll(async () => {
    await cleanupDaemonWithOwnContainerd(daemon);
    await Promise.all([registry?.stop(), secured?.stop()]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const berthd = (): Berthd => daemon as Berthd;
  function docker(...args: string[]): Promise<ExecResult> {
    return berthd().docker(args);
  }
  const inspect = async (name: string): Promise<PluginJson> => {
    const out = await docker('plugin', 'inspect', name);
    expect(out.code, out.stderr).toBe(0);
    return (JSON.parse(out.stdout) as PluginJson[])[0] as PluginJson;
  };
  const install = async (...args: string[]): Promise<void> => {
    const out = await docker('plugin', 'install', '--grant-all-permissions', ...args);
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
  };
  const pluginEvents = async (since: string): Promise<Array<[string, string, string | undefined]>> => {
    const out = await docker('events', '--since', since, '--until', unixTime(0.5), '--filter', 'type=plugin', '--format', '{{json .}}');
    expect(out.code, out.stderr).toBe(0);
    return out.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as EventJson)
      .map((e) => [e.Action, e.Actor.ID, e.Actor.Attributes['name']]);
  };
  const expectNoPlugins = async (): Promise<void> => {
    expect((await docker('plugin', 'ls', '-q')).stdout).toBe('');
    const left = await pluginStorage(berthd().dataRoot);
    expect([left.plugins, left.tmp, left.ingest]).toEqual([[], [], []]);
  };

  it('pushes created plugins: the CLI shows moby\'s lines, the registry holds schema2 with the plugin config and one gzip layer (TestPluginBackCompatMediaTypes)', async () => {
    const pushed = pushes.get(`${host}/berth/tiny:1`) as ExecResult;
    expect(pushed.code, pushed.stderr).toBe(0);
    const lines = pushed.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`The push refers to repository [${host}/berth/tiny]`);
    expect(lines.filter((l) => l.endsWith(': Pushed'))).toHaveLength(2);
    const { digest, manifest } = await fetchManifest(host, 'berth/tiny', '1');
    expect(lines.at(-1)).toBe(`1: digest: ${digest} size: ${JSON.stringify(manifest).length}`);
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.config.mediaType).toBe('application/vnd.docker.plugin.v1+json');
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0]?.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    const config = JSON.parse((await fetchBlob(host, 'berth/tiny', manifest.config.digest)).toString('utf8')) as PluginJson['Config'];
    expect(config).toMatchObject({ Description: 'berth tiny test plugin', rootfs: { type: 'layers', diff_ids: [manifest.layers[0]?.digest] } });
    for (const name of [`${host}/berth/vol:1`, `${host}/berth/vol:2`]) expect(pushes.get(name)?.code, pushes.get(name)?.stderr).toBe(0);

    // Through the API: a created plugin's first push builds its image and records it; the
    // second push sends the same image (same digest, every blob already there), aux last.
    expect((await docker('plugin', 'create', `${host}/berth/tiny:api`, tinyDir)).code).toBe(0);
    const push = async (): Promise<Array<Record<string, unknown>>> => {
      const res = await berthd().http({ method: 'POST', path: `/plugins/${host}/berth/tiny:api/push`, timeoutMs: 60_000 });
      expect([res.status, res.headers['content-type']]).toEqual([200, 'application/json']);
      return res.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const first = await push();
    const again = await push();
    const aux = first.at(-1)?.['aux'] as { Tag: string; Digest: string; Size: number };
    expect(aux).toEqual({ Tag: 'api', Digest: expect.stringMatching(/^sha256:[a-f0-9]{64}$/), Size: expect.any(Number) });
    expect(again.at(-1)).toEqual({ aux });
    expect(again.filter((m) => m['status'] === 'Layer already exists')).toHaveLength(2);
    expect((await fetchManifest(host, 'berth/tiny', 'api')).digest).toBe(aux.Digest);
    // Like a plugin created by dockerd, its config now names the gzip layer.
    const created = await inspect(`${host}/berth/tiny:api`);
    expect(created.Config.rootfs.diff_ids).toEqual([(await fetchManifest(host, 'berth/tiny', 'api')).manifest.layers[0]?.digest]);
    expect(await docker('plugin', 'rm', `${host}/berth/tiny:api`)).toEqual(ok(`${host}/berth/tiny:api\n`));
  }, 60_000);

  it('installs without auth, by digest after a push, and asks for the plugin\'s privileges (TestPluginInstall)', async () => {
    const remote = `${host}/berth/tiny:1`;
    const privileges = await berthd().http({ path: `/plugins/privileges?remote=${remote}` });
    expect([privileges.status, privileges.json]).toEqual([
      200,
      [
        { Name: 'network', Description: 'permissions to access a network', Value: ['host'] },
        { Name: 'mount', Description: 'host path to mount', Value: ['/var/lib/tiny'] },
        { Name: 'capabilities', Description: 'list of additional capabilities required', Value: ['CAP_SYS_ADMIN'] },
      ],
    ]);

    const out = await docker('plugin', 'install', '--grant-all-permissions', '--disable', remote);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`1: Pulling from ${host}/berth/tiny\n`);
    expect(out.stdout).toMatch(/\nDigest: sha256:[a-f0-9]{64}\n/);
    expect(out.stdout).toContain(`Installed plugin ${remote}\n`);
    const plugin = await inspect(remote);
    expect(plugin).toMatchObject({ Name: remote, Enabled: false, PluginReference: remote, Config: { Description: 'berth tiny test plugin' } });
    expect(existsSync(join(berthd().dataRoot, 'plugins', plugin.Id, 'rootfs', 'version'))).toBe(true);
    const saved = JSON.parse(await readFile(join(berthd().dataRoot, 'plugins', plugin.Id, 'config.json'), 'utf8')) as Record<string, unknown>;
    const { digest, manifest } = await fetchManifest(host, 'berth/tiny', '1');
    expect(saved).toMatchObject({ Config: manifest.config.digest, Blobsums: [manifest.layers[0]?.digest], Manifest: digest });
    expect(await docker('plugin', 'rm', remote)).toEqual(ok(`${remote}\n`));

    // By digest: the local name is the repository with `latest`, the reference keeps the digest.
    const byDigest = `${host}/berth/tiny@${digest}`;
    await install('--disable', byDigest);
    expect(await inspect(`${host}/berth/tiny`)).toMatchObject({ Name: `${host}/berth/tiny:latest`, PluginReference: byDigest });
    expect(await docker('plugin', 'rm', `${host}/berth/tiny`)).toEqual(ok(`${host}/berth/tiny\n`));
    await expectNoPlugins();
  }, 60_000);

  it('logs in through the daemon and pushes and installs with htpasswd credentials (TestPluginInstall "with htpasswd")', async () => {
    const s = (secured as RunningRegistry).host;
    const remote = `${s}/berth/secret:1`;
    expect((await docker('plugin', 'create', remote, tinyDir)).code).toBe(0);
    const refused = await docker('plugin', 'push', remote);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('error pushing plugin: unauthorized: authentication required\n');

    const wrong = await docker('login', s, '-u', USER.username, '-p', 'wrong');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`Error response from daemon: login attempt to http://${s}/v2/ failed with status: 401 Unauthorized`);
    const login = await docker('login', s, '-u', USER.username, '-p', USER.password);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain('Login Succeeded');

    const pushed = await docker('plugin', 'push', remote);
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(await docker('plugin', 'rm', remote)).toEqual(ok(`${remote}\n`));
    await install('--disable', remote);
    expect(await inspect(remote)).toMatchObject({ Name: remote, PluginReference: remote });
    expect(await docker('plugin', 'rm', remote)).toEqual(ok(`${remote}\n`));

    // Without credentials the privileges come back empty (moby's quirk) and the pull says why.
    expect(await docker('logout', s)).toMatchObject({ code: 0 });
    const anonymous = await docker('plugin', 'install', '--grant-all-permissions', '--disable', remote);
    expect(anonymous).toEqual(daemonError('error resolving plugin reference: unauthorized: authentication required'));
    await expectNoPlugins();
  }, 60_000);

  it('installs disabled with settings (TestPluginInstallArgs)', async () => {
    const remote = `${host}/berth/tiny:1`;
    await install('--disable', remote, 'DEBUG=1');
    expect(await docker('plugin', 'inspect', '-f', '{{.Settings.Env}}', remote)).toEqual(ok('[DEBUG=1]\n'));
    expect(await docker('plugin', 'rm', remote)).toEqual(ok(`${remote}\n`));
  }, 60_000);

  it('installs enabled, refuses to remove it while enabled, removes it once disabled (TestPluginBasicOps, TestEventsPluginOps)', async () => {
    const remote = `${host}/berth/vol:1`;
    const since = unixTime();
    await install(remote);
    const ls = await docker('plugin', 'ls');
    expect(ls.stdout).toMatch(new RegExp(`\\s${remote.replaceAll('.', '\\.')}\\s+berth test volume plugin\\s+true\\n`));
    const id = (await docker('plugin', 'inspect', '-f', '{{.Id}}', remote)).stdout.trim();
    expect(await docker('plugin', 'rm', remote)).toEqual(daemonError(`plugin ${remote} is enabled`));
    expect(await docker('plugin', 'disable', remote)).toEqual(ok(`${remote}\n`));
    expect(await docker('plugin', 'rm', remote)).toEqual(ok(`${remote}\n`));
    expect(existsSync(join(berthd().dataRoot, 'plugins', id))).toBe(false);
    // moby's TestEventsPluginOps: install, disable, remove give `pull, enable, disable, remove`;
    // `pull` names the remote as actor, the others the plugin's ID.
    expect(await pluginEvents(since)).toEqual([
      ['pull', remote, remote],
      ['enable', id, remote],
      ['disable', id, remote],
      ['remove', id, remote],
    ]);
    await expectNoPlugins();
  }, 120_000);

  it('removes an enabled plugin with --force (TestPluginForceRemove)', async () => {
    const remote = `${host}/berth/vol:1`;
    await install(remote);
    expect(await docker('plugin', 'rm', remote)).toEqual(daemonError(`plugin ${remote} is enabled`));
    expect(await docker('plugin', 'rm', '--force', remote)).toEqual(ok(`${remote}\n`));
    await expectNoPlugins();
  }, 120_000);

  it('installs disabled, then enables, disables and removes by name (TestPluginInstallDisable)', async () => {
    const remote = `${host}/berth/vol:1`;
    const out = await docker('plugin', 'install', '--grant-all-permissions', '--disable', remote);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toContain(remote);
    expect((await docker('plugin', 'ls')).stdout).toMatch(/\sfalse\n$/);
    expect(await docker('plugin', 'enable', remote)).toEqual(ok(`${remote}\n`));
    expect((await docker('plugin', 'ls')).stdout).toMatch(/\strue\n$/);
    expect(await docker('plugin', 'disable', remote)).toEqual(ok(`${remote}\n`));
    expect(await docker('plugin', 'remove', remote)).toEqual(ok(`${remote}\n`));
    await expectNoPlugins();
  }, 120_000);

  it('inspects by name:tag, name, ID and ID prefix; nothing after remove (TestPluginInspect, with --alias)', async () => {
    // moby's test installs `<repo>:latest`; the alias gives the local name that tag.
    const local = `${host}/berth/inspected`;
    await install('--alias', local, `${host}/berth/vol:1`);
    const ls = (await docker('plugin', 'ls')).stdout;
    expect(ls).toContain(`${local}:latest`);
    expect(ls).toContain('true');
    const id = (await docker('plugin', 'inspect', '-f', '{{.Id}}', `${local}:latest`)).stdout.trim();
    expect(id).toMatch(/^[a-f0-9]{64}$/);
    for (const ref of [id, id.slice(0, 5), `${local}:latest`, local]) {
      expect(await docker('plugin', 'inspect', '-f', '{{.Id}} {{.Name}} {{.PluginReference}}', ref)).toEqual(ok(`${id} ${local}:latest ${host}/berth/vol:1\n`));
    }
    expect(await docker('plugin', 'disable', `${local}:latest`)).toEqual(ok(`${local}:latest\n`));
    expect(await docker('plugin', 'remove', `${local}:latest`)).toEqual(ok(`${local}:latest\n`));
    expect((await docker('plugin', 'inspect', '-f', '{{.Id}}', id.slice(0, 5))).code).toBe(1);
    await expectNoPlugins();
  }, 120_000);

  it('upgrades a disabled plugin in place while a volume exists on it; the volume\'s data survives (TestPluginUpgrade)', async () => {
    const remote = `${host}/berth/vol:1`;
    const next = `${host}/berth/vol:2`;
    const d = berthd();
    const since = unixTime();
    await install(remote);
    const id = (await inspect(remote)).Id;
    expect(await docker('volume', 'create', '--driver', remote, 'bananas')).toEqual(ok('bananas\n'));
    const mounted = await d.http({ method: 'POST', path: '/volumes/bananas/mount', body: { ID: 'job-1' } });
    expect(mounted.status).toBe(200);
    const mountpoint = (mounted.json as { Mountpoint: string }).Mountpoint;
    expect(mountpoint).toBe(join(d.dataRoot, 'plugins', id, 'propagated-mount', 'bananas'));
    await writeFile(join(mountpoint, 'core'), 'apple\n');
    expect((await d.http({ method: 'POST', path: '/volumes/bananas/unmount', body: { ID: 'job-1' } })).status).toBe(204);

    // Enabled: the CLI refuses itself; the API answers moby's 409.
    const refused = await docker('plugin', 'upgrade', '--grant-all-permissions', '--skip-remote-check', remote, next);
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('the plugin must be disabled before upgrading') });
    const api = await d.http({ method: 'POST', path: `/plugins/${remote}/upgrade?remote=${next}`, body: [] });
    expect([api.status, api.json]).toEqual([409, { message: `plugin must be disabled before upgrading: plugin ${remote} is enabled` }]);
    expect(existsSync(join(d.dataRoot, 'plugins', id, 'rootfs', 'v2'))).toBe(false);

    expect(await docker('plugin', 'disable', '-f', remote)).toEqual(ok(`${remote}\n`));
    const upgraded = await docker('plugin', 'upgrade', '--grant-all-permissions', '--skip-remote-check', remote, next);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(upgraded.stdout).toContain(`Upgrading plugin ${remote} from ${remote} to ${next}\n`);
    expect(upgraded.stdout).toContain(`Upgraded plugin ${remote} to ${next}\n`);
    expect(existsSync(join(d.dataRoot, 'plugins', id, 'rootfs', 'v2'))).toBe(true);
    expect(existsSync(join(d.dataRoot, 'plugins', id, 'rootfs-old'))).toBe(false);
    expect(await inspect(remote)).toMatchObject({ Id: id, Name: remote, PluginReference: next, Config: { Description: 'berth test volume plugin v2' } });

    expect(await docker('plugin', 'enable', remote)).toEqual(ok(`${remote}\n`));
    expect((await docker('volume', 'inspect', '-f', '{{.Driver}}', 'bananas'))).toEqual(ok(`${remote}\n`));
    const again = await d.http({ method: 'POST', path: '/volumes/bananas/mount', body: { ID: 'job-2' } });
    expect([again.status, again.json]).toEqual([200, { Mountpoint: mountpoint }]);
    expect(await readFile(join(mountpoint, 'core'), 'utf8')).toBe('apple\n');
    expect((await d.http({ method: 'POST', path: '/volumes/bananas/unmount', body: { ID: 'job-2' } })).status).toBe(204);

    expect(await docker('volume', 'rm', 'bananas')).toEqual(ok('bananas\n'));
    expect(await docker('plugin', 'rm', '-f', remote)).toEqual(ok(`${remote}\n`));
    const events = await pluginEvents(since);
    expect(events.filter((e) => e[0] === 'pull')).toEqual([
      ['pull', remote, remote],
      ['pull', next, remote],
    ]);
    await expectNoPlugins();
    // The blobs of both versions were collected with the plugin.
    await expect.poll(async () => (await pluginStorage(d.dataRoot)).blobs, { timeout: 5_000 }).toEqual([]);
  }, 180_000);

  it('reports its insecure registries in docker info', async () => {
    const out = await docker('info', '--format', '{{json .RegistryConfig}}');
    expect(out.code, out.stderr).toBe(0);
    const config = JSON.parse(out.stdout) as { InsecureRegistryCIDRs: string[]; IndexConfigs: Record<string, { Secure: boolean }> };
    expect(config.InsecureRegistryCIDRs).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.IndexConfigs['reg.invalid:5000']).toMatchObject({ Secure: false });
  });
});
