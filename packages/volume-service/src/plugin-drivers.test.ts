/**
 * Volumes on plugin drivers, as moby's `docker_cli_external_volume_driver_test.go` checks them
 * through the API, against a driver that behaves like berth's plugin adapter (`FakePluginDriver`).
 */
import { kindOf } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { describe, expect, it } from 'vitest';
import { BACKENDS, FakeDriver, FakePluginDriver, harness } from '../test/fakes.js';
import { isNameConflict } from './op-error.js';

const PLUGIN = 'test-external-volume-driver';
const names = (r: { volumes: Array<{ Name: string; Driver: string }> }): string[] => r.volumes.map((v) => `${v.Driver} ${v.Name}`);

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
  return [await promise, performance.now() - started];
}

async function setup(backend: (typeof BACKENDS)[number], listTimeoutMs?: number) {
  const local = new FakeDriver('local');
  const plugin = new FakePluginDriver(PLUGIN);
  const h = await harness(backend, local, plugin);
  const service = await h.open(listTimeoutMs === undefined ? {} : { listTimeoutMs });
  return { h, local, plugin, service };
}

describe.each(BACKENDS)('plugin drivers (%s metadata)', (backend) => {
  it('asks the plugin to Unmount only for a reference that is held, once', async () => {
    const { plugin, service } = await setup(backend);
    await service.create({ name: 'pv', driver: PLUGIN });
    await service.mount('pv', 'A');
    await service.mount('pv', 'C');
    expect(plugin.count('Mount')).toBe(2);
    await service.unmount('pv', 'B');
    expect(plugin.count('Unmount')).toBe(0);
    await service.unmount('pv', 'A');
    await service.unmount('pv', 'A');
    expect(plugin.count('Unmount')).toBe(1);
    await expect(service.remove('pv')).rejects.toThrow('remove pv: volume is in use - [C]');
    await service.unmount('pv', 'C');
    expect(plugin.count('Unmount')).toBe(2);
    await service.remove('pv');
  });

  it('binds a name to one driver (TestVolumeCLICreateOptionConflict)', async () => {
    const { h, plugin, service } = await setup(backend);
    await service.create({ name: 'test' });
    const err = await errorOf(service.create({ name: 'test', driver: PLUGIN }));
    expect(err.message).toBe("create test: driver 'local' already has volume 'test': volume name must be unique");
    expect(kindOf(err)).toBe('conflict');
    expect(plugin.count('Create')).toBe(0);
    const { Driver } = await service.get('test');
    await service.create({ name: 'test', driver: Driver });
    expect(h.registry.refCount(PLUGIN)).toBe(0);
  });

  it('re-creates a volume deleted inside the plugin, with new options, then on another driver (TestExternalVolumeDriverOutOfBandDelete)', async () => {
    const { h, plugin, service } = await setup(backend);
    await service.create({ name: 'test', driver: PLUGIN });
    const conflict = await errorOf(service.create({ name: 'test', driver: 'local' }));
    expect(conflict.message).toContain('must be unique');

    plugin.vols.delete('test');
    await service.create({ name: 'test', driver: PLUGIN, driverOpts: { foo: 'bar' } });
    const again = await service.get('test');
    expect([again.Driver, again.Options]).toEqual([PLUGIN, { foo: 'bar' }]);
    expect(plugin.vols.get('test')?.opts).toEqual({ foo: 'bar' });

    plugin.vols.delete('test');
    await service.create({ name: 'test', driver: 'local' });
    const local = await service.get('test');
    expect([local.Driver, local.Options]).toEqual(['local', null]);
    expect(h.registry.refCount(PLUGIN)).toBe(0);
    expect(h.registry.refCount('local')).toBe(1);
  });

  it('lists with one List call and no Path call (TestExternalVolumeDriverList, ...PathCalls)', async () => {
    const { plugin, service } = await setup(backend);
    const created = await service.create({ name: 'abc3', driver: PLUGIN });
    expect(created.Mountpoint).toBe('');
    const listed = await service.list(Filters.empty());
    expect(names(listed)).toEqual([`${PLUGIN} abc3`]);
    expect(listed.volumes[0]?.Mountpoint).toBe(plugin.mountpointOf('abc3'));
    expect(plugin.count('List')).toBe(1);
    expect(plugin.count('Path')).toBe(0);

    // inspect asks Path once when Get gave no mountpoint, as moby (a new volume per Get).
    expect((await service.get('abc3')).Mountpoint).toBe(plugin.mountpointOf('abc3'));
    expect(plugin.count('Path')).toBe(1);
  });

  it('inspects with one Get call and shows the plugin status (TestExternalVolumeDriverGet, ...GetEmptyResponse)', async () => {
    const { plugin, service } = await setup(backend);
    const missing = await errorOf(service.get('dummy'));
    expect(missing.message).toBe('get dummy: no such volume');
    expect(kindOf(missing)).toBe('not-found');
    expect(plugin.count('Get')).toBe(1);

    await service.create({ name: 'test', driver: PLUGIN });
    expect((await service.get('test', { resolveStatus: true })).Status).toEqual({ Hello: 'world' });

    await service.create({ name: 'abc2', driver: PLUGIN, driverOpts: { ninja: '1' } });
    await expect(service.get('abc2')).rejects.toThrow('get abc2: no such volume');
  });

  it('reports the plugin scope, asking Capabilities once (TestExternalVolumeDriverCapabilities)', async () => {
    const { plugin, service } = await setup(backend);
    for (let i = 0; i < 3; i++) {
      expect((await service.create({ name: `test${i}`, driver: PLUGIN })).Scope).toBe('global');
      expect((await service.get(`test${i}`)).Scope).toBe('global');
    }
    expect(plugin.count('Capabilities')).toBe(1);
  });

  it('creates without a driver on the plugin that already has the name, else on local', async () => {
    const { h, local, plugin, service } = await setup(backend);
    plugin.vols.set('remote', { opts: undefined });
    const found = await service.create({ name: 'remote' });
    expect(found.Driver).toBe(PLUGIN);
    expect([plugin.count('Create'), local.createCalls]).toEqual([0, 0]);
    expect(h.registry.refCount(PLUGIN)).toBe(1);
    expect(h.events.actions()).toEqual([]);

    expect((await service.create({ name: 'fresh' })).Driver).toBe('local');
    await service.remove('remote');
    expect(h.registry.refCount(PLUGIN)).toBe(0);
  });

  it('releases the plugin reference of a failed create and of a removed volume', async () => {
    const { h, plugin, service } = await setup(backend);
    plugin.state = 'down';
    const err = await errorOf(service.create({ name: 'v', driver: PLUGIN }));
    expect(err.message).toBe(`create v: VolumeDriver.Get: dial unix /run/docker/plugins/${PLUGIN}.sock: connect: connection refused`);
    expect(kindOf(err)).toBe('unavailable');
    expect(plugin.count('Create')).toBe(0); // not asked again after Get could not reach it
    expect(h.registry.refCount(PLUGIN)).toBe(0);

    plugin.state = 'up';
    await service.create({ name: 'v', driver: PLUGIN });
    expect(h.registry.refCount(PLUGIN)).toBe(1);
    await service.remove('v');
    expect(h.registry.refCount(PLUGIN)).toBe(0);
    await h.close(service);
    expect(await h.records()).toEqual([]);
  });

  it('never forgets a volume because its plugin is down or hung', async () => {
    const { h, plugin, service } = await setup(backend);
    await service.create({ name: 'v', driver: PLUGIN, labels: { keep: 'me' } });
    plugin.callTimeoutMs = 50;
    for (const state of ['down', 'hung'] as const) {
      plugin.state = state;
      const err = await errorOf(service.get('v'));
      expect(err.message).toMatch(new RegExp(`^get v: error while checking if volume "v" exists in driver "${PLUGIN}": VolumeDriver.Get: `));
      expect(kindOf(err)).toBe(state === 'down' ? 'unavailable' : 'deadline-exceeded');
      await expect(service.remove('v', { force: true })).rejects.toThrow(/^get v: error while checking/);
    }
    plugin.state = 'up';
    expect((await service.get('v')).Labels).toEqual({ keep: 'me' });
    expect(h.registry.refCount(PLUGIN)).toBe(1);
  });

  it('keeps every plugin volume bound to its plugin across a restart, while the plugin is away and after', async () => {
    const { h, local, plugin, service: first } = await setup(backend);
    await first.create({ name: 'remote', driver: PLUGIN, labels: { keep: 'me' } });
    await first.create({ name: 'other', driver: PLUGIN });
    await first.mount('remote', 'ctr-1');
    await h.close(first);

    // The plugin is away at start: records kept, not cached, no reference held.
    h.registry.unregister(PLUGIN);
    h.registry.refs.clear();
    let service = await h.open();
    expect(h.registry.refCount(PLUGIN)).toBe(0);
    for (const driver of [undefined, 'local']) {
      const err = await errorOf(service.create({ name: 'remote', driver }));
      expect(err.message).toBe(
        `create remote: found reference to volume 'remote' in driver '${PLUGIN}', but got an error while checking the driver: ` +
          `error while checking if volume "remote" exists in driver "${PLUGIN}": error looking up volume plugin ${PLUGIN}: plugin "${PLUGIN}" not found: volume name must be unique`,
      );
      expect(isNameConflict(err)).toBe(true);
    }
    expect(local.createCalls).toBe(0);
    await expect(service.get('remote')).rejects.toThrow(`exists in driver "${PLUGIN}"`);

    // Back (without a restart): the name is still the plugin's, with its labels and reference.
    h.registry.register(plugin);
    expect((await service.create({ name: 'remote' })).Driver).toBe(PLUGIN);
    expect((await service.get('remote')).Labels).toEqual({ keep: 'me' });
    await expect(service.remove('remote')).rejects.toThrow('remove remote: volume is in use - [ctr-1]');
    expect(h.registry.refCount(PLUGIN)).toBe(1);

    // A restart with the plugin there: one plugin reference per volume.
    h.registry.refs.clear();
    service = await h.restart(service);
    expect(h.registry.refCount(PLUGIN)).toBe(2);
    expect(names(await service.list(Filters.of([['dangling', 'false']])))).toEqual([`${PLUGIN} remote`]);
    await service.unmount('remote', 'ctr-1');
    await service.remove('remote');
    expect(h.registry.refCount(PLUGIN)).toBe(1);
  });
});

