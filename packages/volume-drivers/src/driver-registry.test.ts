import { describe, expect, it } from 'vitest';
import { kindOf, notFound, BerthError } from '@berth/errdefs';
import { recordingLogger } from '../test/support.js';
import { VolumeDriverRegistry } from './driver-registry.js';
import type { PluginGetter, PluginRefMode, Volume, VolumeDriver, VolumeScope } from './types.js';

function fakeDriver(name: string, scope: string = 'local'): VolumeDriver {
  return {
    name,
    scope: async () => scope as VolumeScope,
    create: async () => ({}) as Volume,
    remove: async () => {},
    list: async () => [],
    get: async () => undefined,
  };
}

/** A plugin getter whose lookups of `slow` wait until released. */
class FakePluginGetter implements PluginGetter {
  readonly calls: Array<[string, PluginRefMode]> = [];
  plugins = new Map<string, { name: string }>();
  release: () => void = () => {};
  readonly #slow = new Promise<void>((r) => (this.release = r));

  async get(name: string, _capability: string, mode: PluginRefMode): Promise<unknown> {
    this.calls.push([name, mode]);
    if (name === 'slow') await this.#slow;
    const plugin = this.plugins.get(name);
    if (plugin === undefined) throw notFound(`plugin "${name}" not found`);
    return plugin;
  }

