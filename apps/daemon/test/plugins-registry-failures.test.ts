import { request as httpRequestRaw } from 'node:http';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { encodeRegistryAuth } from '@berth/plugin-registry';
import { Berthd, unixTime, type ExecResult } from './harness.js';
import { shortTempDir } from './plugin-helpers.js';
import {
  cloneRegistry,
  describeWithRegistry,
  pluginStorage,
  pushContainerImage,
  randomPayload,
  StallingProxy,
  startRegistry,
  writeTinyPluginDir,
  type RunningRegistry,
} from './registry-helpers.js';

/**
 * What goes wrong between berthd and a registry, with a real registry and the docker CLI; no plugin
 * is ever run (every install is `--disable`): wrong privileges, an unknown reference, a container
 * image instead of a plugin, bad and missing credentials, a taken name, the registry stopping in
 * the middle of a layer, the client going away, an upgrade whose fetch breaks off. After each,
 * nothing is half-installed: no plugin, no rootfs under `tmp/`, no partial blob, and the blobs no
 * plugin references are collected.
 */

const daemonError = (message: string): ExecResult => ({ code: 1, stdout: '', stderr: `Error response from daemon: ${message}\n` });
const USER = { username: 'user', password: 'pass' };
const CONFIG = {
  Description: 'berth failure test plugin',
  Entrypoint: ['/bin/never-run'],
  Interface: { Socket: 'f.sock', Types: ['docker.volumedriver/1.0'] },
  Network: { Type: 'host' },
  Linux: { Capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] },
};
const PRIVILEGES = [
  { Name: 'network', Description: 'permissions to access a network', Value: ['host'] },
  { Name: 'capabilities', Description: 'list of additional capabilities required', Value: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'] },
];
/** Waits until the proxy holds the transfer; fails at once if the operation ends first. */
async function held(proxy: StallingProxy, operation: Promise<unknown>): Promise<void> {
  await Promise.race([
    proxy.reached,
    operation.then((result) => {
      throw new Error(`the transfer ended before the proxy held it: ${JSON.stringify(result)}`);
    }),
  ]);
}

/** The big plugin's layer: 16 MiB that do not compress, so that a transfer can be caught half way. */
const BIG = 16 << 20;

interface EventJson {
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

describeWithRegistry(
  'plugins from a registry: failures leave nothing half-installed (docker-registry)',
  () => {
    let dir: string;
    let registry: RunningRegistry | undefined;
    let secured: RunningRegistry | undefined;
    let daemon: Berthd | undefined;
    let host: string;
    const stopLater: Array<{ stop(): Promise<void> }> = [];

    beforeAll(async () => {
      dir = await shortTempDir();
      [registry, secured] = await Promise.all([startRegistry(), startRegistry({ htpasswd: USER })]);
      host = registry.host;
      daemon = await Berthd.start({ dir: join(dir, 'd') });
      const small = await writeTinyPluginDir(join(dir, 'small'), CONFIG, { version: '1\n' });
      const big = await writeTinyPluginDir(join(dir, 'big'), CONFIG, { payload: randomPayload(BIG), version: '2\n' });
      for (const [name, source] of [
        [`${host}/berth/small:1`, small],
        [`${host}/berth/big:1`, big],
        [`${secured.host}/berth/secret:1`, small],
      ] as const) {
        const created = await docker('plugin', 'create', name, source);
        if (created.code !== 0) throw new Error(`plugin create ${name}: ${created.stderr}`);
      }
      const login = await docker('login', secured.host, '-u', USER.username, '-p', USER.password);
      if (login.code !== 0) throw new Error(`docker login: ${login.stderr}`);
      for (const name of [`${host}/berth/small:1`, `${host}/berth/big:1`, `${secured.host}/berth/secret:1`]) {
        const pushed = await docker('plugin', 'push', name);
        if (pushed.code !== 0) throw new Error(`plugin push ${name}: ${pushed.stderr}`);
        await docker('plugin', 'rm', name);
      }
      await pushContainerImage(host, 'berth/busybox');
    }, 120_000);

    afterEach(async (context) => {
      if (context.task.result?.state === 'fail' && daemon !== undefined) {
        console.error(`berthd's log, last 4000 characters:\n${daemon.stderr.slice(-4000)}`);
      }
      for (const s of stopLater.splice(0)) await s.stop().catch(() => undefined);
    });

    afterAll(async () => {
      await daemon?.cleanup();
      await Promise.all([registry?.stop(), secured?.stop()]);
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }, 60_000);

    const berthd = (): Berthd => daemon as Berthd;
    function docker(...args: string[]): Promise<ExecResult> {
      return berthd().docker(args);
    }
    const pull = (remote: string, privileges: unknown, name = ''): Promise<{ status: number; body: string; json: unknown }> =>
      berthd().http({ method: 'POST', path: `/plugins/pull?remote=${encodeURIComponent(remote)}&name=${encodeURIComponent(name)}`, body: privileges as object, timeoutMs: 60_000 });
    /** Nothing installed, nothing in tmp/ or ingest/, and (once collected) no blob. */
    const expectNothingLeft = async (): Promise<void> => {
      expect((await docker('plugin', 'ls', '-q')).stdout).toBe('');
      const left = await pluginStorage(berthd().dataRoot);
      expect([left.plugins, left.tmp, left.ingest]).toEqual([[], [], []]);
      await expect.poll(async () => (await pluginStorage(berthd().dataRoot)).blobs, { timeout: 5_000 }).toEqual([]);
    };
    const streamError = (body: string): string | undefined => {
      const last = body.trim().split('\r\n').at(-1) ?? '';
      return (JSON.parse(last) as { error?: string }).error;
    };

    it('refuses privileges that differ from what the plugin asks for (incorrect privileges), after a pull event', async () => {
      const remote = `${host}/berth/small:1`;
      const asked = await berthd().http({ path: `/plugins/privileges?remote=${remote}` });
      expect([asked.status, asked.json]).toEqual([200, PRIVILEGES]);
      const since = unixTime();
      const wrong = [
        [],
        [PRIVILEGES[0]],
        [PRIVILEGES[0], { ...PRIVILEGES[1], Value: ['CAP_SYS_ADMIN'] }],
        [PRIVILEGES[0], PRIVILEGES[1], { Name: 'host pid namespace', Value: ['true'] }],
      ];
      for (const privileges of wrong) {
        const res = await pull(remote, privileges);
        // The fetch streamed progress first: the error is the stream's last line, with 200.
        expect(res.status).toBe(200);
        expect(streamError(res.body)).toBe('incorrect privileges');
        await expectNothingLeft();
      }
      // moby logs the pull event right after the fetch, before the check.
      const events = await docker('events', '--since', since, '--until', unixTime(0.5), '--filter', 'type=plugin', '--format', '{{json .}}');
      const actions = events.stdout.trim().split('\n').map((l) => (JSON.parse(l) as EventJson).Action);
      expect(actions).toEqual(['pull', 'pull', 'pull', 'pull']);

      // Order and descriptions do not count.
      const accepted = await pull(remote, [{ Name: 'capabilities', Value: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] }, { Name: 'network', Value: ['host'] }], 'ok');
      expect(accepted.status).toBe(200);
      expect(accepted.body).not.toContain('errorDetail');
      expect((await docker('plugin', 'rm', 'ok')).code).toBe(0);
      await expectNothingLeft();
    }, 60_000);

    it('answers an unknown reference, a container image and a taken name with moby\'s texts', async () => {
      const unknown = `${host}/berth/nosuch:1`;
      expect((await berthd().http({ path: `/plugins/privileges?remote=${unknown}` })).body).toBe('[]\n');
      expect(await docker('plugin', 'install', '--grant-all-permissions', unknown)).toEqual(
        daemonError('error resolving plugin reference: manifest unknown: manifest unknown'),
      );
      expect(await docker('plugin', 'install', '--grant-all-permissions', `${host}/berth/small:nosuchtag`)).toEqual(
        daemonError('error resolving plugin reference: manifest unknown: manifest unknown'),
      );
      await expectNothingLeft();

      // TestPluginInstallImage.
      const image = await docker('plugin', 'install', '--grant-all-permissions', `${host}/berth/busybox`);
      // The CLI adds its own hint to moby's text.
      expect(image).toEqual(daemonError('Encountered remote "application/vnd.docker.container.image.v1+json"(image) when fetching - Use "docker image pull"'));
      await expectNothingLeft();

      // A name already taken (moby: 400 from pull, before anything is fetched).
      const remote = `${host}/berth/small:1`;
      expect((await docker('plugin', 'install', '--grant-all-permissions', '--disable', '--alias', 'taken', remote)).code).toBe(0);
      expect(await docker('plugin', 'install', '--grant-all-permissions', '--disable', '--alias', 'taken', remote)).toEqual(
        daemonError('plugin taken:latest already exists'),
      );
      const api = await pull(remote, PRIVILEGES, 'taken');
      expect([api.status, api.json]).toEqual([400, { message: 'plugin taken:latest already exists' }]);
      expect((await docker('plugin', 'rm', 'taken')).code).toBe(0);
      await expectNothingLeft();
    }, 60_000);

    it('refuses bad and missing credentials', async () => {
      const s = (secured as RunningRegistry).host;
      const remote = `${s}/berth/secret:1`;
      // A CLI configuration holding a wrong password for the registry.
      const wrongConfig = join(dir, 'wrong-config');
      await rm(wrongConfig, { recursive: true, force: true });
      await mkdir(wrongConfig, { recursive: true });
      await writeFile(join(wrongConfig, 'config.json'), JSON.stringify({ auths: { [s]: { auth: Buffer.from('user:wrong').toString('base64') } } }));
      const wrong = await berthd().docker(['plugin', 'install', '--grant-all-permissions', '--disable', remote], { configDir: wrongConfig });
      expect(wrong).toEqual(daemonError('error resolving plugin reference: unauthorized: authentication required'));
      // Through the API: a wrong X-Registry-Auth, and garbage (ignored: no credentials).
      for (const header of [encodeRegistryAuth({ username: 'user', password: 'nope', serverAddress: s }), '%%%garbage%%%']) {
        const res = await berthd().http({
          method: 'POST',
          path: `/plugins/pull?remote=${remote}`,
          headers: { 'X-Registry-Auth': header },
          body: PRIVILEGES,
        });
        expect([res.status, res.json]).toEqual([401, { message: 'error resolving plugin reference: unauthorized: authentication required' }]);
      }
      // The right ones work (the CLI's own configuration, from `docker login` in beforeAll).
      expect((await docker('plugin', 'install', '--grant-all-permissions', '--disable', remote)).code).toBe(0);
      expect((await docker('plugin', 'rm', remote)).code).toBe(0);
      await expectNothingLeft();
    }, 60_000);

    it('leaves nothing half-installed when the registry stops in the middle of a layer', async () => {
      // A registry of its own, serving a copy of the content, behind a proxy that holds the
      // transfer once 4 MiB of the 16 MiB layer went through; then the registry is killed.
      const doomed = await cloneRegistry(registry as RunningRegistry);
      const proxy = await StallingProxy.start(doomed.host, { pauseAfter: 4 << 20 });
      stopLater.push(proxy, doomed);
      const install = docker('plugin', 'install', '--grant-all-permissions', '--disable', `${proxy.host}/berth/big:1`);
      await held(proxy, install);
      // Mid-transfer: the layer is being written to ingest/, nothing is installed.
      await expect.poll(async () => (await pluginStorage(berthd().dataRoot)).ingest, { timeout: 5_000 }).toHaveLength(1);
      doomed.kill();
      await proxy.stop();
      const out = await install;
      expect(out.code).toBe(1);
      expect(out.stdout).toMatch(/\n[a-f0-9]{12}: Pulling fs layer\n$/);
      expect(out.stderr).toMatch(/^error fetching blob sha256:[a-f0-9]{64}: /);
      await expectNothingLeft();
      // The same plugin installs from a registry that works.
      expect((await docker('plugin', 'install', '--grant-all-permissions', '--disable', `${host}/berth/big:1`)).code).toBe(0);
      expect((await docker('plugin', 'rm', `${host}/berth/big:1`)).code).toBe(0);
      await expectNothingLeft();
    }, 60_000);

    it('aborts the fetch when the client goes away', async () => {
      const proxy = await StallingProxy.start(host, { pauseAfter: 4 << 20 });
      stopLater.push(proxy);
      const body = JSON.stringify(PRIVILEGES);
      const req = httpRequestRaw({
        socketPath: berthd().socket,
        method: 'POST',
        path: `/plugins/pull?remote=${proxy.host}/berth/big:1`,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      });
      req.on('error', () => undefined);
      const firstBytes = new Promise<void>((resolve) => req.on('response', (res) => res.once('data', () => resolve())));
      req.end(body);
      await firstBytes;
      await proxy.reached;
      req.destroy();
      // berthd aborts the download at once: the partial blob goes, nothing is installed.
      await expect.poll(async () => (await pluginStorage(berthd().dataRoot)).ingest, { timeout: 2_000, interval: 20 }).toEqual([]);
      await expectNothingLeft();
    }, 60_000);

    it('keeps the installed version when the fetch of an upgrade breaks off', async () => {
      const remote = `${host}/berth/small:1`;
      expect((await docker('plugin', 'install', '--grant-all-permissions', '--disable', '--alias', 'keep', remote)).code).toBe(0);
      const before = (await docker('plugin', 'inspect', '-f', '{{.Id}} {{.PluginReference}}', 'keep')).stdout;
      const proxy = await StallingProxy.start(host, { pauseAfter: 4 << 20 });
      stopLater.push(proxy);
      const upgrade = berthd().http({ method: 'POST', path: `/plugins/keep/upgrade?remote=${proxy.host}/berth/big:1`, body: PRIVILEGES, timeoutMs: 60_000 });
      await held(proxy, upgrade);
      await proxy.stop();
      const res = await upgrade;
      expect(res.status).toBe(200);
      expect(streamError(res.body)).toMatch(/^error fetching blob sha256:[a-f0-9]{64}: /);
      expect((await docker('plugin', 'inspect', '-f', '{{.Id}} {{.PluginReference}}', 'keep')).stdout).toBe(before);
      const id = before.split(' ')[0] as string;
      const pluginDir = join(berthd().dataRoot, 'plugins', id);
      expect((await readdir(pluginDir)).sort()).toEqual(['config.json', 'rootfs']);
      expect(await readFile(join(pluginDir, 'rootfs', 'version'), 'utf8')).toBe('1\n');
      const left = await pluginStorage(berthd().dataRoot);
      expect([left.tmp, left.ingest]).toEqual([[], []]);
      // Wrong privileges for the upgrade: refused, the old version stays too.
      const wrong = await berthd().http({ method: 'POST', path: `/plugins/keep/upgrade?remote=${host}/berth/big:1`, body: [], timeoutMs: 60_000 });
      expect(streamError(wrong.body)).toBe('incorrect privileges');
      expect(await readFile(join(pluginDir, 'rootfs', 'version'), 'utf8')).toBe('1\n');
      // And with the right ones it goes through: same ID, new rootfs.
      const upgraded = await berthd().http({ method: 'POST', path: `/plugins/keep/upgrade?remote=${host}/berth/big:1`, body: PRIVILEGES, timeoutMs: 60_000 });
      expect([upgraded.status, upgraded.headers['docker-plugin-name']]).toEqual([200, 'keep:latest']);
      expect(upgraded.body).not.toContain('errorDetail');
      expect(await readFile(join(pluginDir, 'rootfs', 'version'), 'utf8')).toBe('2\n');
      expect((await docker('plugin', 'inspect', '-f', '{{.Id}} {{.PluginReference}}', 'keep')).stdout).toBe(`${id} ${host}/berth/big:1\n`);
      expect((await docker('plugin', 'rm', 'keep')).code).toBe(0);
      await expectNothingLeft();
    }, 60_000);
  },
  { plugins: false },
);
