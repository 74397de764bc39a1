import { Filters } from '@berth/filters';
import { describe, expect, it } from 'vitest';
import type { Volume, VolumeDriver } from '@berth/volume-drivers';
import { BACKENDS, FAKE_CREATED_AT, FakeDriver, FakeRegistry, FakeVolume, harness, InMemoryDriver, PeekingRegistry } from '../test/fakes.js';
import { MemoryMetadataStore } from './memory-metadata-store.js';
import type { VolumeRecordInput } from './metadata-store.js';
import { VolumesService } from './volumes-service.js';

const names = (r: { volumes: Array<{ Name: string }> }): string[] => r.volumes.map((v) => v.Name);

describe.each(BACKENDS)('restore (%s metadata)', (backend) => {
  it('restores labels and options, and nil maps stay nil (TestRestore)', async () => {
    const h = await harness(backend, new FakeDriver('test-restore'));
    let service = await h.open();
    await service.create({ name: 'test1', driver: 'test-restore' });
    await service.create({ name: 'test2', driver: 'test-restore', driverOpts: { foo: 'bar' }, labels: { a: '1' } });
    service = await h.restart(service);

    const v1 = await service.get('test1');
    expect(v1.Labels).toBeNull();
    expect(v1.Options).toBeNull();
    const v2 = await service.get('test2');
    expect(v2.Labels).toEqual({ a: '1' });
    expect(v2.Options).toEqual({ foo: 'bar' });
  });

  it('acquires one driver reference per restored volume', async () => {
    const h = await harness(backend, new FakeDriver('plugin'));
    let service = await h.open();
    await service.create({ name: 'a', driver: 'plugin' });
    await service.create({ name: 'b', driver: 'plugin' });
    await h.close(service);
    h.registry.refs.clear(); // a fresh daemon starts with fresh plugin refcounts
    service = await h.open();
    expect(h.registry.refCount('plugin')).toBe(2);
    await service.remove('a');
    expect(h.registry.refCount('plugin')).toBe(1);
  });

  it('keeps references across a restart: in use, not dangling, not pruned, unmountable', async () => {
    const local = new FakeDriver('local');
    const h = await harness(backend, local);
    let service = await h.open();
    await service.create({ name: 'held', labels: { team: 'a' } });
    await service.mount('held', 'ctr-1');
    await service.mount('held', 'ctr-2');
    service = await h.restart(service);

    expect(local.volumes.get('held')?.liveRestored.sort()).toEqual(['ctr-1', 'ctr-2']);
    await expect(service.remove('held', { force: true })).rejects.toThrow('remove held: volume is in use - [ctr-1, ctr-2]');
    expect(names(await service.list(Filters.of([['dangling', 'false']])))).toEqual(['held']);
    expect(names(await service.list(Filters.of([['dangling', 'true']])))).toEqual([]);
    expect((await service.prune(Filters.of([['all', 'true']]))).VolumesDeleted).toEqual([]);

    await service.unmount('held', 'ctr-1');
    await service.release('held', 'ctr-2');
    service = await h.restart(service);
    expect(names(await service.list(Filters.of([['dangling', 'true']])))).toEqual(['held']);
    await service.remove('held');
  });

  it('keeps the record of a volume whose driver is away, and shows it again when the driver is back', async () => {
    const plugin = new FakeDriver('plugin');
    const h = await harness(backend, new FakeDriver('local'), plugin);
    let service = await h.open();
    await service.create({ name: 'remote', driver: 'plugin', labels: { keep: 'me' } });
    await service.mount('remote', 'ctr-1');
    await h.close(service);

    h.registry.unregister('plugin');
    h.registry.refs.clear();
    service = await h.open();
    expect(h.logger.warnings()).toContain('Error restoring volume');
    expect(h.registry.refCount('plugin')).toBe(0);
    expect(names(await service.list(Filters.empty()))).toEqual([]);
    await expect(service.get('remote')).rejects.toThrow(/^get remote: error while checking if volume "remote" exists in driver "plugin"/);
    await h.close(service);
    expect((await h.records()).map((r) => r.name)).toEqual(['remote']);

    h.registry.register(plugin);
    service = await h.open();
    expect(names(await service.list(Filters.empty()))).toEqual(['remote']);
    expect((await service.get('remote')).Labels).toEqual({ keep: 'me' });
    await expect(service.remove('remote')).rejects.toThrow('remove remote: volume is in use - [ctr-1]');
  });

  it('drops the records of volumes their driver no longer has', async () => {
    const local = new FakeDriver('local');
    const h = await harness(backend, local);
    let service = await h.open();
    await service.create({ name: 'gone' });
    await service.create({ name: 'kept' });
    await h.close(service);
    local.volumes.delete('gone');
    h.registry.refs.clear();
    service = await h.open();
    expect(h.registry.refCount('local')).toBe(1);
    await h.close(service);
    expect((await h.records()).map((r) => r.name)).toEqual(['kept']);
  });

  it('undoes a create that was never acknowledged (a pending record)', async () => {
    const local = new FakeDriver('local');
    const plugin = new FakeDriver('plugin');
    const h = await harness(backend, local, plugin);
    const pending = (name: string, driver: string): VolumeRecordInput => ({ name, driver, labels: null, options: null });
    await h.withMetadata(async (m) => {
      await m.markPending(pending('crashed-after-driver', 'local'));
      await m.markPending(pending('crashed-before-driver', 'local'));
      await m.markPending(pending('driver-away', 'missing'));
    });
    await local.create('crashed-after-driver', undefined);

    const service = await h.open();
    expect(local.volumes.has('crashed-after-driver')).toBe(false);
    expect(names(await service.list(Filters.empty()))).toEqual([]);
    await expect(service.get('driver-away')).rejects.toThrow('get driver-away: no such volume');
    expect(h.events.events).toEqual([]);
    await h.close(service);
    // The one whose driver is away is retried on the next start.
    expect(await h.records()).toEqual([{ ...pending('driver-away', 'missing'), pending: true, refs: [] }]);
  });
});

