import path from 'node:path';
import { BerthError } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { fakeClock, startFakePlugin, tempDir } from '../test/fake-plugin.js';
import { managed } from '../test/managed-plugin.js';
import { LegacyPlugin, Plugin, PluginStore, type PluginClient } from './index.js';

const ID_A = `abc1${'0'.repeat(60)}`;
const ID_B = `abc2${'0'.repeat(60)}`;
const ID_C = `def0${'0'.repeat(60)}`;

async function withLegacyDir(): Promise<{ dir: string; store: PluginStore }> {
  const dir = await tempDir();
  const store = new PluginStore({
    legacy: { dirs: { socketDirs: [dir], specDirs: [dir] }, discoveryGraceMs: 0, clock: fakeClock() },
  });
  return { dir, store };
}

function storeOf(...plugins: Plugin[]): PluginStore {
  const store = new PluginStore({ legacy: false });
  for (const p of plugins) store.add(p);
  return store;
}

async function rejection(promise: Promise<unknown>): Promise<BerthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(BerthError.is(err), `expected a BerthError, got ${String(err)}`).toBe(true);
  return err as BerthError;
}

describe('PluginStore.get with managed plugins', () => {
  it('never changes the count when the capability does not match (TestStoreGetPluginNotMatchCapRefs)', async () => {
    const p = managed({ types: ['docker.whatever/1.0'] });
    const store = storeOf(p);
    const disabled = await rejection(store.get('test', 'volumedriver', 'acquire'));
    expect(disabled).toMatchObject({ kind: 'conflict', message: 'plugin test found but disabled' });
    expect(p.refCount).toBe(0);
    store.setState(p, true);
    const mismatch = await rejection(store.get('test', 'volumedriver', 'acquire'));
    expect(mismatch).toMatchObject({ kind: 'system', message: 'plugin does not provide "volumedriver" capability' });
    expect(p.refCount).toBe(0);
  });

  it('acquires, looks up and releases by the requested mode', async () => {
    const p = managed({ Enabled: true });
    const store = storeOf(p);
    expect(await store.get('test', 'VolumeDriver', 'acquire')).toBe(p);
    await store.get('test:latest', 'VolumeDriver', 'acquire');
    await store.get('test', 'VolumeDriver', 'lookup');
    expect(p.refCount).toBe(2);
    await store.get(p.id, 'VolumeDriver', 'release');
    expect(p.refCount).toBe(1);
    await expect(store.get('test', 'VolumeDriver', 'bogus' as never)).rejects.toThrow('invalid plugin reference mode');
  });

  it('does not fall back to a legacy plugin of the same name when the managed one is disabled', async () => {
    const { dir, store } = await withLegacyDir();
    await startFakePlugin(path.join(dir, 'test.sock'));
    const p = managed({ Name: 'test:latest' });
    store.add(p);
    expect((await rejection(store.get('test', 'VolumeDriver', 'lookup'))).kind).toBe('conflict');
    store.remove(p);
    expect((await store.get('test', 'VolumeDriver', 'lookup')).isV1()).toBe(true);
  });
});

describe('PluginStore name resolution', () => {
  const plugins = (): PluginStore =>
    storeOf(
      managed({ Id: ID_A, Name: 'foo:latest', Enabled: true }),
      managed({ Id: ID_B, Name: 'vieux/sshfs:latest', Enabled: true }),
      managed({ Id: ID_C, Name: 'localhost:5000/team/p:1.2', Enabled: true }),
    );

  it('resolves IDs, names, tags, familiar forms and unique ID prefixes', () => {
    const store = plugins();
    const cases: Array<[string, string]> = [
      [ID_A, ID_A],
      ['foo', ID_A],
      ['foo:latest', ID_A],
      ['library/foo', ID_A],
      ['docker.io/library/foo:latest', ID_A],
      ['index.docker.io/library/foo', ID_A],
      ['vieux/sshfs', ID_B],
      ['docker.io/vieux/sshfs:latest', ID_B],
      ['localhost:5000/team/p:1.2', ID_C],
      ['abc1', ID_A],
      ['abc2', ID_B],
      ['d', ID_C],
    ];
    for (const [input, id] of cases) expect(store.getV2Plugin(input).id, input).toBe(id);
  });

  it('reports ambiguous prefixes and unknown, digest or malformed names', () => {
    const store = plugins();
    expect(() => store.getV2Plugin('abc')).toThrow(
      expect.objectContaining({ kind: 'invalid-parameter', message: 'multiple plugins found for "abc"' }),
    );
    const missing = `${'f'.repeat(64)}`;
    for (const name of ['bar', 'foo:other', 'localhost:5000/team/p', `foo@sha256:${'a'.repeat(64)}`, 'FOO', missing, '']) {
      expect(() => store.getV2Plugin(name), name).toThrow(
        expect.objectContaining({ kind: 'not-found', message: `plugin "${name}" not found` }),
      );
    }
  });

  it('answers an ambiguous prefix in get without asking legacy plugins', async () => {
    const store = plugins();
    expect((await rejection(store.get('abc', 'volumedriver', 'lookup'))).kind).toBe('invalid-parameter');
  });
});

