import { Filters } from '@berth/filters';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Volume } from '@berth/volume-drivers';
import { FAKE_CREATED_AT, FakeDriver, FakeVolume, harness, InMemoryDriver, PeekingRegistry } from '../test/fakes.js';
import { MemoryMetadataStore } from './memory-metadata-store.js';
import type { VolumeRecord } from './metadata-store.js';
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

/** A volume whose creation time is known locally, as the local driver's. */
class LocalishVolume extends FakeVolume {
  createdAtSyncCalls = 0;

  createdAtSync(): Date | undefined {
    this.createdAtSyncCalls++;
    return this.createdAtValue;
  }
}

/** A driver that creates in two steps (`createDeferred`), as the local driver does. */
class DeferringDriver extends FakeDriver {
  syncs: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  removed: string[] = [];

  async createDeferred(
    name: string,
    options: Readonly<Record<string, string>> | undefined,
  ): Promise<{ volume: Volume; durable: Promise<void> }> {
    const volume = new LocalishVolume(name, this.name);
    void options;
    this.volumes.set(name, volume);
    const durable = new Promise<void>((resolve, reject) => this.syncs.push({ resolve, reject }));
    return { volume, durable };
  }

  override async remove(volume: Volume): Promise<void> {
    this.removed.push(volume.name);
    await super.remove(volume);
  }
}

/** Counts the metadata store's reads. */
class CountingMetadata extends MemoryMetadataStore {
  gets = 0;

  override async get(name: string): Promise<VolumeRecord | undefined> {
    this.gets++;
    return super.get(name);
  }
}

describe('create with a driver that syncs on its own (createDeferred)', () => {
  it('syncs the record meanwhile, and answers only when both are durable', async () => {
    const local = new DeferringDriver('local');
    const h = await harness('sqlite', local);
    const held: Array<() => void> = [];
    const metadata = await SqliteMetadataStore.open(metadataPath(h.root), {
      syncWal: () => new Promise<void>((resolve) => held.push(resolve)),
    });
    const service = await h.open({ metadata });
    let answered = false;
    const creating = service.create({ name: 'v', labels: { a: '1' } }).then((info) => {
      answered = true;
      return info;
    });
    // Both syncs run at the same time: the driver's and the record's.
    await vi.waitFor(() => expect(local.syncs).toHaveLength(1));
    await vi.waitFor(() => expect(held).toHaveLength(1));
    local.syncs[0]!.resolve();
    await new Promise((r) => setTimeout(r, 10));
    expect(answered).toBe(false);
    held[0]!();
    expect(await creating).toMatchObject({ Name: 'v', Labels: { a: '1' }, CreatedAt: '2026-11-27T23:40:01Z' });
    expect(h.events.actions()).toEqual(['create v']);
  });

  it('undoes the create and its record when the driver cannot make the volume durable', async () => {
    const local = new DeferringDriver('local');
    const h = await harness('memory', local);
    const service = await h.open();
    const creating = service.create({ name: 'v' }).catch((e: unknown) => e);
    await vi.waitFor(() => expect(local.syncs).toHaveLength(1));
    local.syncs[0]!.reject(new Error('fsync: input/output error'));
    expect(((await creating) as Error).message).toBe('create v: fsync: input/output error');
    expect(local.removed).toEqual(['v']);
    expect(local.volumes.has('v')).toBe(false);
    expect(await h.records()).toEqual([]);
    expect(h.events.actions()).toEqual([]);
    expect((await service.list(Filters.empty())).volumes).toEqual([]);
  });
});

describe('per-request work', () => {
  it('answers get, inspect and remove of a cached volume without reading its record again', async () => {
    const metadata = new CountingMetadata();
    const h = await harness('memory', new FakeDriver('local'));
    const service = await h.open({ metadata });
    await service.create({ name: 'v', labels: { a: '1' } });
    expect(metadata.gets).toBe(1); // once per create
    metadata.gets = 0;
    for (let i = 0; i < 3; i++) expect((await service.get('v')).Labels).toEqual({ a: '1' });
    await service.mount('v', 'r');
    await service.unmount('v', 'r');
    await service.remove('v');
    expect(metadata.gets).toBe(0);
    await expect(service.get('v')).rejects.toThrow('get v: no such volume');
  });

  it('lists volumes whose creation time is known locally without asking for it asynchronously', async () => {
    const local = new FakeDriver('local');
    const h = await harness('memory', local);
    const service = await h.open();
    const known = new LocalishVolume('known', 'local');
    const asked = new FakeVolume('asked', 'local');
    asked.createdAtValue = undefined;
    const createdAt = vi.spyOn(known, 'createdAt');
    local.volumes.set('known', known);
    local.volumes.set('asked', asked);
    const listed = (await service.list(Filters.empty())).volumes;
    expect(listed.map((v) => [v.Name, v.CreatedAt])).toEqual([
      ['asked', '0001-01-01T00:00:00Z'],
      ['known', '2026-11-27T23:40:01Z'],
    ]);
    expect(known.createdAtSyncCalls).toBe(1);
    expect(createdAt).not.toHaveBeenCalled();
  });

  it('asks drivers that answer from memory without a deadline, and still finds volumes there', async () => {
    const local = Object.assign(new FakeDriver('local'), {
      getSync(this: FakeDriver, name: string): Volume | undefined {
        return this.volumes.get(name);
      },
    });
    const h = await harness('memory', local);
    local.volumes.set('behind-our-back', new FakeVolume('behind-our-back', 'local'));
    const service = await h.open();
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const info = await service.create({ name: 'behind-our-back' });
    expect(info.Name).toBe('behind-our-back');
    // Only the listing of every driver has a deadline; the in-memory lookup has none.
    expect(timers.mock.calls.length).toBeLessThanOrEqual(1);
    timers.mockRestore();
  });
});

