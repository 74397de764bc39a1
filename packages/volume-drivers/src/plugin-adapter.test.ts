import { kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import {
  managedPlugin,
  raw,
  recording,
  socketDir,
  startFakeVolumePlugin,
  testClient,
  v1Plugin,
  type FakeVolumePlugin,
} from '../test/fake-volume-plugin.js';
import { recordingLogger } from '../test/support.js';
import { createPluginAdapter, PluginVolumeDriver, type PluginAdapterOptions } from './plugin-adapter.js';
import type { PluginCaller, Volume } from './types.js';

async function setup(options: PluginAdapterOptions = {}): Promise<{ plugin: FakeVolumePlugin; driver: PluginVolumeDriver; client: ReturnType<typeof recording> }> {
  const plugin = await startFakeVolumePlugin(await socketDir(), 'fake');
  const client = recording(testClient(plugin.socketPath));
  return { plugin, driver: new PluginVolumeDriver(v1Plugin('fake', client), options), client };
}

const errorOf = (promise: Promise<unknown>): Promise<Error> =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: Error) => err,
  );

describe('PluginVolumeDriver: the wire protocol', () => {
  it("sends dockerd's bodies, with moby's deadlines", async () => {
    const { plugin, driver, client } = await setup();
    const v = await driver.create('v', undefined);
    await driver.create('w', { size: '1G' });
    expect(await v.mount('m1')).toBe(plugin.mountpointOf('v'));
    await v.unmount('m1');
    await v.path();
    await driver.get('v');
    await driver.list();
    await driver.scope();
    await driver.remove(v);

    expect(plugin.received.map((r) => `${r.endpoint} ${r.body}`)).toEqual([
      'Create {"Name":"v","Opts":null}\n',
      'Create {"Name":"w","Opts":{"size":"1G"}}\n',
      'Mount {"Name":"v","ID":"m1"}\n',
      'Unmount {"Name":"v","ID":"m1"}\n',
      'Path {"Name":"v"}\n',
      'Get {"Name":"v"}\n',
      'List {}\n',
      'Capabilities {}\n',
      'Remove {"Name":"v"}\n',
    ]);
    expect(client.log.map((c) => `${c.method} ${c.timeoutMs}`)).toEqual([
      'VolumeDriver.Create 120000',
      'VolumeDriver.Create 120000',
      'VolumeDriver.Mount 120000',
      'VolumeDriver.Unmount 60000',
      'VolumeDriver.Path 60000',
      'VolumeDriver.Get 60000',
      'VolumeDriver.List 60000',
      'VolumeDriver.Capabilities 60000',
      'VolumeDriver.Remove 60000',
    ]);
  });

  it('takes configured deadlines', async () => {
    const { driver, client } = await setup({ longTimeoutMs: 5000, shortTimeoutMs: 500 });
    await driver.create('v', undefined);
    await driver.list();
    expect(client.log.map((c) => c.timeoutMs)).toEqual([5000, 500]);
  });

  it("turns Err into errors with moby's texts: 200 + Err is the text alone, other statuses the client's", async () => {
    const { plugin, driver } = await setup();
    plugin.override('Create', raw('{"Err":"volume already exists"}', 'application/json'));
    let err = await errorOf(driver.create('v', undefined));
    expect(err.message).toBe('volume already exists');
    expect(kindOf(err)).toBe('system');

    plugin.override('Create', raw('{"Err":"quota exceeded"}', 'application/json', 500));
    err = await errorOf(driver.create('v', undefined));
    expect(err.message).toBe('VolumeDriver.Create: quota exceeded');
    expect(kindOf(err)).toBe('system');

    plugin.override('Create', raw('permission denied\n', 'text/plain', 500));
    expect((await errorOf(driver.create('v', undefined))).message).toBe('VolumeDriver.Create: permission denied');

    plugin.override('Create', raw('<html><body>502 Bad Gateway</body></html>', 'text/html', 502));
    expect((await errorOf(driver.create('v', undefined))).message).toBe('VolumeDriver.Create: <html><body>502 Bad Gateway</body></html>');

    // A plugin that refuses a mount (moby's TestExternalVolumeDriverUnmountOnMountFail plugin).
    plugin.override('Create');
    await driver.create('bad', { invalidOption: '1' });
    const bad = (await driver.get('bad'))!;
    expect((await errorOf(bad.mount('m'))).message).toBe('VolumeDriver.Mount: invalid argument');
    expect(plugin.count('Unmount')).toBe(0);
  });

  it('accepts loose answers: any content type, lower-case keys, missing fields, an empty body', async () => {
    const { plugin, driver } = await setup();
    plugin.override('Create', raw('', 'text/plain'));
    await driver.create('v', undefined);
    plugin.override('Get', raw('{"volume": {"mountpoint": "/srv/v"}}', 'application/vnd.docker.plugins.v1.1+json'));
    const v = (await driver.get('v'))!;
    expect(v.name).toBe('v');
    expect(v.cachedPath()).toBe('/srv/v');
    expect(await v.createdAt()).toBeUndefined();
    expect(v.status()).toBeUndefined();
    plugin.override('Get', raw('{"Volume": {"Name": "v", "CreatedAt": "", "Status": null}}', 'text/plain'));
    expect((await driver.get('v'))!.cachedPath()).toBe('');
    plugin.override('List', raw('{"Volumes": [{"Name": "v"}, null, {"Mountpoint": "/nameless"}], "Err": ""}', 'application/json'));
    expect((await driver.list()).map((x) => [x.name, x.cachedPath()])).toEqual([['v', '']]);
    plugin.override('Remove', raw('null', 'application/json'));
    await driver.remove(v);
  });
});

