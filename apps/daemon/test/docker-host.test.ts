import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BoltFile, checkBolt, writeBolt } from '@berth/bbolt';
import { Dockerd, describeWithDockerd, dockerd } from './dockerd-helpers.js';
import { FakeVolumePlugin } from './fixtures/v1-volume-plugin.js';
import { Berthd, runBerthd, type ExecResult } from './harness.js';
import { buildVolumePluginDir, cleanupDaemonWithOwnContainerd, shortTempDir } from './plugin-helpers.js';
import type { ListedVolume } from './state-check.js';

/**
 * Moving a Docker host to berth and back (issue 14), with the reference dockerd 20.10:
 * 1. volumes (labels, options, a legacy-plugin volume), a file written by a container, and an
 *    enabled managed plugin with a volume, all made through dockerd; dockerd stopped; berthd on
 *    the same data-root shows every volume as dockerd did, the file, and the plugin serving its volume;
 * 2. volumes made through berthd, `berthd export-docker-metadata`, dockerd on that data-root shows
 *    them as berthd did, and goes on writing its metadata.db.
 * dockerd runs in a mount namespace of its own with its own containerd (see `Dockerd`), so that the
 * legacy plugin's socket dir is its /run/docker/plugins without touching the host's.
 */

const succeeds = async (result: Promise<ExecResult>): Promise<string> => {
  const out = await result;
  expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
  return out.stdout;
};

const sha256 = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

/** What a user compares: every field but the creation time, which each daemon reads from the disk its own way. */
const shown = (volumes: ListedVolume[]) =>
  volumes.map(({ Name, Driver, Labels, Options, Mountpoint, Scope }) => ({ Name, Driver, Labels, Options, Mountpoint, Scope }));

