import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FakeVolumePlugin } from './fixtures/v1-volume-plugin.js';
import { Berthd, describeWithDocker, type ExecResult } from './harness.js';

/**
 * Legacy (v1) volume plugins end to end: a plugin process listening on a socket in the configured
 * directory, berthd finding it, and the real docker CLI using it as a volume driver.
 */

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });

describeWithDocker('legacy (v1) volume plugins through berthd', () => {
  let dir: string;
  let plugin: FakeVolumePlugin;
  let daemon: Berthd;
  let args: string[];

  beforeEach(async () => {
    dir = await mkdtemp('/tmp/berth-v1-');
    plugin = await FakeVolumePlugin.start({ socketDir: join(dir, 'sockets'), name: 'fake', root: join(dir, 'fake-data') });
    args = ['--plugin-socket-dir', join(dir, 'sockets'), '--plugin-spec-dir', join(dir, 'specs')];
    daemon = await Berthd.start({ args });
  });

  afterEach(async () => {
    await daemon.cleanup();
    await plugin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, lists, inspects, mounts, unmounts and removes a volume on the plugin', async () => {
    expect(await daemon.docker(['volume', 'create', '-d', 'fake', '-o', 'size=1g', 'v1'])).toEqual(ok('v1\n'));
    expect(plugin.calls.find((c) => c.method === 'VolumeDriver.Create')?.body).toEqual({ Name: 'v1', Opts: { size: '1g' } });

    const ls = await daemon.docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']);
    expect(ls.stdout.split('\n')).toContain('fake v1');
    expect(plugin.count('VolumeDriver.Path')).toBe(0);

    const inspect = await daemon.docker(['volume', 'inspect', 'v1']);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout)).toEqual([
      expect.objectContaining({
        Driver: 'fake',
        Name: 'v1',
        Mountpoint: join(dir, 'fake-data', 'v1'),
        Options: { size: '1g' },
        Scope: 'local',
        Status: { backend: 'fake' },
        CreatedAt: '0001-01-01T00:00:00Z',
      }),
    ]);

    const mounted = await daemon.http({ method: 'POST', path: '/volumes/v1/mount', body: { ID: 'client-1' } });
    expect(mounted.status).toBe(200);
    expect(mounted.json).toEqual({ Mountpoint: join(dir, 'fake-data', 'v1') });
    expect((await stat(join(dir, 'fake-data', 'v1'))).isDirectory()).toBe(true);
    expect(plugin.calls.find((c) => c.method === 'VolumeDriver.Mount')?.body).toEqual({ Name: 'v1', ID: 'client-1' });

    expect(await daemon.docker(['volume', 'rm', 'v1'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error response from daemon: remove v1: volume is in use - [client-1]\n',
    });
    expect((await daemon.http({ method: 'POST', path: '/volumes/v1/unmount', body: { ID: 'client-1' } })).status).toBe(204);
    expect(plugin.calls.find((c) => c.method === 'VolumeDriver.Unmount')?.body).toEqual({ Name: 'v1', ID: 'client-1' });

    expect(await daemon.docker(['volume', 'rm', 'v1'])).toEqual(ok('v1\n'));
    expect(plugin.volumes.has('v1')).toBe(false);
    expect(plugin.count('VolumeDriver.Capabilities')).toBe(1);
  });

  it('refuses a name bound to another driver with moby text (TestVolumeCLICreateOptionConflict)', async () => {
    expect(await daemon.docker(['volume', 'create', '-d', 'fake', 'shared'])).toEqual(ok('shared\n'));
    // An API client that names no driver gets the existing volume, wherever it lives.
    const again = await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'shared' } });
    expect([again.status, (again.json as { Driver: string }).Driver]).toEqual([201, 'fake']);
    expect(await daemon.docker(['volume', 'create', '-d', 'fake', 'shared'])).toEqual(ok('shared\n'));
    // The docker CLI sends `local` when no driver is given.
    expect(await daemon.docker(['volume', 'create', 'shared'])).toEqual({
      code: 1,
      stdout: '',
      stderr: "Error response from daemon: create shared: driver 'fake' already has volume 'shared': volume name must be unique\n",
    });
  });

  it('finds a plugin that starts after berthd, and answers "not found" for one that never does', async () => {
    // During berthd's first 15 s a lookup waits for the plugin's socket, as dockerd's retries do
    // (after that window an unknown driver is answered at once: `pnpm bench` measures it).
    const late = daemon.docker(['volume', 'create', '-d', 'late', 'x0']);
    const never = daemon.docker(['volume', 'create', '-d', 'nosuch', 'x1']);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const latePlugin = await FakeVolumePlugin.start({ socketDir: join(dir, 'sockets'), name: 'late', root: join(dir, 'late-data') });
    try {
      expect(await late).toEqual(ok('x0\n'));
      expect(latePlugin.volumes.has('x0')).toBe(true);
      expect(await never).toEqual({
        code: 1,
        stdout: '',
        stderr: 'Error response from daemon: create x1: error looking up volume plugin nosuch: plugin "nosuch" not found\n',
      });
    } finally {
      await latePlugin.close();
    }
  });

  it('lists the other volumes while a plugin hangs in its handshake, naming it in Warnings', async () => {
    expect(await daemon.docker(['volume', 'create', 'localvol'])).toEqual(ok('localvol\n'));
    const hung = await FakeVolumePlugin.start({ socketDir: join(dir, 'sockets'), name: 'hung', root: join(dir, 'hung-data') });
    hung.behaviour['Plugin.Activate'] = 'hang';
    try {
      const list = await daemon.http({ path: '/volumes', timeoutMs: 20_000 });
      expect(list.status).toBe(200);
      const body = list.json as { Volumes: Array<{ Name: string; Driver: string }>; Warnings: string[] | null };
      expect(body.Volumes.map((v) => `${v.Driver}/${v.Name}`)).toEqual(['local/localvol']);
      expect(body.Warnings).toEqual([expect.stringMatching(/^list hung: Plugin\.Activate: the plugin did not answer within \d+ms$/)]);
      expect(hung.count('Plugin.Activate')).toBe(1);
    } finally {
      await hung.close();
    }
  });

  it('keeps listing and inspecting other volumes while a plugin hangs, naming it in Warnings', async () => {
    expect(await daemon.docker(['volume', 'create', 'localvol'])).toEqual(ok('localvol\n'));
    expect(await daemon.docker(['volume', 'create', '-d', 'fake', 'pv'])).toEqual(ok('pv\n'));
    plugin.behaviour['VolumeDriver.List'] = 'hang';
    plugin.behaviour['VolumeDriver.Get'] = 'hang';

    const list = await daemon.http({ path: '/volumes', timeoutMs: 20_000 });
    expect(list.status).toBe(200);
    const body = list.json as { Volumes: Array<{ Name: string; Driver: string }>; Warnings: string[] | null };
    expect(body.Volumes.map((v) => `${v.Driver}/${v.Name}`).sort()).toEqual(['fake/pv', 'local/localvol']);
    expect(body.Warnings).toEqual([expect.stringMatching(/^list fake: /)]);

    const inspect = await daemon.http({ path: '/volumes/localvol', timeoutMs: 5_000 });
    expect(inspect.status).toBe(200);
  });

  it('keeps a plugin volume bound to its driver, with its references, across a restart', async () => {
    expect(await daemon.docker(['volume', 'create', '-d', 'fake', 'kept'])).toEqual(ok('kept\n'));
    expect((await daemon.http({ method: 'POST', path: '/volumes/kept/mount', body: { ID: 'ref-a' } })).status).toBe(200);
    daemon = await daemon.restart({ kill: true, args });

    const inspect = await daemon.http({ path: '/volumes/kept' });
    expect(inspect.json).toMatchObject({ Name: 'kept', Driver: 'fake' });
    expect((await daemon.http({ method: 'DELETE', path: '/volumes/kept' })).json).toEqual({
      message: 'remove kept: volume is in use - [ref-a]',
    });
    expect((await daemon.http({ method: 'POST', path: '/volumes/kept/unmount', body: { ID: 'ref-a' } })).status).toBe(204);
    expect((await daemon.http({ method: 'DELETE', path: '/volumes/kept' })).status).toBe(204);
    expect(plugin.volumes.has('kept')).toBe(false);
  });

  it('starts without waiting for a plugin that is away, and gives its volume back, references and all, when it returns', async () => {
    expect(await daemon.docker(['volume', 'create', '-d', 'fake', 'away'])).toEqual(ok('away\n'));
    expect((await daemon.http({ method: 'POST', path: '/volumes/away/mount', body: { ID: 'ref-a' } })).status).toBe(200);
    const kept = plugin.volumes.get('away');
    await plugin.close();

    // dockerd looks for the plugin of each restored volume for about 15 s before it serves anything.
    const started = Date.now();
    daemon = await daemon.restart({ kill: true, args });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await daemon.docker(['volume', 'create', 'other'])).toEqual(ok('other\n'));

    plugin = await FakeVolumePlugin.start({ socketDir: join(dir, 'sockets'), name: 'fake', root: join(dir, 'fake-data') });
    plugin.volumes.set('away', kept as NonNullable<typeof kept>);
    expect((await daemon.http({ path: '/volumes/away' })).json).toMatchObject({ Name: 'away', Driver: 'fake' });
    expect((await daemon.http({ method: 'DELETE', path: '/volumes/away' })).json).toEqual({
      message: 'remove away: volume is in use - [ref-a]',
    });
  });
});