describe('PluginVolumeDriver: Get (TestExternalVolumeDriverGet, ...GetEmptyResponse)', () => {
  it('answers undefined for {}, {"Volume": null}, or an Err, and the volume with its status otherwise', async () => {
    const { plugin, driver } = await setup();
    await expect(driver.get('dummy')).rejects.toThrow('no such volume');
    expect(plugin.count('Get')).toBe(1);

    await driver.create('ninja', { ninja: '1' });
    expect(await driver.get('ninja')).toBeUndefined();
    plugin.override('Get', raw('{"Volume": null}', 'application/json'));
    expect(await driver.get('ninja')).toBeUndefined();
  });

  it('keeps Status and an RFC 3339 CreatedAt, and names an invalid one clearly', async () => {
    const { plugin, driver } = await setup();
    await driver.create('test', undefined);
    const v = (await driver.get('test'))!;
    expect(v.status()).toEqual({ Hello: 'world' });
    expect(v.driverName).toBe('fake');

    plugin.override('Get', raw('{"Volume": {"Name": "test", "CreatedAt": "2016-05-20T16:49:51+02:00"}}', 'application/json'));
    expect((await (await driver.get('test'))!.createdAt())?.toISOString()).toBe('2016-05-20T14:49:51.000Z');

    plugin.override('Get', raw('{"Volume": {"Name": "test", "CreatedAt": "20 May 2016"}}', 'application/json'));
    const err = await errorOf(driver.get('test'));
    expect(err.message).toBe(
      `VolumeDriver.Get: the plugin's answer is malformed: Volume.CreatedAt "20 May 2016" is not an RFC 3339 time such as "2006-01-02T15:04:05Z"`,
    );
    // Not the plugin saying "no such volume": the volume service must not forget the volume.
    expect(kindOf(err)).toBe('unavailable');
  });
});

describe('PluginVolumeDriver: mountpoints (TestExternalVolumeDriverPathCalls, ...List)', () => {
  it('lists names and mountpoints in one List call, without asking Path', async () => {
    const { plugin, driver } = await setup();
    await driver.create('abc3', undefined);
    const listed = await driver.list();
    expect(listed.map((v) => [v.name, v.driverName, v.cachedPath()])).toEqual([['abc3', 'fake', plugin.mountpointOf('abc3')]]);
    expect(plugin.count('List')).toBe(1);
    expect(plugin.count('Path')).toBe(0);
  });

  it('asks Path only while no mountpoint is known; Mount sets it, Unmount clears it', async () => {
    const { plugin, driver } = await setup();
    const v = await driver.create('test', undefined);
    expect(v.cachedPath()).toBe('');
    expect(plugin.count('Path')).toBe(0);
    expect(await v.path()).toBe(plugin.mountpointOf('test'));
    expect(await v.path()).toBe(plugin.mountpointOf('test'));
    expect(plugin.count('Path')).toBe(1);

    const fromGet = (await driver.get('test'))!;
    expect(await fromGet.path()).toBe(plugin.mountpointOf('test'));
    expect(plugin.count('Path')).toBe(1);

    await v.unmount('m');
    expect(v.cachedPath()).toBe('');
    plugin.override('Path', raw('{"Err": "not mounted"}', 'application/json'));
    expect(await v.path()).toBe('');
    expect(await v.mount('m')).toBe(plugin.mountpointOf('test'));
    expect(v.cachedPath()).toBe(plugin.mountpointOf('test'));
  });

  it('fails a mount the plugin answers without a mountpoint, and undoes it', async () => {
    const { plugin, driver } = await setup();
    const v = await driver.create('v', undefined);
    plugin.override('Mount', raw('{}', 'application/json'));
    const err = await errorOf(v.mount('m1'));
    expect(err.message).toBe('VolumeDriver.Mount: the plugin answered no Mountpoint for volume "v"');
    expect(plugin.received.at(-1)).toMatchObject({ endpoint: 'Unmount', body: '{"Name":"v","ID":"m1"}\n' });
  });

  it('maps a managed plugin’s paths into its rootfs, and does not let the registry keep its driver', async () => {
    const plugin = await startFakeVolumePlugin(await socketDir(), 'managed');
    const adapt = createPluginAdapter();
    const { driver, cache } = adapt(managedPlugin('managed:latest', testClient(plugin.socketPath), '/var/lib/berth/plugins/abc/rootfs'), {}) as {
      driver: PluginVolumeDriver;
      cache: boolean;
    };
    expect(cache).toBe(false);
    expect(driver.name).toBe('managed:latest');
    const v = await driver.create('v', undefined);
    const inRootfs = `/var/lib/berth/plugins/abc/rootfs${plugin.mountpointOf('v')}`;
    expect(await v.path()).toBe(inRootfs);
    expect(await v.mount('m')).toBe(inRootfs);
    // `Get` keeps the plugin's own path, as dockerd shows it in `volume inspect`.
    expect((await driver.get('v'))!.cachedPath()).toBe(plugin.mountpointOf('v'));
    expect((await driver.list())[0]!.cachedPath()).toBe(inRootfs);
    plugin.override('Get', raw('{"Volume": {"Name": "v"}}', 'application/json'));
    expect((await driver.get('v'))!.cachedPath()).toBe('');
  });
});

