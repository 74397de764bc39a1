import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, kindOf } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BACKENDS, FAKE_CREATED_AT, FakeDriver, FakeVolume, harness, scratchDir } from '../test/fakes.js';
import { ANONYMOUS_LABEL } from './list-filters.js';
import { isNameConflict, isNotExist } from './op-error.js';
import { SqliteMetadataStore } from './sqlite-metadata-store.js';
import { metadataPath } from './volumes-service.js';

const originalTZ = process.env['TZ'];
beforeEach(() => {
  process.env['TZ'] = 'UTC';
});
afterEach(() => {
  if (originalTZ === undefined) delete process.env['TZ'];
  else process.env['TZ'] = originalTZ;
});

const f = (...entries: Array<[string, string]>): Filters => Filters.of(entries);
const names = (r: { volumes: Array<{ Name: string }> }): string[] => r.volumes.map((v) => v.Name);

describe.each(BACKENDS)('VolumesService (%s metadata)', (backend) => {
  it('creates idempotently per driver and refuses another driver (TestServiceCreate)', async () => {
    const h = await harness(backend, new FakeDriver('d1'), new FakeDriver('d2'));
    const service = await h.open();

    const unknown = await service.create({ name: 'v1', driver: 'notexist' }).catch((e: unknown) => e);
    expect(kindOf(unknown)).toBe('not-found');
    expect((unknown as Error).message).toBe('create v1: error looking up volume plugin notexist: plugin "notexist" not found');

    const v = await service.create({ name: 'v1', driver: 'd1' });
    expect(await service.create({ name: 'v1', driver: 'd1' })).toEqual(v);

    const err = await service.create({ name: 'v1', driver: 'd2' }).catch((e: unknown) => e);
    expect(isNameConflict(err)).toBe(true);
    expect(kindOf(err)).toBe('conflict');
    expect((err as Error).message).toBe("create v1: driver 'd1' already has volume 'v1': volume name must be unique");

    await service.remove('v1');
    await service.create({ name: 'v1', driver: 'd2' });
    await service.create({ name: 'v1', driver: 'd2' });
    expect(h.events.actions()).toEqual(['create v1', 'destroy v1', 'create v1']);
  });

  it('filters lists by driver and dangling (TestServiceList)', async () => {
    const h = await harness(backend, new FakeDriver('d1'), new FakeDriver('d2'));
    const service = await h.open();
    await service.create({ name: 'v1', driver: 'd1' });
    await service.create({ name: 'v2', driver: 'd1' });
    await service.create({ name: 'v3', driver: 'd2' });

    const count = async (filters: Filters): Promise<number> => (await service.list(filters)).volumes.length;
    expect(await count(f(['driver', 'd1']))).toBe(2);
    expect(await count(f(['driver', 'd2']))).toBe(1);
    expect(await count(f(['driver', 'notexist']))).toBe(0);
    expect(await count(f(['dangling', 'true']))).toBe(3);
    expect(await count(f(['dangling', 'false']))).toBe(0);

    await service.mount('v1', 'foo');
    expect(await count(f(['dangling', 'true']))).toBe(2);
    expect(await count(f(['dangling', 'false']))).toBe(1);
    expect(await count(f(['dangling', 'false'], ['driver', 'd2']))).toBe(0);
    expect(await count(f(['dangling', 'true'], ['driver', 'd2']))).toBe(1);

    expect(names(await service.list(f(['name', 'v[12]'])))).toEqual(['v1', 'v2']);
    await expect(service.list(f(['size', '1']))).rejects.toThrow("invalid filter 'size'");
  });

  it('removes, and a forced remove of a missing volume succeeds (TestServiceRemove)', async () => {
    const h = await harness(backend, new FakeDriver('d1'));
    const service = await h.open();
    await service.create({ name: 'test', driver: 'd1' });
    await service.remove('test');
    await service.remove('test', { force: true });
    const err = await service.remove('test').catch((e: unknown) => e);
    expect((err as Error).message).toBe('get test: no such volume');
    expect(kindOf(err)).toBe('not-found');
  });

  it('gets volumes, with status on request and the expected driver (TestServiceGet)', async () => {
    const h = await harness(backend, new FakeDriver('d1'));
    const service = await h.open();
    const missing = await service.get('notexist').catch((e: unknown) => e);
    expect(isNotExist(missing)).toBe(true);

    const created = await service.create({ name: 'test', driver: 'd1' });
    expect(await service.get('test')).toEqual(created);
    expect((await service.get('test', { resolveStatus: true })).Status).toEqual({ datakey: 'datavalue' });

    expect(kindOf(await service.get('test', { driver: 'notarealdriver' }).catch((e: unknown) => e))).toBe('conflict');
    expect(await service.get('test', { driver: 'd1' })).toEqual(created);
    h.registry.register(new FakeDriver('d2'));
    expect(kindOf(await service.get('test', { driver: 'd2' }).catch((e: unknown) => e))).toBe('conflict');
  });

  it('prunes by labels, only local, only unreferenced (TestServicePrune)', async () => {
    const h = await harness(backend, new FakeDriver('local'), new FakeDriver('other'));
    const service = await h.open();
    await service.create({ name: 'test', driver: 'local' });
    await service.create({ name: 'test2', driver: 'other' });

    let pr = await service.prune(f(['label', 'banana'], ['all', 'true']));
    expect(pr.VolumesDeleted).toEqual([]);

    pr = await service.prune(f(['all', 'true']));
    expect(pr.VolumesDeleted).toEqual(['test']);
    expect(isNotExist(await service.get('test').catch((e: unknown) => e))).toBe(true);
    expect((await service.get('test2')).Driver).toBe('other');

    await service.create({ name: 'test', driver: 'local' });
    pr = await service.prune(f(['label!', 'banana'], ['all', 'true']));
    expect(pr.VolumesDeleted).toEqual(['test']);
    expect((await service.get('test2')).Driver).toBe('other');

    await service.create({ name: 'test', driver: 'local', labels: { banana: '' } });
    pr = await service.prune(f(['label!', 'banana']));
    expect(pr.VolumesDeleted).toEqual([]);

    await service.create({ name: 'test3', driver: 'local', labels: { banana: 'split' } });
    pr = await service.prune(f(['label!', 'banana=split'], ['all', 'true']));
    expect(pr.VolumesDeleted).toEqual(['test']);

    pr = await service.prune(f(['label', 'banana=split'], ['all', 'true']));
    expect(pr.VolumesDeleted).toEqual(['test3']);

    await service.create({ name: 'test', driver: 'local' });
    await service.mount('test', 'TestServicePrune');
    pr = await service.prune(Filters.empty());
    expect(pr.VolumesDeleted).toEqual([]);
    expect((await service.prune(f(['all', 'true']))).VolumesDeleted).toEqual([]);
    await service.release('test', 'TestServicePrune');
    pr = await service.prune(f(['all', 'true']));
    expect(pr.VolumesDeleted).toEqual(['test']);
  });

  it('reports disk usage: local volumes without options sized, -1 for the rest, references counted, one walk shared', async () => {
    const local = new FakeDriver('local');
    const h = await harness(backend, local, new FakeDriver('plugin'));
    const service = await h.open();
    const dir = await scratchDir();
    await mkdir(join(dir, 'a', 'sub'), { recursive: true });
    await writeFile(join(dir, 'a', 'f'), 'x'.repeat(1234));
    await writeFile(join(dir, 'a', 'sub', 'g'), 'y'.repeat(10));
    await service.create({ name: 'a', driver: 'local' });
    await service.create({ name: 'tmp', driver: 'local', driverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    await service.create({ name: 'remote', driver: 'plugin' });
    await service.create({ name: 'unreadable', driver: 'local' });
    (local.volumes.get('a') as FakeVolume).mountpoint = join(dir, 'a');
    (local.volumes.get('tmp') as FakeVolume).mountpoint = join(dir, 'a');
    (local.volumes.get('unreadable') as FakeVolume).mountpoint = join(dir, 'missing');
    await service.mount('a', 'r1');
    await service.mount('a', 'r2');
    await service.mount('remote', 'r1');

    const [first, second] = await Promise.all([service.diskUsage(), service.diskUsage()]);
    expect(second).toBe(first);
    expect(first.map((v) => [v.Name, v.Mountpoint, v.UsageData])).toEqual([
      ['a', join(dir, 'a'), { Size: 1244, RefCount: 2 }],
      ['remote', '/fake/plugin/remote', { Size: -1, RefCount: 1 }],
      ['tmp', join(dir, 'a'), { Size: -1, RefCount: 0 }],
      ['unreadable', join(dir, 'missing'), { Size: -1, RefCount: 0 }],
    ]);
    expect(first[0]).toMatchObject({ Driver: 'local', Labels: null, Options: null, Scope: 'local' });
    expect(h.logger.lines.filter((l) => l.level === 'warn')).toEqual([
      { level: 'warn', message: 'Failed to determine size of volume', fields: { volume: 'unreadable', error: expect.stringMatching(/ENOENT/) } },
    ]);

    // A caller that goes away leaves the walk to the others; a later call walks again.
    const controller = new AbortController();
    const leaving = service.diskUsage({ signal: controller.signal });
    const staying = service.diskUsage();
    controller.abort(new Error('client went away'));
    await expect(leaving).rejects.toThrow('client went away');
    const third = await staying;
    expect(third).not.toBe(first);
    expect(third.map((v) => v.UsageData?.Size)).toEqual([1244, -1, -1, -1]);
  });

  it('creates anonymous volumes: random name, local driver, anonymous label; default prune removes only those', async () => {
    const h = await harness(backend, new FakeDriver('local'), new FakeDriver('d1'));
    const service = await h.open();
    const anon = await service.create({ labels: { team: 'a', [ANONYMOUS_LABEL]: 'x' } });
    expect(anon.Name).toMatch(/^[0-9a-f]{64}$/);
    expect(anon.Driver).toBe('local');
    expect(anon.Labels).toEqual({ team: 'a', [ANONYMOUS_LABEL]: '' });
    expect((await service.create({})).Labels).toEqual({ [ANONYMOUS_LABEL]: '' });
    expect((await service.create({ driver: 'd1' })).Driver).toBe('d1');
    await service.create({ name: 'named' });
    await service.create({ name: 'withopts', driverOpts: { type: 'tmpfs' }, labels: { [ANONYMOUS_LABEL]: '' } });

    const pr = await service.prune(Filters.empty());
    expect(pr.VolumesDeleted).toHaveLength(2);
    expect(pr.VolumesDeleted).toContain(anon.Name);
    expect(names(await service.list(f(['driver', 'local'])))).toEqual(['named', 'withopts']);
  });

  it("answers with the API's Volume object, field for field", async () => {
    const h = await harness(backend, new FakeDriver('local'));
    const service = await h.open();
    const created = await service.create({ name: 'plain' });
    expect(JSON.stringify(created)).toBe(
      JSON.stringify({
        CreatedAt: '2026-11-27T23:40:01Z',
        Driver: 'local',
        Labels: null,
        Mountpoint: '/fake/local/plain',
        Name: 'plain',
        Options: null,
        Scope: 'local',
      }),
    );
    const labelled = await service.create({ name: 'labelled', labels: {}, driverOpts: { o: 'x' } });
    expect(labelled).toMatchObject({ Labels: {}, Options: { o: 'x' } });
    expect(labelled).not.toHaveProperty('Status');

    const volume = h.registry.driver('local').volumes.get('plain')!;
    volume.createdAtValue = undefined;
    volume.statusValue = {};
    expect(await service.get('plain', { resolveStatus: true })).toEqual({ ...created, CreatedAt: '0001-01-01T00:00:00Z' });
  });

  it('lists with cached mountpoints only, and no warnings as an empty array', async () => {
    const h = await harness(backend, new FakeDriver('local'));
    const service = await h.open();
    await service.create({ name: 'v' });
    const volume = h.registry.driver('local').volumes.get('v')!;
    const calls = volume.pathCalls;
    const listed = await service.list(Filters.empty());
    expect(listed).toEqual({
      volumes: [
        {
          CreatedAt: '2026-11-27T23:40:01Z',
          Driver: 'local',
          Labels: null,
          Mountpoint: '/fake/local/v',
          Name: 'v',
          Options: null,
          Scope: 'local',
        },
      ],
      warnings: [],
    });
    expect(volume.pathCalls).toBe(calls);
    expect(FAKE_CREATED_AT.getTime()).toBeGreaterThan(0);
  });

  it('lists within the deadline when a driver hangs, naming it and listing its known volumes', async () => {
    const slow = new FakeDriver('slow');
    const h = await harness(backend, new FakeDriver('local'), slow);
    const service = await h.open({ listTimeoutMs: 100 });
    await service.create({ name: 'fast-vol' });
    await service.create({ name: 'slow-vol', driver: 'slow' });
    slow.listMode = 'hang';

    const started = Date.now();
    const result = await service.list(Filters.empty());
    expect(Date.now() - started).toBeLessThan(1500);
    expect(result.warnings).toEqual(['list slow: driver did not answer within 100ms']);
    expect(names(result)).toEqual(['fast-vol', 'slow-vol']);
  });

  it('emits events exactly: create only when new, destroy, mount and unmount with ref, prune with actor ""', async () => {
    const dir = await scratchDir();
    const local = new FakeDriver('local');
    const h = await harness(backend, local);
    const service = await h.open();

    await service.create({ name: 'v' });
    await service.create({ name: 'v' });
    await service.mount('v', 'm1');
    await service.unmount('v', 'm1');
    await service.remove('v');

    const anon = await service.create({});
    const data = join(dir, '_data');
    await mkdir(join(data, 'sub'), { recursive: true });
    await writeFile(join(data, 'a'), 'x'.repeat(300));
    await writeFile(join(data, 'sub', 'b'), 'y'.repeat(12));
    local.volumes.get(anon.Name)!.mountpoint = data;
    const pr = await service.prune(Filters.empty());
    expect(pr).toEqual({ VolumesDeleted: [anon.Name], SpaceReclaimed: 312 });

    expect(h.events.events).toEqual([
      { name: 'v', action: 'create', attributes: { driver: 'local' } },
      { name: 'v', action: 'mount', attributes: { driver: 'local', ref: 'm1' } },
      { name: 'v', action: 'unmount', attributes: { driver: 'local', ref: 'm1' } },
      { name: 'v', action: 'destroy', attributes: { driver: 'local' } },
      { name: anon.Name, action: 'create', attributes: { driver: 'local' } },
      { name: anon.Name, action: 'destroy', attributes: { driver: 'local' } },
      { name: '', action: 'prune', attributes: { reclaimed: '312' } },
    ]);

    h.events.clear();
    expect(await service.prune(Filters.empty())).toEqual({ VolumesDeleted: [], SpaceReclaimed: 0 });
    expect(h.events.events).toEqual([{ name: '', action: 'prune', attributes: { reclaimed: '0' } }]);
  });

  it('runs one prune at a time', async () => {
    const local = new FakeDriver('local');
    const h = await harness(backend, local);
    const service = await h.open({ listTimeoutMs: 200 });
    local.listMode = 'hang';
    const first = service.prune(Filters.empty());
    const second = await service.prune(Filters.empty()).catch((e: unknown) => e);
    expect((second as Error).message).toBe('a prune operation is already running');
    expect(kindOf(second)).toBe('conflict');
    await first;
    await service.prune(Filters.empty());
  });

  it('mounts: returns the mountpoint, once per ref, and undoes a failed mount without unmounting', async () => {
    const local = new FakeDriver('local');
    const h = await harness(backend, local);
    const service = await h.open();
    await service.create({ name: 'v' });
    const volume = local.volumes.get('v')!;

    expect(await service.mount('v', 'r1')).toBe('/fake/local/v');
    await expect(service.mount('missing', 'r1')).rejects.toThrow('get missing: no such volume');

    volume.failMount = new Error('VolumeDriver.Mount: device busy');
    const err = await service.mount('v', 'r2').catch((e: unknown) => e);
    expect((err as Error).message).toBe('mount v: VolumeDriver.Mount: device busy');
    // Mounting again with a ref already held does not mount twice, so one unmount undoes it.
    expect(await service.mount('v', 'r1')).toBe('/fake/local/v');
    expect(volume.unmounts).toEqual([]);
    await expect(service.remove('v')).rejects.toThrow('remove v: volume is in use - [r1]');

    volume.failMount = undefined;
    volume.failUnmount = new Error('VolumeDriver.Unmount: still busy');
    await expect(service.unmount('v', 'r1')).rejects.toThrow('unmount v: VolumeDriver.Unmount: still busy');
    await expect(service.remove('v')).rejects.toThrow('volume is in use - [r1]');

    volume.failUnmount = undefined;
    await service.unmount('v', 'r1');
    await service.release('v', 'never-held');
    await service.remove('v');
    expect(h.events.actions()).toEqual(['create v', 'mount v', 'unmount v', 'destroy v']);
  });

  it('removes: in use wins over force; force purges when the driver fails', async () => {
    const d1 = new FakeDriver('d1');
    const h = await harness(backend, d1);
    const service = await h.open();
    await service.create({ name: 'used', driver: 'd1' });
    await service.mount('used', 'ctr');
    const inUse = await service.remove('used', { force: true }).catch((e: unknown) => e);
    expect((inUse as Error).message).toBe('remove used: volume is in use - [ctr]');
    expect(kindOf(inUse)).toBe('conflict');

    await service.create({ name: 'broken', driver: 'd1' });
    d1.removeError = new Error('VolumeDriver.Remove: permission denied');
    await expect(service.remove('broken')).rejects.toThrow('remove broken: VolumeDriver.Remove: permission denied');
    expect((await service.get('broken')).Name).toBe('broken');
    await expect(service.remove('broken', { force: true })).rejects.toThrow('remove broken: VolumeDriver.Remove: permission denied');
    expect(h.registry.refCount('d1')).toBe(1);
    expect(h.events.actions()).not.toContain('destroy broken');
    await service.close();
    expect((await h.records()).map((r) => r.name)).toEqual(['used']);
  });

  it('never makes one volume wait for a slow driver call on another', async () => {
    const slow = new FakeDriver('slow');
    let gate!: () => void;
    slow.createGate = new Promise((resolve) => (gate = resolve));
    const h = await harness(backend, new FakeDriver('local'), slow);
    const service = await h.open();
    const stuck = service.create({ name: 'stuck', driver: 'slow' });
    await service.create({ name: 'free' });
    await service.get('free');
    expect(names(await service.list(Filters.empty()))).toEqual(['free']);
    gate();
    await stuck;
  });

  it('names its drivers and refuses calls once closed, after letting running ones finish', async () => {
    const slow = new FakeDriver('slow');
    let gate!: () => void;
    slow.createGate = new Promise((resolve) => (gate = resolve));
    const h = await harness(backend, new FakeDriver('local'), slow);
    const service = await h.open();
    expect(service.getDriverList()).toEqual(['local', 'slow']);

    const creating = service.create({ name: 'late', driver: 'slow' });
    const closing = service.close();
    const refused = await service.get('late').catch((e: unknown) => e);
    expect(kindOf(refused)).toBe('unavailable');
    gate();
    expect((await creating).Name).toBe('late');
    await closing;
    expect((await h.records()).map((r) => r.name)).toEqual(['late']);
  });

  it('honours an aborted signal', async () => {
    const h = await harness(backend, new FakeDriver('local'));
    const service = await h.open();
    const err = await service.create({ name: 'v' }, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(BerthError.is(err)).toBe(true);
    expect(kindOf(err)).toBe('canceled');
    expect(h.registry.driver('local').volumes.size).toBe(0);
  });
});

describe('VolumesService on SQLite', () => {
  it('keeps a second daemon off the same data-root with a clear error', async () => {
    const h = await harness('sqlite', new FakeDriver('local'));
    await h.open();
    const err = await h.open().catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `error while opening volume store metadata database (${metadataPath(h.root)}): timeout`,
    );
  });

  it('has an acknowledged create and remove on disk at once (a kill -9 right after keeps them)', async () => {
    const h = await harness('sqlite', new FakeDriver('local'));
    const service = await h.open();
    await service.create({ name: 'kept', labels: { a: '1' } });
    await service.create({ name: 'removed' });
    await service.remove('removed');

    const crashed = join(await scratchDir(), 'crashed.sqlite');
    await copyFile(metadataPath(h.root), crashed);
    await copyFile(`${metadataPath(h.root)}-wal`, `${crashed}-wal`);
    const metadata = await SqliteMetadataStore.open(crashed);
    expect(await metadata.list()).toEqual([
      { name: 'kept', driver: 'local', labels: { a: '1' }, options: null, pending: false, refs: [] },
    ]);
    await metadata.close();
  });

  it('acknowledges create, remove and references only after an fsync, and marks pending without one', async () => {
    const h = await harness('sqlite', new FakeDriver('local'));
    const metadata = await SqliteMetadataStore.open(metadataPath(h.root));
    const service = await h.open({ metadata });
    const commits = (): { durable: number; lazy: number; syncs: number } => metadata.commits;
    const before = commits();
    await service.create({ name: 'v' });
    // One at a time: every durable commit waits for a WAL sync of its own.
    expect(commits()).toEqual({ durable: before.durable + 1, lazy: before.lazy + 1, syncs: before.syncs + 1 });
    await service.create({ name: 'v' });
    await service.mount('v', 'r');
    await service.unmount('v', 'r');
    await service.remove('v');
    expect(commits()).toEqual({ durable: before.durable + 4, lazy: before.lazy + 1, syncs: before.syncs + 4 });
  });

  it('answers a create only once the WAL sync after its commit has completed (group commit)', async () => {
    const h = await harness('sqlite', new FakeDriver('local'));
    const held: Array<() => void> = [];
    const syncWal = (): Promise<void> => new Promise<void>((resolve) => held.push(resolve));
    const metadata = await SqliteMetadataStore.open(metadataPath(h.root), { syncWal });
    const service = await h.open({ metadata });
    let answered = 0;
    const creates = Array.from({ length: 16 }, (_, i) => service.create({ name: `v${i}` }).then(() => answered++));
    await vi.waitFor(() => expect(held.length).toBe(1));
    // Committed (visible to the store), but not acknowledged while the sync is held back.
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(0);
    expect((await metadata.get('v0'))?.pending).toBe(false);
    held.shift()!();
    // The creates that committed while the first sync ran share the next one.
    await vi.waitFor(() => expect(held.length).toBe(1));
    const afterFirst = answered;
    expect(afterFirst).toBeLessThan(16);
    while (answered < 16) {
      held.shift()?.();
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(creates);
    expect(metadata.commits.durable).toBe(16);
    expect(metadata.commits.syncs).toBeLessThan(16);
  });

  it('survives restarts with volumes from drivers that report no time', async () => {
    const local = new FakeDriver('local');
    const h = await harness('sqlite', local);
    local.volumes.set('old', Object.assign(new FakeVolume('old', 'local'), { createdAtValue: undefined }));
    let service = await h.open();
    await service.get('old');
    service = await h.restart(service);
    expect((await service.list(Filters.empty())).volumes[0]?.CreatedAt).toBe('0001-01-01T00:00:00Z');
  });
});