describe('PluginStore.get with legacy plugins', () => {
  it('falls back to legacy plugins, with moby error texts', async () => {
    const { dir, store } = await withLegacyDir();
    await startFakePlugin(path.join(dir, 'legacy.sock'), { implements: ['VolumeDriver'] });
    const plugin = await store.get('legacy', 'VolumeDriver', 'acquire');
    expect(plugin).toBeInstanceOf(LegacyPlugin);
    expect(plugin.isV1()).toBe(true);
    expect(plugin.name).toBe('legacy');

    const notFound = await rejection(store.get('nosuch', 'VolumeDriver', 'lookup'));
    expect(notFound).toMatchObject({ kind: 'not-found', message: 'plugin "nosuch" not found' });
    const wrong = await rejection(store.get('legacy', 'NetworkDriver', 'lookup'));
    expect(wrong).toMatchObject({
      kind: 'system',
      message:
        'legacy plugin: Plugin does not implement the requested driver: plugin="legacy", requested implementation="NetworkDriver"',
    });
  });

  it('wraps legacy failures as system errors but passes aborts through', async () => {
    const { dir, store } = await withLegacyDir();
    await startFakePlugin(path.join(dir, 'broken.sock'), {
      routes: { '/Plugin.Activate': (_req, res) => res.writeHead(500).end('boom') },
    });
    expect(await rejection(store.get('broken', 'VolumeDriver', 'lookup'))).toMatchObject({
      kind: 'system',
      message: 'legacy plugin: Plugin.Activate: boom',
    });
    const controller = new AbortController();
    controller.abort(new Error('caller gone'));
    await expect(store.get('broken', 'VolumeDriver', 'lookup', { signal: controller.signal })).rejects.toThrow('caller gone');
  });

  it('answers not found without a legacy registry', async () => {
    const store = new PluginStore({ legacy: false });
    expect(await rejection(store.get('x', 'VolumeDriver', 'lookup'))).toMatchObject({ message: 'plugin "x" not found' });
    expect(await store.getAllByCap('VolumeDriver')).toEqual([]);
  });
});

describe('PluginStore inventory', () => {
  it('lists enabled managed plugins by capability, then legacy ones', async () => {
    const { dir, store } = await withLegacyDir();
    await startFakePlugin(path.join(dir, 'v1.sock'), { implements: ['VolumeDriver'] });
    await startFakePlugin(path.join(dir, 'net.sock'), { implements: ['NetworkDriver'] });
    const on = managed({ Id: ID_A, Name: 'on:latest', Enabled: true });
    store.add(on);
    store.add(managed({ Id: ID_B, Name: 'off:latest' }));
    store.add(managed({ Id: ID_C, Name: 'net:latest', Enabled: true, types: ['docker.networkdriver/1.0'] }));
    expect(store.getAllManagedPluginsByCap('VolumeDriver')).toEqual([on]);
    expect((await store.getAllByCap('VolumeDriver')).map((p) => p.name)).toEqual(['on:latest', 'v1']);
  });

  it('adds, rejects ID collisions, removes, replaces and validates names', () => {
    const store = storeOf(managed({ Id: ID_A, Name: 'one:latest' }));
    expect(() => store.add(managed({ Id: ID_A, Name: 'two:latest' }))).toThrow(
      `plugin "two:latest" has the same ID ${ID_A} as "one:latest"`,
    );
    expect(() => store.validateName('one:latest')).toThrow(
      expect.objectContaining({ kind: 'conflict', message: 'plugin one:latest already exists' }),
    );
    expect(() => store.validateName('one:other')).not.toThrow();
    const all = store.getAll();
    all.clear();
    expect(store.getAll().size).toBe(1);
    store.remove(store.getV2Plugin('one'));
    expect(store.getAll().size).toBe(0);
    const replacement = managed({ Id: ID_B, Name: 'three:latest' });
    store.setAll(new Map([[ID_B, replacement]]));
    expect(store.getV2Plugin('three')).toBe(replacement);
    store.setState(replacement, true);
    expect(replacement.enabled).toBe(true);
  });
});

describe('PluginStore handlers', () => {
  it('calls managed handlers on enable and legacy handlers on activation', async () => {
    const { dir, store } = await withLegacyDir();
    await startFakePlugin(path.join(dir, 'legacynet.sock'), { implements: ['NetworkDriver'] });
    const calls: Array<[string, PluginClient]> = [];
    store.handle('NetworkDriver', (name, client) => calls.push([name, client]));
    const net = managed({ Id: ID_A, Name: 'net:latest', Enabled: true, types: ['docker.networkdriver/1.0'] });
    net.setSocketPath(path.join(dir, 'managed.sock'));
    store.add(net);
    store.callHandler(net);
    store.callHandler(managed({ Id: ID_B, types: ['docker.volumedriver/1.0', 'weird'] }));
    expect(calls.map(([name]) => name)).toEqual(['net:latest']);
    expect(calls[0]?.[1]).toBe(net.client());
    await store.get('legacynet', 'NetworkDriver', 'lookup');
    expect(calls.map(([name]) => name)).toEqual(['net:latest', 'legacynet']);
  });
});
