import { kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { BACKENDS, FakeDriver, FakeVolume, harness, type BackendName, type Harness } from '../test/fakes.js';
import { isInUse, isNameConflict, isNotExist } from './op-error.js';
import { SqliteMetadataStore } from './sqlite-metadata-store.js';
import { VolumeStore } from './volume-store.js';
import { metadataPath } from './volumes-service.js';

async function openStore(h: Harness): Promise<VolumeStore> {
  const metadata = h.metadata() ?? (await SqliteMetadataStore.open(metadataPath(h.root)));
  return VolumeStore.open({ metadata, drivers: h.registry, events: h.events, logger: h.logger, listTimeoutMs: 2000 });
}

async function setup(backend: BackendName, ...drivers: FakeDriver[]): Promise<{ h: Harness; s: VolumeStore }> {
  const h = await harness(backend, ...drivers);
  const s = await openStore(h);
  return { h, s };
}

const names = (r: { volumes: Array<{ name: string }> }): string[] => r.volumes.map((v) => v.name);

describe.each(BACKENDS)('VolumeStore (%s metadata)', (backend) => {
  it('creates, lists and reports driver create errors (TestCreate)', async () => {
    const { s } = await setup(backend, new FakeDriver('fake'));
    const v = await s.create('fake1', 'fake');
    expect(v.name).toBe('fake1');
    expect(names(await s.find())).toEqual(['fake1']);

    await expect(s.create('none', 'none')).rejects.toThrow('create none: error looking up volume plugin none: plugin "none" not found');
    const err = await s.create('fakeerror', 'fake', { options: { error: 'create error' } }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('create fakeerror: create error');
    await s.close();
  });

  it('removes only unreferenced volumes (TestRemove)', async () => {
    const { s } = await setup(backend, new FakeDriver('fake'), new FakeDriver('noop'));
    await expect(s.remove('noop', { driver: 'noop' })).rejects.toThrow('no such volume');

    await s.create('fake1', 'fake', { reference: 'fake' });
    const err = await s.remove('fake1').catch((e: unknown) => e);
    expect(isInUse(err)).toBe(true);
    await s.release('fake1', 'fake');
    await s.remove('fake1');
    expect(names(await s.find())).toEqual([]);
    await s.close();
  });

  it('lists volumes persisted across a store restart (TestList)', async () => {
    const { h, s } = await setup(backend, new FakeDriver('fake'), new FakeDriver('fake2'));
    await s.create('test', 'fake');
    await s.create('test2', 'fake2');
    expect(names(await s.find())).toEqual(['test', 'test2']);
    await s.close();

    const again = await openStore(h);
    expect(names(await again.find())).toEqual(['test', 'test2']);
    await again.close();
  });

  it('finds by driver (TestFindByDriver)', async () => {
    const { s } = await setup(backend, new FakeDriver('fake'), new FakeDriver('noop'));
    await s.create('fake1', 'fake');
    await s.create('fake2', 'fake');
    await s.create('fake3', 'noop');
    expect(names(await s.find({ drivers: ['fake'] }))).toEqual(['fake1', 'fake2']);
    expect(names(await s.find({ drivers: ['noop'] }))).toEqual(['fake3']);
    expect(names(await s.find({ drivers: ['nosuchdriver'] }))).toEqual([]);
    await s.close();
  });

  it('finds by referenced (TestFindByReferenced)', async () => {
    const { s } = await setup(backend, new FakeDriver('fake'), new FakeDriver('noop'));
    await s.create('fake1', 'fake', { reference: 'volReference' });
    await s.create('fake2', 'fake');
    expect(names(await s.find({ referenced: false }))).toEqual(['fake2']);
    expect(names(await s.find({ referenced: true }))).toEqual(['fake1']);
    await s.close();
  });

  it('counts the same ref once (TestDerefMultipleOfSameRef)', async () => {
    const { s } = await setup(backend, new FakeDriver('fake'));
    await s.create('fake1', 'fake', { reference: 'volReference' });
    const again = await s.reference('fake1', 'volReference', { driver: 'fake' });
    expect(again.added).toBe(false);
    await s.release('fake1', 'volReference');
    await s.remove('fake1');
    await s.close();
  });

  it('stores the given labels for a volume the driver already had (TestCreateKeepOptsLabelsWhenExistsRemotely)', async () => {
    const driver = new FakeDriver('fake');
    const { h, s } = await setup(backend, driver);
    await driver.create('foo', undefined);
    const v = await s.create('foo', 'fake', { labels: { hello: 'world' } });
    expect(v.labels).toEqual({ hello: 'world' });
    expect(driver.createCalls).toBe(1);
    expect(h.events.actions()).toEqual(['create foo']);
    await s.close();
  });

  it('releases the plugin reference of a failed create (TestDefererencePluginOnCreateError)', async () => {
    const { h, s } = await setup(backend, new FakeDriver('plugin'));
    await s.create('fake1', 'plugin');
    expect(h.registry.refCount('plugin')).toBe(1);
    const err = await s.create('fake2', 'plugin', { options: { error: 'some error' } }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('some error');
    expect(h.registry.refCount('plugin')).toBe(1);
    // The failed create leaves no metadata behind, pending or not.
    expect(await s.get('fake2').catch((e: unknown) => isNotExist(e))).toBe(true);
    await s.close();
  });

  it('refuses to remove while referenced, then removes (TestRefDerefRemove)', async () => {
    const { s } = await setup(backend, new FakeDriver('test-ref-deref-remove'));
    await s.create('test', 'test-ref-deref-remove', { reference: 'test-ref' });
    const err = await s.remove('test').catch((e: unknown) => e);
    expect((err as Error).message).toBe('remove test: volume is in use - [test-ref]');
    expect(kindOf(err)).toBe('conflict');
    await s.release('test', 'test-ref');
    await s.remove('test');
    await s.close();
  });

  it('gets volumes with their labels (TestGet)', async () => {
    const { s } = await setup(backend, new FakeDriver('test-get'));
    const missing = await s.get('not-exist').catch((e: unknown) => e);
    expect((missing as Error).message).toBe('get not-exist: no such volume');
    expect(isNotExist(missing)).toBe(true);
    expect(kindOf(missing)).toBe('not-found');

    const v1 = await s.create('test', 'test-get', { labels: { a: '1' } });
    const v2 = await s.get('test');
    expect(v2).toEqual(v1);
    expect(v2.labels).toEqual({ a: '1' });
    await s.remove('test');
    await s.close();
  });

  it('gets with a reference (TestGetWithReference)', async () => {
    const { s } = await setup(backend, new FakeDriver('test-get-with-ref'));
    await expect(s.reference('not-exist', 'test-ref', { driver: 'test-get-with-ref' })).rejects.toThrow();

    const v1 = await s.create('test', 'test-get-with-ref', { labels: { a: '1' } });
    const { volume: v2 } = await s.reference('test', 'test-ref', { driver: 'test-get-with-ref' });
    expect(v2).toEqual(v1);
    const err = await s.remove('test').catch((e: unknown) => e);
    expect(isInUse(err)).toBe(true);
    await s.release('test', 'test-ref');
    await s.remove('test');
    await s.close();
  });

  it('binds a name to one driver: idempotent for the same canonical driver, a conflict for another', async () => {
    const { h, s } = await setup(backend, new FakeDriver('d1'), new FakeDriver('vieux/sshfs:latest'));
    h.registry.alias('vieux/sshfs', 'vieux/sshfs:latest');
    await s.create('v', 'vieux/sshfs:latest', { labels: { first: '1' } });
    const again = await s.create('v', 'vieux/sshfs', { labels: { second: '2' } });
    expect(again.labels).toEqual({ first: '1' });

    const err = await s.create('v', 'd1').catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      "create v: driver 'vieux/sshfs:latest' already has volume 'v': volume name must be unique",
    );
    expect(isNameConflict(err)).toBe(true);
    expect(kindOf(err)).toBe('conflict');
    expect(h.events.actions()).toEqual(['create v']);
    expect(h.registry.refCount('vieux/sshfs:latest')).toBe(1);
    await s.close();
  });

  it('purges a stale binding on create, unless references hold it', async () => {
    const d1 = new FakeDriver('d1');
    const { h, s } = await setup(backend, d1, new FakeDriver('d2'));
    await s.create('stale', 'd1');
    d1.volumes.delete('stale');
    await s.create('stale', 'd2');
    expect((await s.get('stale')).driverName).toBe('d2');
    expect(h.registry.refCount('d1')).toBe(0);

    await s.create('held', 'd1', { reference: 'c1' });
    d1.volumes.delete('held');
    await expect(s.create('held', 'd2')).rejects.toThrow(
      "create held: found references to volume 'held' in driver 'd1' but the volume was not found in the driver -- you may need to remove containers referencing this volume or force remove the volume to re-create it: volume name must be unique",
    );
    await s.close();
  });

  it('reports a binding whose driver cannot be reached as a conflict', async () => {
    const d1 = new FakeDriver('d1');
    const { s } = await setup(backend, d1);
    await s.create('v', 'd1');
    d1.getError = Object.assign(new Error('connect ECONNREFUSED /run/docker/plugins/d1.sock'), { code: 'ECONNREFUSED' });
    const err = await s.create('v', 'd1').catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `create v: found reference to volume 'v' in driver 'd1', but got an error while checking the driver: error while checking if volume "v" exists in driver "d1": connect ECONNREFUSED /run/docker/plugins/d1.sock: volume name must be unique`,
    );
    expect(kindOf(err)).toBe('conflict');
    await s.close();
  });

  it('probes every driver for a name created without one, and records the one that has it', async () => {
    const d2 = new FakeDriver('d2');
    const { h, s } = await setup(backend, new FakeDriver('local'), new FakeDriver('d1'), d2);
    d2.volumes.set('elsewhere', new FakeVolume('elsewhere', 'd2'));
    const v = await s.create('elsewhere', '');
    expect(v.driverName).toBe('d2');
    expect(h.events.actions()).toEqual([]);
    expect(h.registry.refCount('d2')).toBe(1);

    const fresh = await s.create('fresh', '');
    expect(fresh.driverName).toBe('local');
    await s.close();

    const again = await openStore(h);
    expect((await again.get('elsewhere')).driverName).toBe('d2');
    await again.close();
  });

  it('treats a volume removed behind its back as gone and forgets it', async () => {
    const d1 = new FakeDriver('d1');
    const { h, s } = await setup(backend, d1);
    await s.create('v', 'd1');
    d1.volumes.delete('v');
    await expect(s.get('v')).rejects.toThrow('get v: no such volume');
    expect(h.registry.refCount('d1')).toBe(0);
    expect(names(await s.find())).toEqual([]);
    await s.close();
  });

  it('checks the expected driver on get', async () => {
    const { s } = await setup(backend, new FakeDriver('d1'), new FakeDriver('d2'));
    await s.create('v', 'd1');
    await expect(s.get('v', { driver: 'nope' })).rejects.toThrow('get v: provided volume driver does not match stored driver');
    const err = await s.get('v', { driver: 'd2' }).catch((e: unknown) => e);
    expect(kindOf(err)).toBe('conflict');
    expect((await s.get('v', { driver: 'd1' })).driverName).toBe('d1');
    await s.close();
  });

  it('lists a failing driver from the cache, with a warning, and drops names bound elsewhere', async () => {
    const d1 = new FakeDriver('d1');
    const d2 = new FakeDriver('d2');
    const { s } = await setup(backend, d1, d2);
    await s.create('a', 'd1');
    await s.create('b', 'd2');
    d2.volumes.set('a', new FakeVolume('a', 'd2'));
    expect((await s.find()).volumes.map((v) => `${v.name}@${v.driverName}`)).toEqual(['a@d1', 'b@d2']);

    d1.listMode = 'fail';
    const result = await s.find();
    expect(result.warnings).toEqual(['list d1: plugin exploded']);
    expect(result.volumes.map((v) => `${v.name}@${v.driverName}`)).toEqual(['a@d1', 'b@d2']);
    await s.close();
  });
});