  async getAllByCap(): Promise<unknown[]> {
    return [...this.plugins.values()];
  }
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('VolumeDriverRegistry (moby TestGetDriver)', () => {
  it('finds registered drivers and fails for others', async () => {
    const registry = new VolumeDriverRegistry();
    const missing = await errorOf(registry.getDriver('missing'));
    expect(kindOf(missing)).toBe('not-found');
    expect(missing).toHaveProperty('message', 'error looking up volume plugin missing: plugin "missing" not found');

    const fake = fakeDriver('fake');
    expect(registry.register(fake, 'fake')).toBe(true);
    expect(await registry.getDriver('fake')).toBe(fake);
    expect(await registry.createDriver('fake')).toBe(fake);
    expect(await registry.releaseDriver('fake')).toBe(fake);
  });

  it('refuses empty and taken names', async () => {
    const registry = new VolumeDriverRegistry();
    expect(registry.register(fakeDriver('local'))).toBe(true);
    expect(registry.register(fakeDriver('local'))).toBe(false);
    expect(registry.register(fakeDriver(''))).toBe(false);
    expect(registry.register(fakeDriver('x'), '')).toBe(false);
    expect(registry.register(fakeDriver('zeta'))).toBe(true);
    expect(registry.register(fakeDriver('global'), 'alpha')).toBe(true);
    expect(registry.getDriverList()).toEqual(['alpha', 'local', 'zeta']);
    expect((await registry.getAllDrivers()).map((d) => d.name).sort()).toEqual(['global', 'local', 'zeta']);

    const err = await errorOf(registry.getDriver(''));
    expect(kindOf(err)).toBe('invalid-parameter');
    expect(err).toHaveProperty('message', 'driver name cannot be empty');
  });

  it('drops a registered driver whose scope is invalid on first lookup', async () => {
    const logger = recordingLogger();
    const registry = new VolumeDriverRegistry({ logger });
    registry.register(fakeDriver('odd', 'galactic'));
    await expect(registry.getDriver('odd')).rejects.toThrow('Driver "odd" provided an invalid capability scope: galactic');
    expect(registry.getDriverList()).toEqual([]);
    expect(logger.entries.some((e) => e.level === 'error')).toBe(true);
  });
});

describe('VolumeDriverRegistry with a plugin getter', () => {
  it('wraps lookup errors and keeps their kind', async () => {
    const getter = new FakePluginGetter();
    const registry = new VolumeDriverRegistry({ pluginGetter: getter });
    const err = await errorOf(registry.getDriver('nope'));
    expect(kindOf(err)).toBe('not-found');
    expect(err).toHaveProperty('message', 'error looking up volume plugin nope: plugin "nope" not found');
    expect(getter.calls).toEqual([['nope', 'lookup']]);
  });

  it('refuses what is not a plugin with the default adapter, and gives back an acquired reference', async () => {
    const getter = new FakePluginGetter();
    getter.plugins.set('vieux/sshfs', { name: 'vieux/sshfs' });
    const registry = new VolumeDriverRegistry({ pluginGetter: getter });
    const err = await errorOf(registry.createDriver('vieux/sshfs'));
    expect(kindOf(err)).toBe('system');
    expect(err).toHaveProperty('message', 'error making plugin client: got unknown plugin instance Object');
    expect(getter.calls).toEqual([
      ['vieux/sshfs', 'acquire'],
      ['vieux/sshfs', 'release'],
    ]);
    // Left out of the list (and logged) instead of failing it.
    expect((await registry.getAllDrivers()).map((d) => d.name)).toEqual([]);
  });

  it('builds drivers through the adapter, caching the ones it may keep', async () => {
    const getter = new FakePluginGetter();
    getter.plugins.set('v1', { name: 'v1' });
    getter.plugins.set('managed:latest', { name: 'managed:latest' });
    const registry = new VolumeDriverRegistry({
      pluginGetter: getter,
      adapt: (plugin) => {
        const { name } = plugin as { name: string };
        return { driver: fakeDriver(name, name === 'v1' ? 'global' : 'local'), cache: name === 'v1' };
      },
    });
    const v1 = await registry.getDriver('v1');
    expect(await registry.getDriver('v1')).toBe(v1);
    const managed = await registry.createDriver('managed:latest');
    expect(await registry.getDriver('managed:latest')).not.toBe(managed);
    expect(registry.getDriverList()).toEqual(['v1']);
    expect(getter.calls).toEqual([
      ['v1', 'lookup'],
      ['managed:latest', 'acquire'],
      ['managed:latest', 'lookup'],
    ]);
    expect((await registry.getAllDrivers()).map((d) => d.name).sort()).toEqual(['managed:latest', 'v1']);
  });

  it('refuses a plugin with an invalid scope and undoes the acquire', async () => {
    const getter = new FakePluginGetter();
    getter.plugins.set('weird', { name: 'weird' });
    const registry = new VolumeDriverRegistry({
      pluginGetter: getter,
      adapt: () => ({ driver: fakeDriver('weird', 'planet'), cache: true }),
    });
    await expect(registry.createDriver('weird')).rejects.toThrow('Driver "weird" provided an invalid capability scope: planet');
    expect(getter.calls).toEqual([
      ['weird', 'acquire'],
      ['weird', 'release'],
    ]);
    expect(registry.getDriverList()).toEqual([]);
  });

  it('wraps adapter failures', async () => {
    const getter = new FakePluginGetter();
    getter.plugins.set('bad', { name: 'bad' });
    const registry = new VolumeDriverRegistry({
      pluginGetter: getter,
      adapt: () => {
        throw new BerthError('unavailable', 'dial unix /run/docker/plugins/bad.sock: connect: connection refused');
      },
    });
    const err = await errorOf(registry.getDriver('bad'));
    expect(kindOf(err)).toBe('unavailable');
    expect(err).toHaveProperty('message', 'error making plugin client: dial unix /run/docker/plugins/bad.sock: connect: connection refused');
  });

  it('never blocks other names behind a slow lookup, and lets waiters give up', async () => {
    const getter = new FakePluginGetter();
    const registry = new VolumeDriverRegistry({ pluginGetter: getter });
    registry.register(fakeDriver('local'));
    const slow = errorOf(registry.getDriver('slow'));

    await expect(registry.getDriver('fast')).rejects.toThrow('plugin "fast" not found');
    expect((await registry.getDriver('local')).name).toBe('local');

    const controller = new AbortController();
    const second = registry.getDriver('slow', { signal: controller.signal });
    controller.abort(new Error('client went away'));
    await expect(second).rejects.toThrow('client went away');

    getter.release();
    expect(await slow).toHaveProperty('message', 'error looking up volume plugin slow: plugin "slow" not found');
    expect(getter.calls.filter(([name]) => name === 'slow')).toHaveLength(1);
  });
});