describe('a hung plugin slows nothing else down', () => {
  it('lists within the bound, naming the plugin, with every other volume listed', async () => {
    const { plugin, service } = await setup('memory', 100);
    await service.create({ name: 'mine' });
    await service.create({ name: 'theirs', driver: PLUGIN });
    plugin.state = 'hung';
    plugin.callTimeoutMs = 60_000;

    const [result, ms] = await timed(service.list(Filters.empty()));
    expect(ms).toBeLessThan(1000);
    expect(result.warnings).toEqual([`list ${PLUGIN}: driver did not answer within 100ms`]);
    expect(names(result)).toEqual(['local mine', `${PLUGIN} theirs`]);
  });

  it('lists within the bound when the plugin store itself does not answer', async () => {
    const { h, service } = await setup('memory', 100);
    await service.create({ name: 'mine' });
    await service.create({ name: 'theirs', driver: PLUGIN });
    h.registry.unregister(PLUGIN);
    h.registry.pluginListing = new Promise<void>(() => undefined);

    const [result, ms] = await timed(service.list(Filters.empty()));
    expect(ms).toBeLessThan(1000);
    expect(result.warnings).toEqual(['list: volume drivers were not listed within 100ms']);
    expect(names(result)).toEqual(['local mine', `${PLUGIN} theirs`]);
  });

  it('answers get of other volumes at once, and probes for unknown names within the bound', async () => {
    const { local, plugin, service } = await setup('memory', 100);
    await service.create({ name: 'mine' });
    await service.create({ name: 'theirs', driver: PLUGIN });
    plugin.state = 'hung';
    plugin.callTimeoutMs = 60_000;

    const caller = new AbortController();
    const stuck = service.get('theirs', { signal: caller.signal }).catch((err: unknown) => err);
    const [mine, fast] = await timed(service.get('mine'));
    expect(mine.Driver).toBe('local');
    expect(fast).toBeLessThan(50);

    const [missing, probed] = await timed(errorOf(service.get('nowhere')));
    expect(missing.message).toBe('get nowhere: no such volume');
    expect(probed).toBeLessThan(1000);
    const [created, creating] = await timed(service.create({ name: 'new-one' }));
    expect(created.Driver).toBe('local');
    expect(creating).toBeLessThan(1000);
    expect(local.volumes.has('new-one')).toBe(true);

    // A caller that gives up is not the plugin saying "no such volume": nothing is forgotten.
    caller.abort(new Error('client went away'));
    expect((await stuck) as Error).toHaveProperty('message', expect.stringMatching(/: client went away$/));
    plugin.state = 'up';
    expect((await service.get('theirs')).Driver).toBe(PLUGIN);
  });
});