describe('PluginVolumeDriver: scope (TestExternalVolumeDriverCapabilities)', () => {
  it('asks Capabilities once and lower-cases the scope', async () => {
    const { plugin, driver } = await setup();
    plugin.scope = 'GLOBAL';
    for (let i = 0; i < 3; i++) {
      await driver.create(`test${i}`, undefined);
      expect(await driver.scope()).toBe('global');
    }
    expect(plugin.count('Capabilities')).toBe(1);
  });

  it('defaults to local: no scope, an unknown scope (with a warning), an error answer (not asked again)', async () => {
    const logger = recordingLogger();
    const dir = await socketDir();
    const scopeOf = async (answer: ReturnType<typeof raw> | string): Promise<[string, string, number]> => {
      const plugin = await startFakeVolumePlugin(dir, `p${Math.random().toString(36).slice(2, 8)}`);
      if (typeof answer === 'string') plugin.scope = answer;
      else plugin.override('Capabilities', answer);
      const driver = new PluginVolumeDriver(v1Plugin(plugin.name, testClient(plugin.socketPath)), { logger });
      return [await driver.scope(), await driver.scope(), plugin.count('Capabilities')];
    };
    expect(await scopeOf('')).toEqual(['local', 'local', 1]);
    expect(await scopeOf('planet')).toEqual(['local', 'local', 1]);
    expect(logger.entries.filter((e) => e.level === 'warn').map((e) => [e.message, e.fields?.['scope']])).toEqual([
      ['Volume driver returned an invalid scope', 'planet'],
    ]);
    expect(await scopeOf(raw('404 page not found', 'text/plain', 404))).toEqual(['local', 'local', 1]);
    expect(await scopeOf(raw('{"Err": "not implemented"}', 'application/json'))).toEqual(['local', 'local', 1]);
  });

  it('asks again after the plugin could not be reached', async () => {
    const plugin = await startFakeVolumePlugin(await socketDir(), 'flaky');
    let down = true;
    const client: PluginCaller = {
      call: (method, args, options) => (down ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) : testClient(plugin.socketPath).call(method, args, options)),
    };
    const driver = new PluginVolumeDriver(v1Plugin('flaky', client));
    expect(await driver.scope()).toBe('local');
    down = false;
    expect(await driver.scope()).toBe('global');
    expect(await driver.scope()).toBe('global');
    expect(plugin.count('Capabilities')).toBe(1);
  });
});

describe('createPluginAdapter', () => {
  it("refuses what is not a plugin with moby's text", () => {
    const adapt = createPluginAdapter();
    expect(() => adapt({ name: 'x' }, {})).toThrow('got unknown plugin instance Object');
    expect(() => adapt(undefined, {})).toThrow('got unknown plugin instance undefined');
  });

  it('asks the plugin for its client on every call (a managed plugin restarts on a new socket)', async () => {
    const dir = await socketDir();
    const first = await startFakeVolumePlugin(dir, 'one');
    const second = await startFakeVolumePlugin(dir, 'two');
    let current = testClient(first.socketPath);
    const driver = new PluginVolumeDriver({ name: 'p', client: () => current, scopedPath: (p) => p, isV1: () => false });
    const v: Volume = await driver.create('v', undefined);
    current = testClient(second.socketPath);
    await v.mount('m');
    expect([first.count('Create'), first.count('Mount'), second.count('Mount')]).toEqual([1, 0, 1]);
  });
});