/** The local driver's shape: in memory, its volumes' time its own, removes in two steps. */
class LocalLikeDriver extends InMemoryDriver {
  readonly order: string[] = [];
  deleting: Promise<void> | undefined;

  override async create(name: string): Promise<FakeVolume> {
    const volume = new LocalishVolume(name, this.name);
    this.volumes.set(name, volume);
    return volume;
  }

  async removeDeferred(volume: Volume): Promise<{ deleted: Promise<void> }> {
    this.volumes.delete(volume.name);
    this.order.push(`left ${volume.name}`);
    const deleted = (async () => {
      await this.deleting;
      this.order.push(`deleted ${volume.name}`);
    })();
    return { deleted };
  }
}

async function localLike(backend: 'sqlite' | 'memory' = 'memory') {
  const local = new LocalLikeDriver('local');
  const h = await harness(backend);
  const registry = new PeekingRegistry();
  registry.registerInProcess(local);
  return { local, h, registry, service: await h.open({ drivers: registry }) };
}

describe('volumes whose driver keeps them in memory', () => {
  it('keep their creation time in their record, shown without asking the volume again', async () => {
    const { local, h, registry, service } = await localLike();
    await service.create({ name: 'v' });
    const volume = local.volumes.get('v') as LocalishVolume;
    expect(volume.createdAtSyncCalls).toBe(1);
    volume.createdAtValue = new Date(0); // what a `stat` would now say (a chmod of the directory)
    expect((await service.get('v')).CreatedAt).toBe('2026-11-27T23:40:01Z');
    expect((await service.list(Filters.empty())).volumes[0]?.CreatedAt).toBe('2026-11-27T23:40:01Z');
    await h.close(service);
    expect((await h.records())[0]?.createdAt).toBe(FAKE_CREATED_AT.getTime());
    const again = await h.open({ drivers: registry });
    expect((await again.get('v')).CreatedAt).toBe('2026-11-27T23:40:01Z');
    expect(volume.createdAtSyncCalls).toBe(1);
  });

  it('are listed with the same frozen answer while they do not change', async () => {
    const { service } = await localLike();
    await service.create({ name: 'a', labels: { x: '1' } });
    await service.create({ name: 'b' });
    const first = (await service.list(Filters.empty())).volumes;
    const second = (await service.list(Filters.empty())).volumes;
    expect(second[0]).toBe(first[0]);
    expect(Object.isFrozen(first[0])).toBe(true);
    expect(first.map((v) => v.Name)).toEqual(['a', 'b']);
    await service.remove('a');
    await service.create({ name: 'a', labels: { x: '2' } });
    const third = (await service.list(Filters.empty())).volumes;
    expect(third[0]).not.toBe(first[0]);
    expect(third[0]?.Labels).toEqual({ x: '2' });
    expect(third[1]).toBe(first[1]);
  });

  it('are answered by get from memory, unless something is in flight on the name', async () => {
    const { local, registry, service } = await localLike();
    await service.create({ name: 'v', labels: { a: '1' } });
    const lookups = vi.spyOn(registry, 'getDriver');
    expect(await service.get('v')).toMatchObject({ Name: 'v', Labels: { a: '1' } });
    expect(lookups).not.toHaveBeenCalled();
    await expect(service.get('v', { driver: 'other' })).rejects.toThrow();

    // A remove holds the name until the volume's data is deleted: get waits, and answers the truth.
    let finish!: () => void;
    local.deleting = new Promise((resolve) => (finish = resolve));
    const removing = service.remove('v');
    await vi.waitFor(() => expect(local.order).toEqual(['left v']));
    const getting = service.get('v').catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 10));
    finish();
    await removing;
    expect(((await getting) as Error).message).toBe('get v: no such volume');
  });

  it('are removed from their driver first, and their record deleted while the driver deletes their data', async () => {
    const { local, h, service } = await localLike('sqlite');
    await service.create({ name: 'v' });
    let finish!: () => void;
    local.deleting = new Promise((resolve) => (finish = resolve));
    let answered = false;
    const removing = service.remove('v').then(() => (answered = true));
    await vi.waitFor(() => expect(local.order).toEqual(['left v']));
    // The record is deleted (durably) meanwhile; the remove is answered once both are done.
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    finish();
    await removing;
    expect(local.order).toEqual(['left v', 'deleted v']);
    await h.close(service);
    expect(await h.records()).toEqual([]);
  });
});

describe('a create with large labels', () => {
  it('writes them into the write-ahead log once, not once more when it is acknowledged', async () => {
    const { h, service } = await localLike('sqlite');
    const { statSync } = await import('node:fs');
    const wal = `${metadataPath(h.root)}-wal`;
    await service.create({ name: 'warm-up' });
    const before = statSync(wal).size;
    const label = 'x'.repeat(256 * 1024);
    await service.create({ name: 'fat', labels: { blob: label } });
    expect(statSync(wal).size - before).toBeLessThan(label.length * 1.3);
  });
});
