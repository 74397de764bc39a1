import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { ContainerdProcess } from '@berth/plugin-executor-containerd';
import { Berthd, type ExecResult } from './harness.js';
import {
  buildVolumePluginDir,
  describeWithPlugins,
  privateContainerd,
  processAlive,
  reapContainerd,
  shortTempDir,
  taskPid,
  until,
} from './plugin-helpers.js';

/**
 * Acceptance 3: managed plugins across restarts of berthd — stopped gracefully or killed with
 * SIGKILL, with and without `--live-restore` — on a containerd of the test's own (`--containerd`).
 * Enabled plugins come back enabled and running (the same task re-attached with live-restore, a new
 * one without), disabled ones stay disabled, and the volumes on them keep working, their references
 * rebuilt.
 */

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });

describeWithPlugins('managed plugins across berthd restarts, on a containerd given with --containerd', () => {
  let dir: string;
  let containerd: ContainerdProcess | undefined;
  let daemon: Berthd | undefined;
  let onId: string;
  let offId: string;

  beforeAll(async () => {
    dir = await shortTempDir();
    containerd = await privateContainerd(join(dir, 'ctd'));
  }, 60_000);

  afterEach((context) => {
    // What berthd logged is the best clue to a failure (plugin output included).
    if (context.task.result?.state === 'fail' && daemon !== undefined) {
      console.error(`berthd's log, last 4000 characters:\n${daemon.stderr.slice(-4000)}`);
    }
  });

  afterAll(async () => {
    // Without live-restore a graceful stop takes the plugins down; then nothing may be left anyway.
    if (daemon?.running === true) await daemon.kill();
    if (containerd !== undefined) {
      await reapContainerd({ address: containerd.address, process: containerd, runtimeRoot: join(dir, 'd', 'exec', 'runtime-runc'), dir });
    }
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const start = async (options: { liveRestore: boolean }): Promise<Berthd> => {
    const args = ['--containerd', (containerd as ContainerdProcess).address, ...(options.liveRestore ? ['--live-restore'] : [])];
    daemon = await Berthd.start({ dir: join(dir, 'd'), args });
    return daemon;
  };
  const docker = (...args: string[]): Promise<ExecResult> => (daemon as Berthd).docker(args);
  const pid = (id: string): Promise<number | undefined> => taskPid((containerd as ContainerdProcess).address, id);
  const state = async (name: string): Promise<string> => (await docker('plugin', 'inspect', '-f', '{{.Enabled}} {{.Running}}', name)).stdout.trim();

  /** Everything a user relies on after a restart. */
  const expectRestored = async (): Promise<void> => {
    expect(await state('on')).toBe('true true');
    expect(await state('off')).toBe('false false');
    expect(await pid(offId)).toBeUndefined();
    const ls = await docker('plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}');
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(['off:latest false', 'on:latest true']);

    const d = daemon as Berthd;
    const hostPath = join(d.dataRoot, 'plugins', onId, 'rootfs', 'data', 'von');
    // Inspect shows the plugin's own path (as dockerd does); the mount gives the host path.
    expect(await docker('volume', 'inspect', '-f', '{{.Driver}} {{.Mountpoint}}', 'von')).toEqual(ok('on:latest /data/von\n'));
    const mounted = await d.http({ method: 'POST', path: '/volumes/von/mount', body: { ID: 'probe' } });
    expect([mounted.status, mounted.json]).toEqual([200, { Mountpoint: hostPath }]);
    expect((await d.http({ method: 'POST', path: '/volumes/von/unmount', body: { ID: 'probe' } })).status).toBe(204);
    // The volume's reference on the plugin was rebuilt from the volume store.
    expect(await docker('plugin', 'disable', 'on')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error response from daemon: plugin on:latest is in use by volumes: von\n',
    });
    // A volume on a disabled plugin cannot be created, on an enabled one it can.
    expect((await docker('volume', 'create', '-d', 'off', 'nope')).code).toBe(1);
    expect(await docker('volume', 'create', '-d', 'on', 'scratch')).toEqual(ok('scratch\n'));
    expect(await docker('volume', 'rm', 'scratch')).toEqual(ok('scratch\n'));
  };

  it('sets up an enabled plugin with a volume and a disabled plugin', async () => {
    await start({ liveRestore: false });
    const source = (await buildVolumePluginDir(join(dir, 'plugin'))).dir;
    expect(await docker('plugin', 'create', 'on', source)).toEqual(ok('on\n'));
    expect(await docker('plugin', 'create', 'off', source)).toEqual(ok('off\n'));
    expect(await docker('plugin', 'enable', 'on')).toEqual(ok('on\n'));
    expect(await docker('volume', 'create', '-d', 'on', 'von')).toEqual(ok('von\n'));
    onId = (await docker('plugin', 'inspect', '-f', '{{.Id}}', 'on')).stdout.trim();
    offId = (await docker('plugin', 'inspect', '-f', '{{.Id}}', 'off')).stdout.trim();
    await expectRestored();
  }, 60_000);

  it('without --live-restore, a graceful stop stops the plugin and the next start starts it again', async () => {
    const before = (await pid(onId)) as number;
    expect(await (daemon as Berthd).stop()).toEqual({ code: 0, signal: null });
    expect(await pid(onId)).toBeUndefined();
    expect(processAlive(before)).toBe(false);

    await start({ liveRestore: false });
    const after = await pid(onId);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    await expectRestored();
  }, 60_000);

  it('without --live-restore, after SIGKILL the plugin left running is replaced by a fresh one', async () => {
    const before = (await pid(onId)) as number;
    await (daemon as Berthd).kill();
    // Nobody stopped it: it still runs, orphaned.
    expect(processAlive(before)).toBe(true);

    await start({ liveRestore: false });
    const after = await pid(onId);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(processAlive(before)).toBe(false);
    await expectRestored();
  }, 60_000);

  it('with --live-restore, a graceful stop leaves the plugin running and the next start re-attaches to it', async () => {
    // Switching to live-restore: this start finds the plugin it must re-attach to, started by the last one.
    const first = (await pid(onId)) as number;
    expect(await (daemon as Berthd).stop()).toEqual({ code: 0, signal: null });
    await start({ liveRestore: true });
    const running = (await pid(onId)) as number;
    expect(running).not.toBe(first);
    expect(((await (daemon as Berthd).http({ path: '/info' })).json as { LiveRestoreEnabled: boolean }).LiveRestoreEnabled).toBe(true);

    expect(await (daemon as Berthd).stop()).toEqual({ code: 0, signal: null });
    expect(processAlive(running)).toBe(true);
    expect(await pid(onId)).toBe(running);

    await start({ liveRestore: true });
    expect(await pid(onId)).toBe(running);
    await expectRestored();
  }, 60_000);

  it('with --live-restore, after SIGKILL the next start re-attaches to the same task and follows its exits', async () => {
    const running = (await pid(onId)) as number;
    await (daemon as Berthd).kill();
    expect(processAlive(running)).toBe(true);

    await start({ liveRestore: true });
    expect(await pid(onId)).toBe(running);
    await expectRestored();

    // The re-attached task is followed: a crash is noticed and the plugin started again.
    process.kill(running, 'SIGKILL');
    const again = await until(
      async () => {
        const p = await pid(onId);
        return p !== undefined && p !== running && (await state('on')) === 'true true' ? p : undefined;
      },
      10_000,
      'the re-attached plugin to be restarted after its crash',
    );
    expect(processAlive(again)).toBe(true);
    await expectRestored();
  }, 60_000);

  it('cleans up: removes the volume and the plugins', async () => {
    expect(await docker('volume', 'rm', 'von')).toEqual(ok('von\n'));
    expect(await docker('plugin', 'rm', '-f', 'on')).toEqual(ok('on\n'));
    expect(await docker('plugin', 'rm', 'off')).toEqual(ok('off\n'));
    expect(await pid(onId)).toBeUndefined();
  }, 60_000);
});
