import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isConflict, isNotFound, isUnavailable } from '@berth/errdefs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClusterStore, type EtcdClusterStoreOptions, type RemovalClaim } from './etcd-cluster-store.js';
import { HELD_REFERENCES_FILE } from './held-references.js';
import { EtcdTestCluster } from './testing/etcd-cluster.js';
import type { GlobalVolumeEvent } from './volume-cache.js';

/**
 * The cluster store against a real 3-member etcd (Debian `etcd-server`) on 127.0.0.1: every test
 * runs on its own key prefix, so they share one cluster.
 */

let etcd: EtcdTestCluster;
let dir: string;
const stores: EtcdClusterStore[] = [];
let prefixes = 0;

beforeAll(async () => {
  etcd = await EtcdTestCluster.start();
  dir = await mkdtemp('/tmp/berth-cluster-store-');
}, 60_000);

afterAll(async () => {
  await etcd?.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

interface Hosts {
  prefix: string;
  open(host: string, extra?: Partial<EtcdClusterStoreOptions>): Promise<EtcdClusterStore>;
}

function cluster(): Hosts {
  const prefix = `/test-${process.pid}-${++prefixes}`;
  return {
    prefix,
    async open(host, extra = {}) {
      const store = await EtcdClusterStore.open({ endpoints: etcd.endpoints, host, prefix, stateDir: join(dir, prefix, host), ...extra });
      stores.push(store);
      return store;
    },
  };
}

const input = (name: string, driver = 'gfs') => ({ name, driver, labels: { team: 'a' }, options: { size: '1g' } });

async function eventually<T>(probe: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function isClaim(x: RemovalClaim | { inUse: readonly string[] }): x is RemovalClaim {
  return !('inUse' in x);
}

describe('EtcdClusterStore on a 3-member etcd', () => {
  it('creates a record once, cluster-wide, and every host reads it from its cache', async () => {
    const c = cluster();
    const a = await c.open('host-a');
    const b = await c.open('host-b');
    expect(a.warning()).toBeUndefined();

    const first = await a.create(input('v1'));
    expect(first.created).toBe(true);
    expect(first.record).toMatchObject({ name: 'v1', driver: 'gfs', labels: { team: 'a' }, options: { size: '1g' }, host: 'host-a', refs: [] });
    expect(a.lookup('v1')).toEqual(first.record);

    const seen = await eventually(() => b.lookup('v1'), (r) => r !== undefined);
    expect(seen).toEqual(first.record);

    // The same name again, from another host and with other labels or driver: the first record.
    const again = await b.create({ ...input('v1', 'other'), labels: null });
    expect(again).toEqual({ record: first.record, created: false });
  });

  it('lets exactly one of many concurrent creates of a name commit', async () => {
    const c = cluster();
    const hosts = await Promise.all(['h1', 'h2', 'h3'].map((h) => c.open(h)));
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => (hosts[i % 3] as EtcdClusterStore).create(input('race', i % 2 === 0 ? 'gfs' : 'nfs'))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const winner = results.find((r) => r.created)?.record;
    for (const r of results) expect(r.record).toEqual(winner);
  });

  it('tells other hosts of creates and removes, naming where they happened', async () => {
    const c = cluster();
    const a = await c.open('host-a');
    const b = await c.open('host-b');
    const seenByB: GlobalVolumeEvent[] = [];
    const seenByA: GlobalVolumeEvent[] = [];
    b.subscribe((e) => seenByB.push(e));
    a.subscribe((e) => seenByA.push(e));

    await a.create(input('ev'));
    await eventually(() => seenByB.length, (n) => n >= 1);
    const claim = await b.claimRemoval('ev');
    if (!isClaim(claim)) throw new Error('not claimed');
    await claim.commit();
    expect(b.lookup('ev')).toBeUndefined();
    await eventually(() => seenByA.length, (n) => n >= 1);
    await eventually(() => a.lookup('ev'), (r) => r === undefined);

    expect(seenByB).toEqual([{ action: 'create', name: 'ev', driver: 'gfs', host: 'host-a' }]);
    expect(seenByA).toEqual([{ action: 'destroy', name: 'ev', driver: 'gfs', host: 'host-b' }]);
  });

  it('refuses a removal while any host holds a reference, and references while a removal is claimed', async () => {
    const c = cluster();
    const a = await c.open('host-a');
    const b = await c.open('host-b');
    await a.create(input('busy'));
    await a.addRef('busy', 'ref1');
    await eventually(() => b.lookup('busy')?.refs, (refs) => refs?.length === 1);
    expect(b.lookup('busy')?.refs).toEqual(['host-a/ref1']);
    expect(await b.claimRemoval('busy')).toEqual({ inUse: ['host-a/ref1'] });
    expect(a.heldReferences()).toEqual(new Map([['busy', { driver: 'gfs', refs: ['ref1'] }]]));

    await a.removeRef('busy', 'ref1');
    expect(a.heldReferences().size).toBe(0);
    const claim = await b.claimRemoval('busy');
    expect(isClaim(claim)).toBe(true);
    // While host-b removes it, host-a cannot take a reference, nor claim it too.
    const refused = await a.addRef('busy', 'ref2').catch((e: unknown) => e);
    expect(isConflict(refused)).toBe(true);
    expect((refused as Error).message).toBe('volume is being removed by host-b');
    expect(isConflict(await a.claimRemoval('busy').catch((e: unknown) => e))).toBe(true);
    if (isClaim(claim)) await claim.release();
    await a.addRef('busy', 'ref2');
    await a.removeRef('busy', 'ref2');

    const gone = await a.addRef('nothing', 'ref').catch((e: unknown) => e);
    expect(isNotFound(gone)).toBe(true);
    expect(isNotFound(await a.claimRemoval('nothing').catch((e: unknown) => e))).toBe(true);
  });

  it("drops a dead host's references when its lease expires, and the host asserts them again when it comes back", async () => {
    const c = cluster();
    const a = await c.open('host-a', { leaseTtlSeconds: 2 });
    const b = await c.open('host-b');
    await a.create(input('held'));
    await a.addRef('held', 'ref1');
    await eventually(() => b.lookup('held')?.refs.length, (n) => n === 1);

    // A host that stops without revoking (what `kill -9` leaves): its references expire with the lease.
    stores.splice(stores.indexOf(a), 1);
    await a.close();
    expect(JSON.parse(await readFile(join(dir, c.prefix, 'host-a', HELD_REFERENCES_FILE), 'utf8')).volumes).toEqual({
      held: { driver: 'gfs', refs: ['ref1'] },
    });
    await eventually(() => b.lookup('held')?.refs.length, (n) => n === 0, 10_000);

    const back = await c.open('host-a', { leaseTtlSeconds: 2 });
    expect(back.heldReferences().get('held')).toEqual({ driver: 'gfs', refs: ['ref1'] });
    await eventually(() => b.lookup('held')?.refs, (refs) => refs?.length === 1);
    expect(await b.claimRemoval('held')).toEqual({ inUse: ['host-a/ref1'] });
  });

  it('drops held references of a volume removed while the host was away', async () => {
    const c = cluster();
    const a = await c.open('host-a', { leaseTtlSeconds: 2 });
    const b = await c.open('host-b');
    await a.create(input('removed'));
    await a.addRef('removed', 'ref1');
    stores.splice(stores.indexOf(a), 1);
    await a.close();
    await eventually(() => b.lookup('removed')?.refs.length, (n) => n === 0, 10_000);
    const claim = await b.claimRemoval('removed');
    if (!isClaim(claim)) throw new Error('not claimed');
    await claim.commit();

    const back = await c.open('host-a', { leaseTtlSeconds: 2 });
    expect(back.heldReferences().size).toBe(0);
    expect(back.lookup('removed')).toBeUndefined();
  });

  it('refuses a second berthd with the same host name while the first lives', async () => {
    const c = cluster();
    await c.open('twin');
    const second = await c.open('twin', { stateDir: join(dir, c.prefix, 'twin-2') });
    expect(second.warning()).toMatch(/the cluster host name 'twin' is in use by another berthd .*--cluster-advertise/);
    await second.create(input('x')); // a create needs no lease
    const refused = await second.addRef('x', 'r').catch((e: unknown) => e);
    expect(isUnavailable(refused)).toBe(true);
    expect((refused as Error).message).toMatch(/^cluster store etcd:\/\/\S+: the cluster host name 'twin' is in use by another berthd/);
  });

  it('fails within the command timeout while every member is frozen (a partition), and heals by itself', async () => {
    const c = cluster();
    const a = await c.open('host-a', { commandTimeoutMs: 1_000 });
    const b = await c.open('host-b', { commandTimeoutMs: 1_000 });
    await a.create(input('before'));
    for (let i = 0; i < etcd.size; i++) etcd.freeze(i);
    try {
      const t = Date.now();
      const err = await a.create(input('during')).catch((e: unknown) => e);
      expect(Date.now() - t).toBeLessThan(2_500);
      expect(isUnavailable(err)).toBe(true);
      expect((err as Error).message).toBe(`cluster store ${a.display}: etcd did not answer within 1000ms`);
      expect(a.warning()).toBe(`cluster store ${a.display}: etcd did not answer within 1000ms`);
      // Reads never wait: the cache answers.
      expect(a.lookup('before')?.name).toBe('before');
    } finally {
      for (let i = 0; i < etcd.size; i++) etcd.thaw(i);
    }
    await eventually(() => a.warning(), (w) => w === undefined, 20_000);
    await b.create(input('after'));
    await eventually(() => a.lookup('after'), (r) => r !== undefined);
  });

  it('keeps working with one member killed, whichever it was', async () => {
    const c = cluster();
    const a = await c.open('host-a');
    const b = await c.open('host-b');
    const leader = (await etcd.leader()) ?? 0;
    await etcd.kill(leader);
    try {
      // A new leader is elected within the election timeout; until then requests may fail.
      await eventually(() => a.create(input('k')).then(() => true, () => false), (ok) => ok, 20_000);
      await eventually(() => b.lookup('k'), (r) => r !== undefined);
      await b.addRef('k', 'r');
      expect(await a.claimRemoval('k')).toEqual({ inUse: ['host-b/r'] });
    } finally {
      etcd.restart(leader);
      await etcd.waitHealthy();
    }
  });

  it('talks TLS with a client certificate (cacert, cert, key), and says why when it cannot', async () => {
    const secure = await EtcdTestCluster.start({ size: 1, tls: true, dir: join(dir, 'tls-etcd') });
    try {
      const tls = secure.tls;
      if (tls === undefined) throw new Error('no TLS');
      const [ca, cert, key] = await Promise.all([readFile(tls.cacert), readFile(tls.cert), readFile(tls.key)]);
      const a = await EtcdClusterStore.open({ endpoints: secure.endpoints, host: 'tls-a', stateDir: join(dir, 'tls-a'), tls: { ca, cert, key } });
      stores.push(a);
      expect(a.warning()).toBeUndefined();
      expect((await a.create(input('secure'))).created).toBe(true);
      await a.addRef('secure', 'r');

      // Without the client certificate the members refuse the connection.
      const b = await EtcdClusterStore.open({ endpoints: secure.endpoints, host: 'tls-b', stateDir: join(dir, 'tls-b'), tls: { ca }, commandTimeoutMs: 1_000 });
      stores.push(b);
      expect(b.warning()).toMatch(/^cluster store etcd:\/\/127\.0\.0\.1:\d+: etcd is unreachable \(.*certificate.*\)$/);
      expect(isUnavailable(await b.create(input('nope')).catch((e: unknown) => e))).toBe(true);
      expect(b.lookup('secure')).toBeUndefined();
    } finally {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      await secure.close();
    }
  });
});
