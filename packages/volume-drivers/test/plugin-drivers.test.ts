/**
 * The registry with its default plugin adapter, over fake v1 plugins on real unix sockets: moby's
 * external volume driver tests at the driver level, and plugins that misbehave.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { VolumeDriverRegistry } from '../src/driver-registry.js';
import { LocalDriver } from '../src/local-driver.js';
import { createPluginAdapter } from '../src/plugin-adapter.js';
import type { Volume, VolumeDriver } from '../src/types.js';
import {
  closeMidAnswer,
  CountingPluginGetter,
  hang,
  huge,
  managedPlugin,
  raw,
  socketDir,
  startFakeVolumePlugin,
  testClient,
  v1Plugin,
  type Endpoint,
  type FakeVolumePlugin,
} from './fake-volume-plugin.js';
import { FakeMounter } from './support.js';

const ENDPOINTS: Endpoint[] = ['Create', 'Remove', 'Mount', 'Unmount', 'Path', 'Get', 'List', 'Capabilities'];
// What the volume service reads as "could not ask the driver" (anything else from Get: no such volume).
const UNREACHED = ['unavailable', 'deadline-exceeded', 'canceled'];

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: Error) => err,
  );
}

async function timed<T>(promise: Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await promise;
  return [value, performance.now() - started];
}

interface World {
  dir: string;
  getter: CountingPluginGetter;
  registry: VolumeDriverRegistry;
  local: LocalDriver;
  plugin(name: string): Promise<FakeVolumePlugin>;
}

async function world(timeouts: { longTimeoutMs?: number; shortTimeoutMs?: number } = {}): Promise<World> {
  const dir = await socketDir();
  const getter = new CountingPluginGetter();
  const registry = new VolumeDriverRegistry({ pluginGetter: getter, adapt: createPluginAdapter(timeouts) });
  const local = await LocalDriver.open({ root: join(dir, 'volumes'), mounter: new FakeMounter() });
  registry.register(local);
  const plugin = async (name: string): Promise<FakeVolumePlugin> => {
    const p = await startFakeVolumePlugin(dir, name);
    getter.add(v1Plugin(name, testClient(p.socketPath, { maxResponseBytes: 16 * 1024 * 1024 })));
    return p;
  };
  return { dir, getter, registry, local, plugin };
}

describe('VolumeDriverRegistry over plugins', () => {
  it('keeps the driver of a v1 plugin: one lookup, one Capabilities call (TestExternalVolumeDriverCapabilities)', async () => {
    const w = await world();
    const plugin = await w.plugin('test-external-volume-driver');
    for (let i = 0; i < 3; i++) {
      const driver = await w.registry.createDriver('test-external-volume-driver');
      await driver.create(`test${i}`, undefined);
      expect(await driver.scope()).toBe('global');
    }
    expect(plugin.count('Capabilities')).toBe(1);
    expect(w.getter.calls).toEqual([['test-external-volume-driver', 'acquire']]);
    expect(w.registry.getDriverList()).toEqual(['local', 'test-external-volume-driver']);
  });

  it('rebuilds the driver of a managed plugin per lookup and holds one reference per acquire', async () => {
    const w = await world();
    const fake = await startFakeVolumePlugin(w.dir, 'managed');
    const plugin = managedPlugin('managed:latest', testClient(fake.socketPath), join(w.dir, 'rootfs'));
    w.getter.add(plugin);

    const first = await w.registry.createDriver('managed:latest');
    const second = await w.registry.createDriver('managed:latest');
    expect(second).not.toBe(first);
    expect(plugin.refCount).toBe(2);
    await w.registry.releaseDriver('managed:latest');
    await w.registry.getDriver('managed:latest');
    expect(plugin.refCount).toBe(1);
    // moby re-asks a managed plugin's capabilities with every new adapter.
    expect(fake.count('Capabilities')).toBe(4);
    expect(w.registry.getDriverList()).toEqual(['local']);
  });

  it('lists every plugin driver, keeping the v1 ones it did not know yet', async () => {
    const w = await world();
    await w.plugin('legacy');
    const fake = await startFakeVolumePlugin(w.dir, 'managed');
    w.getter.add(managedPlugin('managed:latest', testClient(fake.socketPath), '/rootfs'));

    const all = await w.registry.getAllDrivers();
    expect(all.map((d) => d.name)).toEqual(['local', 'legacy', 'managed:latest']);
    const again = await w.registry.getAllDrivers();
    expect(again[1]).toBe(all[1]);
    expect(again[2]).not.toBe(all[2]);
    expect(await w.registry.getDriver('legacy')).toBe(all[1]);
    expect(w.getter.calls).toEqual([]);
    expect(w.registry.getDriverList()).toEqual(['legacy', 'local']);
  });

  it('does not block other lookups behind a plugin that is down (TestExternalVolumeDriverLookupNotBlocked)', async () => {
    const w = await world({ shortTimeoutMs: 300 });
    // A plugin whose discovery never ends (dockerd: a spec naming tcp://127.0.0.7:9999, retried).
    w.getter.gates.set('down-driver', new Promise<void>(() => undefined));
    void w.registry.createDriver('down-driver').catch(() => undefined);
    // A plugin that was found but never answers: its lookup waits for Capabilities under its own name.
    const hung = await w.plugin('hung');
    for (const e of ENDPOINTS) hung.override(e, hang);
    const hungLookup = timed(w.registry.getDriver('hung'));
    const healthy = await w.plugin('healthy');

    const [, elapsed] = await timed(
      (async () => {
        await (await w.registry.getDriver('local')).create('v2', undefined);
        await (await w.registry.getDriver('healthy')).create('v3', undefined);
      })(),
    );
    expect(elapsed).toBeLessThan(200);
    expect(healthy.count('Create')).toBe(1);

    const [driver, waited] = await hungLookup;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(await timed(w.registry.getDriver('hung')).then(([d]) => d)).toBe(driver);
  });
});

describe('plugins that misbehave', () => {
  /** Each operation of a driver, with what it gave. */
  async function exercise(driver: VolumeDriver, volume: Volume): Promise<Record<string, { kind: string; message: string; ms: number }>> {
    const out: Record<string, { kind: string; message: string; ms: number }> = {};
    const ops: Record<string, () => Promise<unknown>> = {
      create: () => driver.create('w', undefined),
      get: () => driver.get(volume.name),
      list: () => driver.list(),
      remove: () => driver.remove(volume),
      mount: () => volume.mount('m'),
      unmount: () => volume.unmount('m'),
    };
    await Promise.all(
      Object.entries(ops).map(async ([op, run]) => {
        const started = performance.now();
        const err = await errorOf(run());
        out[op] = { kind: kindOf(err), message: err.message, ms: performance.now() - started };
      }),
    );
    return out;
  }

  it('one that never answers: deadlines, while the others answer at once', async () => {
    const w = await world({ shortTimeoutMs: 200, longTimeoutMs: 300 });
    const hung = await w.plugin('hung');
    const healthy = await w.plugin('healthy');
    const driver = await w.registry.getDriver('hung');
    const volume = await driver.create('v', undefined);
    for (const e of ENDPOINTS) hung.override(e, hang);

    const results = exercise(driver, volume);
    const [, fast] = await timed(
      Promise.all([(await w.registry.getDriver('healthy')).list(), w.local.create('other', undefined), w.registry.getDriver('local')]),
    );
    expect(fast).toBeLessThan(150);
    const r = await results;
    expect(r['get']).toMatchObject({ kind: 'deadline-exceeded', message: 'VolumeDriver.Get: the plugin did not answer within 200ms' });
    expect(r['create']).toMatchObject({ kind: 'deadline-exceeded', message: 'VolumeDriver.Create: the plugin did not answer within 300ms' });
    expect(r['list']?.kind).toBe('deadline-exceeded');
    for (const [op, { kind, ms }] of Object.entries(r)) {
      expect(kind, op).toBe('deadline-exceeded');
      expect(ms, op).toBeLessThan(500);
    }
    expect(await volume.path()).toBe('');
    // Asked once, before the plugin hung; a fresh driver of it gets `local` and asks again next time.
    expect(await driver.scope()).toBe('global');
    const fresh = (createPluginAdapter({ shortTimeoutMs: 50 })(w.getter.plugins.get('hung'), {}) as { driver: VolumeDriver }).driver;
    expect(await fresh.scope()).toBe('local');
    expect(await fresh.scope()).toBe('local');
    expect(hung.count('Capabilities')).toBe(3);
    expect(healthy.count('List')).toBe(1);
  });

  it('one that answers garbage: not JSON, wrong types, 100 MB — clear errors, never "no such volume"', async () => {
    const w = await world();
    const bad = await w.plugin('garbage');
    const driver = await w.registry.getDriver('garbage');
    await driver.create('v', undefined);

    const cases: Array<[Endpoint, ReturnType<typeof raw>, string]> = [
      ['Get', raw('<html><body>It works!</body></html>'), "VolumeDriver.Get: the plugin's answer is not JSON: <html><body>It works!</body></html>"],
      ['Get', raw('{"Volume": "yes"}', 'application/json'), "VolumeDriver.Get: the plugin's answer is malformed: Volume is a string, not an object"],
      ['Get', raw('{"Volume": {"Mountpoint": 5}}', 'application/json'), "VolumeDriver.Get: the plugin's answer is malformed: Volume.Mountpoint is a number, not a string"],
      ['Get', raw('{"Volume": {"Status": "ok"}}', 'application/json'), "VolumeDriver.Get: the plugin's answer is malformed: Volume.Status is a string, not an object"],
      ['Get', raw('[1, 2]', 'application/json'), "VolumeDriver.Get: the plugin's answer is malformed: the answer is an array, not an object"],
      ['Get', raw('{"Err": 42}', 'application/json'), "VolumeDriver.Get: the plugin's answer is malformed: Err is a number, not a string"],
      ['Get', huge(100 * 1024 * 1024), "VolumeDriver.Get: the plugin's answer is larger than 16777216 bytes"],
      ['List', raw('{"Volumes": {"v": {}}}', 'application/json'), "VolumeDriver.List: the plugin's answer is malformed: Volumes is an object, not an array"],
      ['List', raw('{"Volumes": ["v"]}', 'application/json'), "VolumeDriver.List: the plugin's answer is malformed: an item of Volumes is a string, not an object"],
      ['List', raw('{"Volumes": [{"Name": 7}]}', 'application/json'), "VolumeDriver.List: the plugin's answer is malformed: Volumes[].Name is a number, not a string"],
      ['Create', raw('OK'), "VolumeDriver.Create: the plugin's answer is not JSON: OK"],
    ];
    for (const [endpoint, handler, message] of cases) {
      bad.override(endpoint, handler);
      const run = endpoint === 'Get' ? driver.get('v') : endpoint === 'List' ? driver.list() : driver.create('v', undefined);
      const [err, ms] = await timed(errorOf(run));
      expect(err.message).toBe(message);
      expect(kindOf(err)).toBe('unavailable');
      expect(ms).toBeLessThan(2000);
      bad.override(endpoint);
    }

    bad.override('Mount', raw('{"Mountpoint": ["/a"]}', 'application/json'));
    const volume = (await driver.get('v'))!;
    await expect(volume.mount('m')).rejects.toThrow("VolumeDriver.Mount: the plugin's answer is malformed: Mountpoint is an array, not a string");
    bad.override('Capabilities', raw('{"Capabilities": ["global"]}', 'application/json'));
    const fresh = createPluginAdapter()(w.getter.plugins.get('garbage'), {}) as { driver: VolumeDriver };
    expect(await fresh.driver.scope()).toBe('local');
  });

  it('one that closes the connection in the middle of its answer', async () => {
    const w = await world();
    const plugin = await w.plugin('closer');
    const driver = await w.registry.getDriver('closer');
    await driver.create('v', undefined);
    plugin.override('Get', closeMidAnswer);
    plugin.override('List', closeMidAnswer);
    for (const run of [driver.get('v'), driver.list()]) {
      const err = await errorOf(run);
      expect(err.message).toMatch(/^VolumeDriver\.(Get|List): the plugin closed the connection in the middle of its answer$/);
      expect(UNREACHED).toContain(kindOf(err));
    }
  });

  it('one that crashes: every call fails at once as unavailable, and it works again when restarted', async () => {
    const w = await world();
    const plugin = await w.plugin('crashy');
    const driver = await w.registry.getDriver('crashy');
    const volume = await driver.create('v', undefined);
    await plugin.crash();

    const r = await exercise(driver, volume);
    for (const [op, { kind, message, ms }] of Object.entries(r)) {
      expect(kind, op).toBe('unavailable');
      expect(message, op).toMatch(/ECONNREFUSED/);
      expect(ms, op).toBeLessThan(500);
    }
    await expect(volume.mount('m')).rejects.toThrow(/^VolumeDriver\.Mount: connect ECONNREFUSED/);

    // The same socket path, a new process: the kept driver reaches it.
    await rm(plugin.socketPath);
    const restarted = await startFakeVolumePlugin(w.dir, 'crashy');
    await driver.create('v', undefined);
    expect(await volume.mount('m')).toBe(restarted.mountpointOf('v'));
  });
});
