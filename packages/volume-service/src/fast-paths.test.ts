import { Filters } from '@berth/filters';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Volume } from '@berth/volume-drivers';
import { FakeDriver, FakeVolume, harness } from '../test/fakes.js';
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
