import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
// The real executor and store, which satisfy the manager's contracts structurally.
import { ContainerdClient, ContainerdExecutor } from '@berth/plugin-executor-containerd';
import { missingRequirements, Sandbox } from '@berth/plugin-executor-containerd/testing';
import { Plugin, PluginClient, PluginStore } from '@berth/plugin-store';
import type { Logger } from '@berth/logger';
import { PluginManager } from '../src/index.js';
import { mountsUnder, recursiveUnmount } from '../src/mounts.js';
import { buildVolumePluginDir, packPluginDir, volumePluginRequirements } from '../src/testing.js';
import { until } from './helpers.js';

const missing = volumePluginRequirements() ?? missingRequirements();
if (missing !== undefined && !process.env['CI']) {
  process.stdout.write(`skipping the plugin manager's containerd tests: ${missing}\n`);
}

describe.skipIf(missing !== undefined && !process.env['CI'])('PluginManager with containerd and a real volume plugin', () => {
  let box: Sandbox;
  let client: ContainerdClient;
  let source: string;
  let propagatedSource: string;
  let store: PluginStore;
  let manager: PluginManager<Plugin>;
  let id: string;
  const logs: string[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (m, f) => logs.push(`info ${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => logs.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => logs.push(`error ${m} ${JSON.stringify(f ?? {})}`),
  };

  const open = async (liveRestore: boolean): Promise<PluginManager<Plugin>> => {
    store = new PluginStore({ legacy: false });
    manager = await PluginManager.open<Plugin>({
      root: path.join(box.dir, 'plugins'),
      execRoot: box.stateDir,
      store,
      createPlugin: (init) => new Plugin(init),
      createExecutor: (exitHandler) =>
        new ContainerdExecutor({ address: box.address, stateDir: box.stateDir, runtimeRoot: box.runtimeRoot, exitHandler }),
      liveRestore,
      logger,
      stopTimeoutMs: 5_000,
      socketTimeoutMs: 20_000,
    });
    return manager;
  };

  /** A VolumeDriver call through the store, as the volume service makes it. */
  const call = async (name: string, method: string, args: object = {}): Promise<Record<string, unknown>> => {
    const plugin = await store.get(name, 'VolumeDriver', 'lookup');
    return (await plugin.client().call(method, args, { timeoutMs: 5_000, retry: false })) as Record<string, unknown>;
  };

  const pid = async (): Promise<number> => (await client.getTask(id)).pid;

  beforeAll(async () => {
    if (missing !== undefined) throw new Error(`CI must run the plugin manager's containerd tests, but ${missing}`);
    box = await Sandbox.create();
    client = new ContainerdClient({ address: box.address });
    source = (await buildVolumePluginDir(path.join(box.dir, 'src'))).dir;
    propagatedSource = (await buildVolumePluginDir(path.join(box.dir, 'src-propagated'), { propagatedMount: true })).dir;
  }, 60_000);

  afterAll(async () => {
    await manager?.shutdown().catch(() => undefined);
    if (box !== undefined) await recursiveUnmount(box.dir).catch(() => undefined);
    client?.close();
    await box?.dispose();
  }, 60_000);

  it('creates the plugin from a tar context and enables it: its socket answers Plugin.Activate and VolumeDriver calls', async () => {
    await open(false);
    const plugin = await manager.createFromContext('vol', packPluginDir(source));
    id = plugin.id;
    await manager.enable('vol', { timeoutSeconds: 20 });
    expect(manager.isRunning('vol')).toBe(true);
    expect((await client.getTask(id)).status).toBe('running');

    const direct = new PluginClient({ addr: `unix://${plugin.socketPath ?? ''}` });
    expect(await direct.call('Plugin.Activate', undefined, { retry: false })).toEqual({ Implements: ['VolumeDriver'] });
    expect(await call('vol', 'VolumeDriver.Create', { Name: 'v1' })).toEqual({});
    const { Mountpoint } = await call('vol', 'VolumeDriver.Mount', { Name: 'v1', ID: 'x' });
    expect(Mountpoint).toBe('/data/v1');
    // The mountpoint is a real directory the plugin created, seen from the host.
    const host = plugin.scopedPath(Mountpoint as string);
    expect(host).toBe(path.join(plugin.rootfs, 'data/v1'));
    expect((await stat(host)).isDirectory()).toBe(true);
    await until(() => logs.some((l) => l.includes('listening on /run/docker/plugins/vol.sock') && l.includes(id)), 5_000, 'plugin output in the log');
  }, 60_000);

  it('disables it with SIGTERM, and enables it again with new settings', async () => {
    const started = Date.now();
    await manager.disable('vol');
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(manager.isRunning('vol')).toBe(false);
    expect(kindOf(await client.getTask(id).catch((e: unknown) => e))).toBe('not-found');

    await manager.set('vol', ['DEBUG=1']);
    await manager.enable('vol');
    await call('vol', 'VolumeDriver.List');
    await until(() => logs.some((l) => l.includes('VolumeDriver.List')), 5_000, 'a debug line');
  }, 60_000);

  it('runs a plugin whose process is killed again within a few seconds, its volumes intact', async () => {
    const before = await pid();
    await client.killTask(id, 9);
    await until(async () => manager.isRunning('vol') && (await pid().catch(() => before)) !== before, 10_000, 'the restart');
    expect(manager.inspect('vol').Enabled).toBe(true);
    expect(await call('vol', 'VolumeDriver.List')).toEqual({ Volumes: [{ Name: 'v1', Mountpoint: '/data/v1' }] });
  }, 60_000);

  it('starts enabled plugins afresh when opened again without live restore', async () => {
    const before = await pid();
    await manager.shutdown();
    expect(kindOf(await client.getTask(id).catch((e: unknown) => e))).toBe('not-found');
    await open(false);
    expect(manager.isRunning('vol')).toBe(true);
    expect(await pid()).not.toBe(before);
    expect(await call('vol', 'VolumeDriver.Get', { Name: 'v1' })).toMatchObject({ Volume: { Name: 'v1' } });
  }, 60_000);

  it('with live restore, leaves the plugin running on shutdown and re-attaches to it, exits included', async () => {
    await manager.shutdown();
    await open(true);
    const running = await pid();
    await manager.shutdown();
    expect((await client.getTask(id)).status).toBe('running');

    await open(true);
    expect(manager.isRunning('vol')).toBe(true);
    expect(await pid()).toBe(running);
    expect(await call('vol', 'VolumeDriver.Get', { Name: 'v1' })).toMatchObject({ Volume: { Name: 'v1' } });
    // The re-attached task's exit is followed too.
    await client.killTask(id, 9);
    await until(async () => manager.isRunning('vol') && (await pid().catch(() => running)) !== running, 10_000, 'the restart');
  }, 60_000);

  it('replaces a plugin left running by a daemon that died, when opened without live restore', async () => {
    // A live-restore shutdown leaves the task exactly as a killed daemon would.
    await manager.shutdown();
    const orphan = await pid();
    await open(false);
    expect(manager.isRunning('vol')).toBe(true);
    expect(await pid()).not.toBe(orphan);
    await call('vol', 'VolumeDriver.List');
  }, 60_000);

  it('serves volumes from the propagated mount of a plugin that declares one', async () => {
    const plugin = await manager.createFromContext('prop', packPluginDir(propagatedSource));
    await manager.enable('prop');
    const { Mountpoint } = (await call('prop', 'VolumeDriver.Create', { Name: 'pv' }), await call('prop', 'VolumeDriver.Path', { Name: 'pv' }));
    const host = plugin.scopedPath(Mountpoint as string);
    expect(host).toBe(path.join(box.dir, 'plugins', plugin.id, 'propagated-mount', 'pv'));
    expect((await stat(host)).isDirectory()).toBe(true);
    await manager.remove('prop', { force: true });
    expect(await mountsUnder(path.join(box.dir, 'plugins', plugin.id))).toEqual([]);
  }, 60_000);

  it('removes a running plugin with force, leaving nothing behind', async () => {
    await manager.remove('vol', { force: true });
    expect(kindOf(await client.getTask(id).catch((e: unknown) => e))).toBe('not-found');
    expect(await readdir(path.join(box.dir, 'plugins'))).toEqual(['tmp']);
    expect(await readdir(path.join(box.dir, 'plugins', 'tmp'))).toEqual([]);
  }, 60_000);
});