describe('create durability', () => {
  it('does not acknowledge a create whose metadata commit fails, and leaves nothing behind', async () => {
    class FailingPut extends MemoryMetadataStore {
      override async put(): Promise<void> {
        throw new Error('disk full');
      }
    }
    const metadata = new FailingPut();
    const h = await harness('memory', new FakeDriver('local'));
    const service = await VolumesService.open({ root: h.root, drivers: h.registry, events: h.events, metadata });
    await expect(service.create({ name: 'v' })).rejects.toThrow('create v: error setting volume metadata: disk full');
    expect(h.registry.driver('local').volumes.size).toBe(0);
    expect(h.registry.refCount('local')).toBe(0);
    expect(h.events.events).toEqual([]);
    expect((await metadata.get('v'))?.pending).toBe(true); // undone on the next start, if it came to that
    await service.close();
  });

  it('writes the pending record before asking the driver', async () => {
    const local = new FakeDriver('local');
    const metadata = new MemoryMetadataStore();
    let gate!: () => void;
    local.createGate = new Promise((resolve) => (gate = resolve));
    const h = await harness('memory', local);
    const service = await VolumesService.open({ root: h.root, drivers: h.registry, metadata });
    const creating = service.create({ name: 'v', labels: { a: 'b' } });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await metadata.get('v')).toMatchObject({ pending: true, driver: 'local', labels: { a: 'b' } });
    gate();
    await creating;
    expect(await metadata.get('v')).toMatchObject({ pending: false });
    await service.close();
  });

  it('adopts a volume found in a driver even without its own record', async () => {
    const local = new FakeDriver('local');
    const h = await harness('memory', local);
    local.volumes.set('outside', new FakeVolume('outside', 'local'));
    const service = await h.open();
    await service.mount('outside', 'ref');
    await h.close(service);
    expect(await h.records()).toEqual([
      { name: 'outside', driver: 'local', labels: null, options: null, pending: false, refs: ['ref'] },
    ]);
  });
});

