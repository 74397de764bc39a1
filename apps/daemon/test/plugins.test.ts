import { existsSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { Berthd, unixTime, type ExecResult } from './harness.js';
import {
  buildVolumePluginDir,
  cleanupDaemonWithOwnContainerd,
  describeWithPlugins,
  ownContainerdAddress,
  pluginLeftovers,
  processAlive,
  shortTempDir,
  taskPid,
  until,
} from './plugin-helpers.js';

/**
 * Managed plugins end to end with the real docker CLI: a volume plugin (node + a small JS
 * VolumeDriver in its rootfs) created from a directory, run by the containerd berthd starts for
 * itself on first need, used as a volume driver, crashed and restarted. Needs root, containerd,
 * runc and ldd (skipped with the reason printed otherwise, failing under CI).
 */

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });
const daemonError = (message: string): ExecResult => ({ code: 1, stdout: '', stderr: `Error response from daemon: ${message}\n` });

interface PluginJson {
  Id: string;
  Name: string;
  Enabled: boolean;
  Running: boolean;
  Settings: { Env: string[] };
  Config: { Interface: { Types: string[] } };
}

interface EventJson {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

describeWithPlugins('managed volume plugins with the docker CLI and berthd’s own containerd', () => {
  let dir: string;
  let source: string;
  let daemon: Berthd | undefined;

  beforeAll(async () => {
    dir = await shortTempDir();
    source = (await buildVolumePluginDir(join(dir, 'plugin'))).dir;
    daemon = await Berthd.start({ dir: join(dir, 'd') });
  }, 60_000);

  afterEach((context) => {
    // What berthd logged is the best clue to a failure (plugin output included).
    if (context.task.result?.state === 'fail' && daemon !== undefined) {
      console.error(`berthd's log, last 4000 characters:\n${daemon.stderr.slice(-4000)}`);
    }
  });

  afterAll(async () => {
    await cleanupDaemonWithOwnContainerd(daemon);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const berthd = (): Berthd => daemon as Berthd;
  const docker = (...args: string[]): Promise<ExecResult> => berthd().docker(args);
  const inspect = async (name: string): Promise<PluginJson> => {
    const out = await docker('plugin', 'inspect', name);
    expect(out.code, out.stderr).toBe(0);
    return (JSON.parse(out.stdout) as PluginJson[])[0] as PluginJson;
  };
  const pid = (id: string): Promise<number | undefined> => taskPid(ownContainerdAddress(berthd()), id);
  const lsLines = async (...args: string[]): Promise<string[]> => {
    const out = await docker('plugin', 'ls', ...args);
    expect(out.code, out.stderr).toBe(0);
    return out.stdout.trimEnd().split('\n');
  };

  it('creates, enables, lists, inspects, serves a volume, refuses to disable while in use, sets and removes (acceptance 1)', async () => {
    const d = berthd();
    expect(existsSync(join(d.execRoot, 'containerd', 'containerd.pid'))).toBe(false);
    expect(await docker('plugin', 'create', 'vol', source)).toEqual(ok('vol\n'));
    expect(await docker('plugin', 'enable', 'vol')).toEqual(ok('vol\n'));
    // berthd started its own containerd for it, under its exec root.
    expect(existsSync(join(d.execRoot, 'containerd', 'containerd.pid'))).toBe(true);

    const plugin = await inspect('vol');
    const { Id: id } = plugin;
    expect(plugin).toMatchObject({ Name: 'vol:latest', Enabled: true, Running: true, Settings: { Env: ['DEBUG=0'] } });
    expect(plugin.Config.Interface.Types).toEqual(['docker.volumedriver/1.0']);
    const running = await pid(id);
    expect(running !== undefined && processAlive(running)).toBe(true);

    const row = new RegExp(`^${id.slice(0, 12)}\\s+vol:latest\\s+berth test volume plugin\\s+true$`);
    const header = /^ID\s+NAME\s+DESCRIPTION\s+ENABLED$/;
    for (const filter of [[], ['--filter', 'enabled=true'], ['--filter', 'capability=volumedriver']]) {
      const lines = await lsLines(...filter);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(header);
      expect(lines[1]).toMatch(row);
    }
    expect(await lsLines('--filter', 'enabled=false')).toEqual([expect.stringMatching(header)]);
    expect(await lsLines('--filter', 'capability=authz')).toEqual([expect.stringMatching(header)]);

    for (const ref of ['vol', 'vol:latest', id, id.slice(0, 5)]) {
      expect(await docker('plugin', 'inspect', '-f', '{{.Id}} {{.Name}} {{.Enabled}}', ref)).toEqual(ok(`${id} vol:latest true\n`));
    }

    // A volume on the plugin: the plugin makes a directory in its rootfs, seen from the host. Inspect
    // shows the path as the plugin's `Get` gave it, as dockerd does; mounts give the host path.
    expect(await docker('volume', 'create', '-d', 'vol', 'v')).toEqual(ok('v\n'));
    const hostPath = join(d.dataRoot, 'plugins', id, 'rootfs', 'data', 'v');
    const volume = await docker('volume', 'inspect', 'v');
    expect(volume.code, volume.stderr).toBe(0);
    expect(JSON.parse(volume.stdout)).toEqual([
      { CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/), Driver: 'vol:latest', Labels: null, Mountpoint: '/data/v', Name: 'v', Options: null, Scope: 'local' },
    ]);
    expect(await docker('volume', 'ls', '--format', '{{.Driver}} {{.Name}}')).toEqual(ok('vol:latest v\n'));
    const mounted = await d.http({ method: 'POST', path: '/volumes/v/mount', body: { ID: 'job-1' } });
    expect([mounted.status, mounted.json]).toEqual([200, { Mountpoint: hostPath }]);
    expect((await stat(hostPath)).isDirectory()).toBe(true);
    expect((await d.http({ method: 'POST', path: '/volumes/v/unmount', body: { ID: 'job-1' } })).status).toBe(204);

    // The volume holds a reference on the plugin (TestPluginActive).
    expect(await docker('plugin', 'disable', 'vol')).toEqual(daemonError('plugin vol:latest is in use by volumes: v'));
    expect(await docker('plugin', 'rm', 'vol')).toEqual(daemonError('plugin vol:latest is in use by volumes: v'));
    expect(await docker('volume', 'rm', 'v')).toEqual(ok('v\n'));
    expect(existsSync(hostPath)).toBe(false);
    // Enabled and unused: remove still refuses without force (TestPluginBasicOps).
    expect(await docker('plugin', 'rm', 'vol')).toEqual(daemonError('plugin vol:latest is enabled'));
    expect(await docker('plugin', 'set', 'vol', 'DEBUG=1')).toEqual(
      daemonError('cannot set on an active plugin, disable plugin before setting'),
    );

    expect(await docker('plugin', 'disable', 'vol')).toEqual(ok('vol\n'));
    expect(await pid(id)).toBeUndefined();
    expect(processAlive(running as number)).toBe(false);
    expect(await lsLines()).toEqual([expect.stringMatching(header), expect.stringMatching(new RegExp(`^${id.slice(0, 12)}\\s+vol:latest\\s+.*\\s+false$`))]);
    expect(await inspect('vol')).toMatchObject({ Enabled: false, Running: false });

    expect(await docker('plugin', 'set', 'vol', 'DEBUG=1')).toEqual(ok(''));
    expect((await inspect('vol')).Settings.Env).toEqual(['DEBUG=1']);
    // The setting reaches the plugin: with DEBUG=1 it logs each request (its output is in berthd's log).
    expect(await docker('plugin', 'enable', 'vol')).toEqual(ok('vol\n'));
    expect((await docker('volume', 'ls')).code).toBe(0);
    await until(() => d.stderr.includes('VolumeDriver.List'), 10_000, 'the plugin to log a request');
    expect(await docker('plugin', 'disable', 'vol')).toEqual(ok('vol\n'));

    expect(await docker('plugin', 'rm', 'vol')).toEqual(ok('vol\n'));
    expect(await lsLines()).toEqual([expect.stringMatching(header)]);
    expect(await pluginLeftovers(d.dataRoot)).toEqual({ plugins: [], tmp: [] });
    expect(existsSync(join(d.execRoot, 'plugins', id))).toBe(false);
  }, 120_000);

  it('accepts a 5-character ID prefix everywhere (TestPluginIDPrefix) and reports create, enable, disable, remove events', async () => {
    const since = unixTime();
    expect(await docker('plugin', 'create', 'test', source)).toEqual(ok('test\n'));
    const id = (await docker('plugin', 'inspect', '-f', '{{.Id}}', 'test')).stdout.trim();
    const prefix = id.slice(0, 5);
    let ls = (await lsLines()).join('\n');
    expect(ls).toContain('test');
    expect(ls).toContain('false');
    expect(await docker('plugin', 'inspect', '-f', '{{.Settings.Env}}', prefix)).toEqual(ok('[DEBUG=0]\n'));
    expect(await docker('plugin', 'set', prefix, 'DEBUG=1')).toEqual(ok(''));
    expect(await docker('plugin', 'inspect', '-f', '{{.Settings.Env}}', prefix)).toEqual(ok('[DEBUG=1]\n'));

    expect(await docker('plugin', 'enable', prefix)).toEqual(ok(`${prefix}\n`));
    ls = (await lsLines()).join('\n');
    expect(ls).toContain('test');
    expect(ls).toContain('true');
    expect(await docker('plugin', 'disable', prefix)).toEqual(ok(`${prefix}\n`));
    ls = (await lsLines()).join('\n');
    expect(ls).toContain('false');
    expect(await docker('plugin', 'remove', prefix)).toEqual(ok(`${prefix}\n`));
    expect((await lsLines()).join('\n')).not.toContain('test');

    const out = await docker('events', '--since', since, '--until', unixTime(0.5), '--filter', 'type=plugin', '--format', '{{json .}}');
    expect(out.code, out.stderr).toBe(0);
    const events = out.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as EventJson)
      .map((e) => [e.Type, e.Action, e.Actor.ID, e.Actor.Attributes]);
    // moby: `create` names the normalised name, the others what the caller typed.
    expect(events).toEqual([
      ['plugin', 'create', id, { name: 'test:latest' }],
      ['plugin', 'enable', id, { name: prefix }],
      ['plugin', 'disable', id, { name: prefix }],
      ['plugin', 'remove', id, { name: prefix }],
    ]);
    // The default format, as the CLI prints it.
    const plain = await docker('events', '--since', since, '--until', unixTime(0.5), '--filter', 'type=plugin', '--filter', 'event=enable');
    expect(plain.stdout).toMatch(new RegExp(`^\\S+ plugin enable ${id} \\(name=${prefix}\\)\\n$`));
  }, 120_000);

  it('refuses a second enable and a second disable (TestPluginEnableDisableNegative), and removes an enabled plugin with force', async () => {
    expect(await docker('plugin', 'create', 'neg', source)).toEqual(ok('neg\n'));
    const id = (await docker('plugin', 'inspect', '-f', '{{.Id}}', 'neg')).stdout.trim();
    expect(await docker('plugin', 'enable', 'neg')).toEqual(ok('neg\n'));
    expect(await docker('plugin', 'enable', 'neg')).toEqual(daemonError('plugin already enabled: plugin neg:latest is enabled'));
    expect(await docker('plugin', 'disable', 'neg')).toEqual(ok('neg\n'));
    expect(await docker('plugin', 'disable', 'neg')).toEqual(daemonError('plugin is already disabled: plugin neg:latest found but disabled'));

    // TestPluginForceRemove: an enabled plugin goes with --force, its task too.
    expect(await docker('plugin', 'enable', 'neg')).toEqual(ok('neg\n'));
    const running = await pid(id);
    expect(await docker('plugin', 'rm', 'neg')).toEqual(daemonError('plugin neg:latest is enabled'));
    expect(await docker('plugin', 'rm', '--force', 'neg')).toEqual(ok('neg\n'));
    expect(await pid(id)).toBeUndefined();
    expect(processAlive(running as number)).toBe(false);
    expect(await pluginLeftovers(berthd().dataRoot)).toEqual({ plugins: [], tmp: [] });
  }, 120_000);

  it('runs a plugin whose process was killed again within a few seconds, its volumes still working (acceptance 4)', async () => {
    const d = berthd();
    expect(await docker('plugin', 'create', 'crashy', source)).toEqual(ok('crashy\n'));
    expect(await docker('plugin', 'enable', 'crashy')).toEqual(ok('crashy\n'));
    const { Id: id } = await inspect('crashy');
    expect(await docker('volume', 'create', '-d', 'crashy', 'c1')).toEqual(ok('c1\n'));
    const hostPath = join(d.dataRoot, 'plugins', id, 'rootfs', 'data', 'c1');

    for (let round = 0; round < 2; round++) {
      const before = (await pid(id)) as number;
      expect(processAlive(before)).toBe(true);
      process.kill(before, 'SIGKILL');
      const killedAt = Date.now();
      const after = await until(
        async () => {
          const p = await pid(id);
          return p !== undefined && p !== before && (await inspect('crashy')).Running ? p : undefined;
        },
        10_000,
        'the plugin to run again',
      );
      expect(Date.now() - killedAt).toBeLessThan(5_000);
      expect(processAlive(after)).toBe(true);
      // Enabled never wavered: it is the user's intent.
      expect(await inspect('crashy')).toMatchObject({ Enabled: true, Running: true });

      const volume = await docker('volume', 'inspect', '-f', '{{.Driver}} {{.Mountpoint}}', 'c1');
      expect(volume).toEqual(ok('crashy:latest /data/c1\n'));
      const mounted = await d.http({ method: 'POST', path: '/volumes/c1/mount', body: { ID: `after-crash-${round}` } });
      expect([mounted.status, mounted.json]).toEqual([200, { Mountpoint: hostPath }]);
      expect((await d.http({ method: 'POST', path: '/volumes/c1/unmount', body: { ID: `after-crash-${round}` } })).status).toBe(204);
    }
    expect(d.stderr).toContain('plugin exited while enabled; restarting it');

    expect(await docker('volume', 'rm', 'c1')).toEqual(ok('c1\n'));
    expect(await docker('plugin', 'rm', '-f', 'crashy')).toEqual(ok('crashy\n'));
  }, 120_000);

  it('with --live-restore, leaves its own containerd and plugins running; the next berthd adopts both; without, it stops them', async () => {
    const at = join(dir, 'd');
    const restart = async (how: 'stop' | 'kill', liveRestore: boolean): Promise<Berthd> => {
      await (how === 'kill' ? berthd().kill() : berthd().stop());
      daemon = await Berthd.start({ dir: at, args: liveRestore ? ['--live-restore'] : [] });
      return daemon;
    };
    const containerdPid = async (): Promise<number> => Number(await readFile(join(berthd().execRoot, 'containerd', 'containerd.pid'), 'utf8'));

    await restart('stop', true);
    expect(await docker('plugin', 'create', 'lr', source)).toEqual(ok('lr\n'));
    expect(await docker('plugin', 'enable', 'lr')).toEqual(ok('lr\n'));
    const { Id: id } = await inspect('lr');
    const task = (await pid(id)) as number;
    const ctd = await containerdPid();

    for (const how of ['stop', 'kill'] as const) {
      await restart(how, true);
      expect(processAlive(ctd)).toBe(true);
      expect(await containerdPid()).toBe(ctd);
      expect(await pid(id)).toBe(task);
      expect(await inspect('lr')).toMatchObject({ Enabled: true, Running: true });
      expect(await docker('volume', 'create', '-d', 'lr', `lr-${how}`)).toEqual(ok(`lr-${how}\n`));
      expect(await docker('volume', 'rm', `lr-${how}`)).toEqual(ok(`lr-${how}\n`));
    }

    // Without live-restore: the running plugin is replaced by a fresh one, on the adopted containerd...
    await restart('stop', false);
    expect(await containerdPid()).toBe(ctd);
    const fresh = (await pid(id)) as number;
    expect(fresh).not.toBe(task);
    expect(processAlive(task)).toBe(false);
    // ...and a graceful stop takes the plugins and containerd down.
    expect(await berthd().stop()).toEqual({ code: 0, signal: null });
    expect(processAlive(fresh)).toBe(false);
    expect(processAlive(ctd)).toBe(false);
  }, 120_000);
});
