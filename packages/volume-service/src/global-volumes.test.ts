import { Filters } from '@berth/filters';
import { isConflict, isUnavailable, kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { FakeCluster } from '../test/fake-cluster.js';
import { BACKENDS, FakeDriver, FakeVolume, harness, type BackendName, type Harness } from '../test/fakes.js';
import type { VolumeRecord } from './metadata-store.js';
import type { VolumesService } from './volumes-service.js';

/**
 * The volume service with a cluster store: two hosts (two data-roots, two services) sharing a
 * `global`-scope driver (one fake driver object: one shared backend) and an in-memory cluster.
 * The etcd store itself is tested against a real etcd in `@berth/volume-cluster-etcd`, and both
 * together end to end in the daemon's `test/cluster.test.ts`.
 */

interface Host {
  h: Harness;
  s: VolumesService;
}

async function twoHosts(backend: BackendName): Promise<{ cluster: FakeCluster; gfs: FakeDriver; a: Host; b: Host; gfs2: FakeDriver }> {
  const cluster = new FakeCluster();
  const gfs = new FakeDriver('gfs', 'global');
  const gfs2 = new FakeDriver('gfs2', 'global');
  const open = async (name: string): Promise<Host> => {
    const h = await harness(backend, new FakeDriver('local'), gfs, gfs2);
    return { h, s: await h.open({ cluster: cluster.host(name) }) };
  };
  return { cluster, gfs, gfs2, a: await open('host-a'), b: await open('host-b') };
}

const all = (): Filters => Filters.empty();

/** The host's local metadata records, read once its service is closed (SQLite has one holder). */
async function localRecords(host: Host): Promise<VolumeRecord[]> {
  await host.h.close(host.s);
  return host.h.records();
}

describe.each(BACKENDS)('global volumes (%s metadata)', (backend) => {
  it('keeps a global volume in the cluster, not in the local store, and every host describes it alike', async () => {
    const { cluster, a, b } = await twoHosts(backend);
    const created = await a.s.create({ name: 'gv', driver: 'gfs', labels: { team: 'a' }, driverOpts: { size: '1g' } });
    expect(created).toMatchObject({ Name: 'gv', Driver: 'gfs', Scope: 'global', Labels: { team: 'a' }, Options: { size: '1g' }, CreatedAt: '2026-01-02T03:04:05Z' });
    expect(cluster.records.get('gv')).toMatchObject({ driver: 'gfs', labels: { team: 'a' }, options: { size: '1g' }, host: 'host-a' });

    const onA = await a.s.get('gv');
    expect(await b.s.get('gv')).toEqual(onA);
    expect((await b.s.list(all())).volumes).toEqual((await a.s.list(all())).volumes);
    // A create event on the creating host, with the host; the other learns it from the cluster.
    expect(a.h.events.events).toEqual([{ name: 'gv', action: 'create', attributes: { driver: 'gfs', host: 'host-a' } }]);
    expect(b.h.events.events).toEqual([{ name: 'gv', action: 'create', attributes: { driver: 'gfs', host: 'host-a' } }]);
    expect(await localRecords(a)).toEqual([]);
    expect(await localRecords(b)).toEqual([]);
  });

  it("returns the existing volume for the same driver (moby's idempotent create) and refuses another driver", async () => {
    const { a, b, gfs2 } = await twoHosts(backend);
    await a.s.create({ name: 'v', driver: 'gfs', labels: { from: 'a' } });
    const again = await b.s.create({ name: 'v', driver: 'gfs', labels: { from: 'b' } });
    expect(again.Labels).toEqual({ from: 'a' });
    expect(b.h.events.actions()).toEqual(['create v']); // from host-a only

    const other = await b.s.create({ name: 'v', driver: 'gfs2' }).catch((e: unknown) => e);
    expect(isConflict(other)).toBe(true);
    expect((other as Error).message).toBe("create v: driver 'gfs' already has volume 'v': volume name must be unique");
    expect(gfs2.volumes.has('v')).toBe(false);
  });

  it('undoes the losing driver\'s volume when another host bound the name to another driver meanwhile', async () => {
    const { a, b, gfs2, cluster } = await twoHosts(backend);
    // Host b's cache has not seen host a's record yet: its create goes as far as the driver.
    await a.s.create({ name: 'late', driver: 'gfs' });
    cluster.host('host-b').hidden.add('late');
    const err = await b.s.create({ name: 'late', driver: 'gfs2' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("create late: driver 'gfs' already has volume 'late': volume name must be unique");
    expect(gfs2.createCalls).toBe(1);
    expect(gfs2.volumes.has('late')).toBe(false);
  });

  it("refuses a local volume whose name a global volume holds, with moby's conflict", async () => {
    const { a, b } = await twoHosts(backend);
    await a.s.create({ name: 'taken', driver: 'gfs' });
    const err = await b.s.create({ name: 'taken', driver: 'local' }).catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
    expect((err as Error).message).toBe("create taken: driver 'gfs' already has volume 'taken': volume name must be unique");
    // No driver named: the global volume, as moby returns the volume of any driver that has it.
    expect((await b.s.create({ name: 'taken' })).Driver).toBe('gfs');
  });

  it("refuses removal on any host while a host holds a reference, then forgets the volume everywhere", async () => {
    const { a, b, gfs } = await twoHosts(backend);
    await a.s.create({ name: 'm', driver: 'gfs' });
    await a.s.mount('m', 'ref1');

    for (const host of [a, b]) {
      const err = await host.s.remove('m', { force: true }).catch((e: unknown) => e);
      expect((err as Error).message).toBe('remove m: volume is in use - [host-a/ref1]');
    }
    const dangling = Filters.empty();
    dangling.add('dangling', 'false');
    expect((await b.s.list(dangling)).volumes.map((v) => v.Name)).toEqual(['m']);
    expect((await b.s.diskUsage()).find((v) => v.Name === 'm')?.UsageData).toEqual({ Size: -1, RefCount: 1 });

    await a.s.unmount('m', 'ref1');
    await b.s.remove('m');
    expect(gfs.volumes.has('m')).toBe(false);
    expect(b.h.events.events.at(-1)).toEqual({ name: 'm', action: 'destroy', attributes: { driver: 'gfs', host: 'host-b' } });
    expect(a.h.events.events.at(-1)).toEqual({ name: 'm', action: 'destroy', attributes: { driver: 'gfs', host: 'host-b' } });
    expect(kindOf(await a.s.get('m').catch((e: unknown) => e))).toBe('not-found');
    // The name is free again, for any driver.
    expect((await a.s.create({ name: 'm', driver: 'local' })).Driver).toBe('local');
    // The reference was never the local store's (it is the cluster's, and the cluster store's own file).
    expect((await localRecords(a)).map((r) => [r.name, r.driver, r.refs])).toEqual([['m', 'local', []]]);
  });

  it("asks the cluster for a volume of a global driver that this host's cache has not seen, instead of recording it here", async () => {
    const { a, b, cluster } = await twoHosts(backend);
    await a.s.create({ name: 'fresh', driver: 'gfs', labels: { k: 'v' } });
    cluster.host('host-b').hidden.add('fresh');
    await b.s.mount('fresh', 'ref-b');
    expect(cluster.refs.get('fresh')).toEqual(new Set(['host-b/ref-b']));
    expect((await b.s.get('fresh')).Labels).toEqual({ k: 'v' });
    expect((await a.s.remove('fresh').catch((e: unknown) => e) as Error).message).toBe('remove fresh: volume is in use - [host-b/ref-b]');
    expect(await localRecords(b)).toEqual([]);
  });

  it('keeps local volumes working while the cluster is unreachable; global operations fail clearly, ls warns', async () => {
    const { a, cluster, gfs } = await twoHosts(backend);
    await a.s.create({ name: 'g', driver: 'gfs' });
    cluster.down = true;

    await a.s.create({ name: 'l', driver: 'local' });
    await a.s.mount('l', 'r');
    await a.s.unmount('l', 'r');
    await a.s.remove('l');

    const created = await a.s.create({ name: 'g2', driver: 'gfs' }).catch((e: unknown) => e);
    expect(isUnavailable(created)).toBe(true);
    expect((created as Error).message).toBe('create g2: cluster store fake://: etcd is unreachable (connect ECONNREFUSED 127.0.0.1:2379)');
    expect(gfs.volumes.has('g2')).toBe(false); // the driver was not asked
    for (const failing of [a.s.remove('g'), a.s.mount('g', 'r')]) expect(isUnavailable(await failing.catch((e: unknown) => e))).toBe(true);
    expect(gfs.volumes.has('g')).toBe(true);

    const listed = await a.s.list(all());
    expect(listed.volumes.map((v) => v.Name)).toEqual(['g']);
    expect(listed.warnings).toEqual([
      'cluster store fake://: etcd is unreachable (connect ECONNREFUSED 127.0.0.1:2379); global volumes are listed as this host last saw them',
    ]);

    cluster.down = false;
    expect((await a.s.list(all())).warnings).toEqual([]);
    await a.s.remove('g');
  });

  it('restores the global volumes this host holds references on, live-restoring each reference', async () => {
    const { a, gfs, cluster } = await twoHosts(backend);
    await a.s.create({ name: 'kept', driver: 'gfs' });
    await a.s.create({ name: 'idle', driver: 'gfs' });
    await a.s.mount('kept', 'ref1');
    const before = a.h.registry.refCount('gfs');

    const s = await a.h.restart(a.s, { cluster: cluster.host('host-a') });
    expect((gfs.volumes.get('kept') as FakeVolume).liveRestored).toEqual(['ref1']);
    // Only the held one is cached at start (one more driver reference); others are found on first use.
    expect(a.h.registry.refCount('gfs')).toBe(before + 1);
    expect(((await s.remove('kept').catch((e: unknown) => e)) as Error).message).toBe('remove kept: volume is in use - [host-a/ref1]');
    await s.unmount('kept', 'ref1');
    expect((gfs.volumes.get('kept') as FakeVolume).unmounts).toEqual(['ref1']);
    await s.remove('kept');
    await s.remove('idle');
  });
});