describe.each(BACKENDS)('restore of a driver at hand (%s metadata)', (backend) => {
  it('restores in one pass what the general path would, and still live-restores references', async () => {
    const local = new InMemoryDriver('local');
    const plugin = new FakeDriver('plugin');
    const h = await harness(backend, plugin);
    const registry = new PeekingRegistry(plugin);
    registry.registerInProcess(local);
    let service = await h.open({ drivers: registry });
    for (let i = 0; i < 50; i++) {
      await service.create({ name: `v${String(i).padStart(2, '0')}`, labels: i % 2 === 0 ? { even: '' } : null, driverOpts: { i: String(i) } });
    }
    await service.create({ name: 'on-plugin', driver: 'plugin' });
    await service.mount('v07', 'ctr');
    await h.close(service);
    local.volumes.delete('v13'); // gone behind berth's back: its record goes
    await h.withMetadata((m) => m.markPending({ name: 'v21', driver: 'local', labels: null, options: null }));
    local.getCalls = 0;

    registry.lookups = 0;
    registry.refs.clear(); // a fresh daemon starts with fresh plugin refcounts
    service = await h.open({ drivers: registry });
    // One lookup and one `get` for the first volume, one for the one with a reference; the rest from memory.
    expect(local.getCalls).toBeLessThanOrEqual(3);
    expect(registry.lookups).toBeLessThanOrEqual(4);
    expect(local.volumes.has('v21')).toBe(false); // the pending create was undone
    expect(local.volumes.get('v07')?.liveRestored).toEqual(['ctr']);
    const listed = (await service.list(Filters.empty())).volumes;
    expect(listed.map((v) => v.Name)).toEqual([
      'on-plugin',
      ...Array.from({ length: 50 }, (_, i) => `v${String(i).padStart(2, '0')}`).filter((n) => n !== 'v13' && n !== 'v21'),
    ]);
    expect(listed.find((v) => v.Name === 'v08')).toMatchObject({ Labels: { even: '' }, Options: { i: '8' }, Scope: 'local' });
    expect(listed.find((v) => v.Name === 'v09')).toMatchObject({ Labels: null, Options: { i: '9' } });
    await expect(service.remove('v07')).rejects.toThrow('remove v07: volume is in use - [ctr]');
    expect(registry.refCount('plugin')).toBe(1);
    await h.close(service);
    const records = (await h.records()).map((r) => r.name);
    expect(records).toHaveLength(49);
    expect(records).not.toContain('v13');
    expect(records).not.toContain('v21');
  });
});

/** A volume that knows its creation time and its options, as the local driver's do. */
class TimedVolume extends FakeVolume {
  createdAtSyncCalls = 0;
  options: Record<string, string> | undefined;

  createdAtSync(): Date | undefined {
    this.createdAtSyncCalls++;
    return this.createdAtValue;
  }

  driverOptions(): Record<string, string> | undefined {
    return this.options;
  }
}

/** The local driver's restore contract: it makes a lost volume again, unless its remove was cut short. */
class RecreatingDriver extends InMemoryDriver {
  readonly cutShort = new Set<string>();
  readonly recreated: Array<[string, Record<string, string> | undefined]> = [];

  override async create(name: string, options: Readonly<Record<string, string>> | undefined): Promise<FakeVolume> {
    const volume = new TimedVolume(name, this.name);
    volume.options = options === undefined ? undefined : { ...options };
    this.volumes.set(name, volume);
    return volume;
  }

  async recreateMissing(name: string, options: Readonly<Record<string, string>> | undefined): Promise<Volume | undefined> {
    if (this.cutShort.has(name)) return undefined;
    this.recreated.push([name, options === undefined ? undefined : { ...options }]);
    return this.create(name, options);
  }
}