describeWithDockerd('a Docker host moved to berth and back', () => {
  let dir: string;
  let legacy: FakeVolumePlugin;
  let pluginSource: string;
  let reference: Dockerd | undefined;
  let berth: Berthd | undefined;
  let sockets: string;

  beforeAll(async () => {
    dir = await shortTempDir();
    sockets = join(dir, 'sockets');
    legacy = await FakeVolumePlugin.start({ socketDir: sockets, name: 'legacy', root: join(dir, 'legacy-data') });
    pluginSource = (await buildVolumePluginDir(join(dir, 'plugin'), { propagatedMount: true })).dir;
  }, 60_000);

  afterEach(async (context) => {
    if (context.task.result?.state === 'fail') {
      console.error(`dockerd's log:\n${(await reference?.logTail()) ?? ''}\nberthd's log:\n${berth?.stderr.slice(-4000) ?? ''}`);
    }
    await reference?.stop();
    reference = undefined;
    await cleanupDaemonWithOwnContainerd(berth);
    berth = undefined;
  }, 120_000);

  afterAll(async () => {
    await legacy?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const berthArgs = (): string[] => ['--plugin-socket-dir', sockets, '--plugin-spec-dir', join(dir, 'specs')];
  const viaDockerd = (...args: string[]): Promise<string> => succeeds((reference as Dockerd).docker(args, join(dir, 'cli')));
  const viaBerthd = (...args: string[]): Promise<string> => succeeds((berth as Berthd).docker(args));
  const inspect = async (via: (...args: string[]) => Promise<string>, names: string[]): Promise<ListedVolume[]> =>
    JSON.parse(await via('volume', 'inspect', ...names)) as ListedVolume[];

  it('berthd adopts what dockerd left: volumes with labels, options and drivers, the data, an enabled managed plugin', async () => {
    const home = join(dir, 'host1');
    const dataRoot = join(home, 'data');
    reference = await Dockerd.start(dockerd.path as string, { dir: join(dir, 'dockerd1'), dataRoot, legacyPluginSockets: sockets });

    await viaDockerd('volume', 'create', '--label', 'team=a', '--label', 'tier=db', 'dv1');
    await viaDockerd('volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=8m', 'dv2');
    await viaDockerd('volume', 'create', 'dv3');
    await viaDockerd('volume', 'create', '-d', 'legacy', '--label', 'on=v1', '-o', 'size=1g', 'lv1');
    await viaDockerd('plugin', 'create', 'myplug', pluginSource);
    await viaDockerd('plugin', 'enable', 'myplug');
    await viaDockerd('volume', 'create', '-d', 'myplug', '--label', 'on=managed', 'pv1');
    // Files written by a container dockerd runs, into a local volume and into the plugin's.
    await succeeds(runImport(reference, join(dir, 'cli'), join(pluginSource, 'rootfs')));
    const write = (volume: string, text: string) =>
      viaDockerd('run', '--rm', '--network', 'none', '-v', `${volume}:/data`, 'nodeimg', '/usr/bin/node', '-e', `require('fs').writeFileSync('/data/hello.txt', ${JSON.stringify(text)})`);
    await write('dv1', 'written through dockerd\n');
    await write('pv1', 'in the plugin, through dockerd\n');

    const names = ['dv1', 'dv2', 'dv3', 'lv1', 'pv1'];
    const listed = await viaDockerd('volume', 'ls', '--format', '{{.Driver}} {{.Name}}');
    const before = await inspect(viaDockerd, names);
    expect(before.map((v) => [v.Name, v.Driver])).toEqual([['dv1', 'local'], ['dv2', 'local'], ['dv3', 'local'], ['lv1', 'legacy'], ['pv1', 'myplug:latest']]);
    await reference.stop();
    reference = undefined;
    const metadataDb = join(dataRoot, 'volumes', 'metadata.db');
    const dbDigest = await sha256(metadataDb);

    berth = await Berthd.start({ dir: home, args: berthArgs() });
    expect(berth.stderr).toMatch(/Adopted 5 volumes from Docker's metadata\" .*adopted=5 skipped=0/);
    expect(await viaBerthd('volume', 'ls', '--format', '{{.Driver}} {{.Name}}')).toBe(listed);
    expect(shown(await inspect(viaBerthd, names))).toEqual(shown(before));
    expect(await sha256(metadataDb)).toBe(dbDigest);

    // The data is there, at the mountpoint berthd gives.
    const mounted = await berth.http({ method: 'POST', path: '/volumes/dv1/mount', body: { ID: 'reader' } });
    expect(mounted.status).toBe(200);
    const { Mountpoint } = mounted.json as { Mountpoint: string };
    expect(await readFile(join(Mountpoint, 'hello.txt'), 'utf8')).toBe('written through dockerd\n');
    expect((await berth.http({ method: 'POST', path: '/volumes/dv1/unmount', body: { ID: 'reader' } })).status).toBe(204);

    // The managed plugin is enabled, runs, and serves its volume with the file written through dockerd.
    expect(await viaBerthd('plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}')).toBe('myplug:latest true\n');
    const onPlugin = await berth.http({ method: 'POST', path: '/volumes/pv1/mount', body: { ID: 'reader' } });
    expect(onPlugin.status, onPlugin.body).toBe(200);
    const pluginPath = (onPlugin.json as { Mountpoint: string }).Mountpoint;
    expect(await readFile(join(pluginPath, 'hello.txt'), 'utf8')).toBe('in the plugin, through dockerd\n');
    expect((await berth.http({ method: 'POST', path: '/volumes/pv1/unmount', body: { ID: 'reader' } })).status).toBe(204);
    await viaBerthd('volume', 'create', '-d', 'myplug', 'pv2');
    expect(await viaBerthd('volume', 'ls', '-q', '--filter', 'driver=myplug:latest')).toBe('pv1\npv2\n');
    // The legacy plugin's volume is back on its driver.
    expect(legacy.volumes.has('lv1')).toBe(true);
    expect((await berth.http({ method: 'POST', path: '/volumes/lv1/mount', body: { ID: 'x' } })).status).toBe(200);
    expect((await berth.http({ method: 'POST', path: '/volumes/lv1/unmount', body: { ID: 'x' } })).status).toBe(204);

    // A restart keeps all of it, without adopting again.
    berth = await berth.restart({ args: berthArgs() });
    expect(berth.stderr).not.toContain('Adopted');
    expect(shown(await inspect(viaBerthd, names))).toEqual(shown(before));
    await viaBerthd('volume', 'rm', 'pv2');
  }, 300_000);

  it("dockerd takes back what berthd made, after export-docker-metadata", async () => {
    const home = join(dir, 'host2');
    const dataRoot = join(home, 'data');
    berth = await Berthd.start({ dir: home, args: berthArgs() });
    await viaBerthd('volume', 'create', '--label', 'team=b', '--label', 'com.example.note=<&>', 'bv1');
    await viaBerthd('volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=4m,uid=1000', '--label', 'tmp=yes', 'bv2');
    await viaBerthd('volume', 'create', 'bv3');
    await viaBerthd('volume', 'create', '-d', 'legacy', '--label', 'on=v1', '-o', 'size=2g', 'blv1');
    for (let i = 0; i < 300; i++) await (berth as Berthd).http({ method: 'POST', path: '/volumes/create', body: { Name: `many-${i}`, Labels: { i: String(i) } } });
    const names = ['bv1', 'bv2', 'bv3', 'blv1', 'many-0', 'many-299'];
    const listed = await viaBerthd('volume', 'ls', '--format', '{{.Driver}} {{.Name}}');
    const before = await inspect(viaBerthd, names);
    expect(before[0]?.Labels).toEqual({ team: 'b', 'com.example.note': '<&>' });

    // Not while berthd runs.
    const refused = await runBerthd(['export-docker-metadata', '--data-root', dataRoot]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^export-docker-metadata: data-root ${dataRoot} is in use by another berthd \\(PID ${(berth as Berthd).pid}\\)`));
    await berth.stop();

    const exported = await runBerthd(['export-docker-metadata', '--data-root', dataRoot]);
    const metadataDb = join(dataRoot, 'volumes', 'metadata.db');
    expect(exported).toEqual({
      code: 0,
      stdout: `Exported 304 volumes to ${metadataDb}\nberth's own store was kept as ${join(dataRoot, 'volumes', 'metadata.sqlite')}.exported; the next berthd on ${dataRoot} adopts ${metadataDb} again.\n`,
      stderr: '',
    });
    expect(checkBolt(await BoltFile.open(join(dataRoot, 'volumes', 'metadata.db')))).toEqual([]);

    reference = await Dockerd.start(dockerd.path as string, { dir: join(dir, 'dockerd2'), dataRoot, legacyPluginSockets: sockets });
    expect(await viaDockerd('volume', 'ls', '--format', '{{.Driver}} {{.Name}}')).toBe(listed);
    expect(shown(await inspect(viaDockerd, names))).toEqual(shown(before));

    // dockerd writes to the file as its own, and reads it back after a restart.
    await viaDockerd('volume', 'create', '--label', 'new=1', 'made-by-dockerd');
    for (let i = 0; i < 100; i++) await viaDockerd('volume', 'rm', `many-${i}`);
    await reference.stop();
    const file = await BoltFile.open(join(dataRoot, 'volumes', 'metadata.db'));
    expect(checkBolt(file)).toEqual([]);
    expect([...(file.bucket('volumes')?.entries() ?? [])]).toHaveLength(205);
    reference = await Dockerd.start(dockerd.path as string, { dir: join(dir, 'dockerd2'), dataRoot, legacyPluginSockets: sockets });
    expect(shown(await inspect(viaDockerd, ['made-by-dockerd', 'bv1', 'many-299']))).toEqual([
      expect.objectContaining({ Name: 'made-by-dockerd', Labels: { new: '1' } }),
      ...shown(before).filter((v) => v.Name === 'bv1' || v.Name === 'many-299'),
    ]);
    const names2 = listed.split('\n').filter(Boolean).map((line) => line.split(' ')[1] as string);
    const expected = [...names2.filter((n) => !/^many-(\d|[1-9]\d)$/.test(n)), 'made-by-dockerd'].sort();
    expect((await viaDockerd('volume', 'ls', '-q')).split('\n').filter(Boolean).sort()).toEqual(expected);
    await reference.stop();
    reference = undefined;

    // And to berth once more: what dockerd changed comes along.
    berth = await Berthd.start({ dir: home, args: berthArgs() });
    expect(berth.stderr).toMatch(/Adopted 205 volumes from Docker's metadata/);
    expect((await viaBerthd('volume', 'ls', '-q')).split('\n').filter(Boolean).sort()).toEqual(expected);
    expect((await inspect(viaBerthd, ['made-by-dockerd']))[0]?.Labels).toEqual({ new: '1' });
  }, 300_000);
});

describe('berthd on a damaged metadata.db', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('refuses to start with an error naming the file, and leaves the data-root as it was', async () => {
    dir = await shortTempDir();
    const dataRoot = join(dir, 'data');
    const volumes = join(dataRoot, 'volumes');
    const file = join(volumes, 'metadata.db');
    const entries = Array.from({ length: 500 }, (_, i) => ({ key: `v${i}`, value: Buffer.from(JSON.stringify({ Name: `v${i}`, Driver: 'local', Labels: null, Options: null })) }));
    const whole = writeBolt([{ name: 'volumes', entries }]);
    await Berthd.start({ dir }).then((b) => b.stop()); // lay out a data-root as berthd would, then take its metadata away
    await rm(join(volumes, 'metadata.sqlite'), { force: true });
    await rm(join(volumes, 'metadata.sqlite-wal'), { force: true });

    for (const [what, bytes, text] of [
      ['truncated', whole.subarray(0, whole.byteLength / 2), `${file}: truncated bbolt file: its ${whole.byteLength / 4096} pages of 4096 bytes need ${whole.byteLength} bytes, the file has ${whole.byteLength / 2}`],
      ['garbled', Buffer.alloc(whole.byteLength, 0x42), `${file}: not a bbolt file, or both meta pages are damaged (page 0: bad magic 0x42424242`],
    ] as const) {
      await writeFile(file, bytes, { mode: 0o600 });
      const before = await snapshot(dataRoot);
      const run = await runBerthd(['--data-root', dataRoot, '--exec-root', join(dir, 'exec'), '-H', `unix://${join(dir, 'b.sock')}`, '--config-file', join(dir, 'daemon.json')]);
      expect(run.code, what).toBe(1);
      expect(run.stderr, what).toContain(`failed to start daemon: error reading Docker's volume metadata: ${text}`);
      expect(run.stderr, what).toContain('nothing was changed: restore the file, or move it out of the data-root');
      expect(await snapshot(dataRoot), what).toEqual(before);
    }
  }, 60_000);
});

/**
 * Every path under `root` with its type, mode, size and (for files) content digest; the data-root
 * lock file only by name, as it holds the PID of the last berthd that locked it (every start does).
 */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const st = await stat(path);
    const content = st.isFile() && path !== join(root, 'berthd.lock') ? `${st.size} ${await sha256(path)}` : '';
    out.push(`${path.slice(root.length) || '/'} ${st.mode.toString(8)} ${content}`);
    if (st.isDirectory()) for (const name of (await readdir(path)).sort()) await walk(join(path, name));
  };
  await walk(root);
  return out;
}

/** `docker import` of a directory as the image `nodeimg` (the test plugin's rootfs: node and its libraries). */
async function runImport(daemon: Dockerd, configDir: string, rootfs: string): Promise<ExecResult> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const tar = spawn('tar', ['-C', rootfs, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const importer = spawn('docker', ['import', '-', 'nodeimg'], {
      stdio: [tar.stdout, 'pipe', 'pipe'],
      env: { ...process.env, DOCKER_HOST: `unix://${daemon.socket}`, DOCKER_CONFIG: configDir },
    });
    let stdout = '';
    let stderr = '';
    importer.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    importer.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    importer.on('error', reject);
    importer.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