describe.each(BACKENDS)('restore of records and volumes that disagree (%s metadata)', (backend) => {
  it('has the driver make a lost volume again with its options, keeps its labels and time, and drops one whose remove was cut short', async () => {
    const local = new RecreatingDriver('local');
    const h = await harness(backend);
    const registry = new PeekingRegistry();
    registry.registerInProcess(local);
    let service = await h.open({ drivers: registry });
    for (const name of ['lost', 'cut', 'kept', 'lost-held']) {
      await service.create({ name, labels: { name }, driverOpts: { type: 'tmpfs', device: 'tmpfs' } });
    }
    await service.mount('lost-held', 'job');
    const before = new Map((await service.list(Filters.empty())).volumes.map((v) => [v.Name, v]));
    await h.close(service);
    for (const name of ['lost', 'cut', 'lost-held']) local.volumes.delete(name);
    local.cutShort.add('cut');

    service = await h.open({ drivers: registry });
    expect(local.recreated.map(([name]) => name).sort()).toEqual(['lost', 'lost-held']);
    expect(local.recreated[0]![1]).toEqual({ type: 'tmpfs', device: 'tmpfs' });
    const after = new Map((await service.list(Filters.empty())).volumes.map((v) => [v.Name, v]));
    expect([...after.keys()]).toEqual(['kept', 'lost', 'lost-held']);
    // Labels, options and the creation time come from the record.
    for (const name of after.keys()) expect(after.get(name)).toEqual(before.get(name));
    expect((local.volumes.get('lost-held') as FakeVolume).liveRestored).toEqual(['job']);
    await expect(service.remove('lost-held')).rejects.toThrow('remove lost-held: volume is in use - [job]');
    expect(h.logger.warnings().filter((m) => m.startsWith('Re-created the directory of volume')).length).toBe(2);
    await h.close(service);
    expect((await h.records()).map((r) => r.name).sort()).toEqual(['kept', 'lost', 'lost-held']);
  });

  it('adopts the volumes of the local driver that have no record, with their options and time, once', async () => {
    const local = new RecreatingDriver('local');
    const h = await harness(backend);
    const registry = new PeekingRegistry();
    registry.registerInProcess(local);
    let service = await h.open({ drivers: registry });
    await service.create({ name: 'known', labels: { a: 'b' } });
    await h.close(service);
    const stray = new TimedVolume('stray', 'local');
    stray.options = { type: 'tmpfs', device: 'tmpfs' };
    local.volumes.set('stray', stray);

    service = await h.open({ drivers: registry });
    expect(h.logger.lines.filter((l) => l.level === 'info').map((l) => l.message)).toContain('Adopted 1 volumes of the local driver that had no record, as moby lists them');
    expect((await service.list(Filters.empty())).volumes.map((v) => [v.Name, v.Labels, v.Options, v.CreatedAt])).toEqual([
      ['known', { a: 'b' }, null, '2026-11-27T23:40:01Z'],
      ['stray', null, { type: 'tmpfs', device: 'tmpfs' }, '2026-11-27T23:40:01Z'],
    ]);
    await h.close(service);
    expect((await h.records()).find((r) => r.name === 'stray')).toEqual({
      name: 'stray',
      driver: 'local',
      labels: null,
      options: { type: 'tmpfs', device: 'tmpfs' },
      createdAt: FAKE_CREATED_AT.getTime(),
      pending: false,
      refs: [],
    });
    h.logger.lines.length = 0;
    service = await h.open({ drivers: registry });
    expect(h.logger.lines.filter((l) => l.level === 'info').map((l) => l.message).some((m) => m.startsWith('Adopted'))).toBe(false);
  });

  it('gives a record without a creation time the one its volume has, and keeps it', async () => {
    const local = new RecreatingDriver('local');
    const h = await harness(backend);
    const registry = new PeekingRegistry();
    registry.registerInProcess(local);
    await h.withMetadata((m) => m.put({ name: 'old', driver: 'local', labels: { from: 'before' }, options: null }));
    local.volumes.set('old', new TimedVolume('old', 'local'));
    const service = await h.open({ drivers: registry });
    expect((await service.get('old')).CreatedAt).toBe('2026-11-27T23:40:01Z');
    await h.close(service);
    expect((await h.records())[0]).toMatchObject({ name: 'old', labels: { from: 'before' }, createdAt: FAKE_CREATED_AT.getTime() });
  });
});
