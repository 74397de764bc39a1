import { describe, expect, it } from 'vitest';
import { ClusterKeys, prefixEnd } from './keys.js';
import { encodeRecord, VolumeCache, type KeyValue } from './volume-cache.js';

const keys = new ClusterKeys('/berth');
const at = new Date('2026-03-04T05:06:07.089Z');
let revision = 10;

const record = (name: string, host = 'h1', driver = 'gfs', createRevision?: number): KeyValue => {
  const rev = String(++revision);
  return {
    key: keys.volume(name),
    value: encodeRecord({ name, driver, labels: { a: 'b' }, options: null }, host, at),
    create_revision: String(createRevision ?? rev),
    mod_revision: rev,
  };
};
const ref = (name: string, host: string, id: string): KeyValue => ({ key: keys.ref(name, host, id), value: Buffer.alloc(0), create_revision: '1', mod_revision: '1' });
const claim = (name: string, host: string): KeyValue => ({ key: keys.claim(name), value: Buffer.from(host), create_revision: '1', mod_revision: '1' });

describe('ClusterKeys', () => {
  it('lays keys out under the prefix and reads them back', () => {
    expect(keys.volume('v').toString()).toBe('/berth/volumes/v');
    expect(keys.parse(keys.ref('v', 'h1', 'a/b'))).toEqual({ kind: 'ref', name: 'v', host: 'h1', ref: 'a/b' });
    expect(keys.parse(keys.claim('v'))).toEqual({ kind: 'claim', name: 'v' });
    expect(keys.parse(keys.host('h1'))).toEqual({ kind: 'host', host: 'h1' });
    for (const odd of ['/berth/volumes/a/b', '/berth/refs/v/h1', '/other/volumes/v', '/berth/volumes/', '/berthx/volumes/v']) expect(keys.parse(odd)).toBeUndefined();
    expect(keys.refsOf('v')).toEqual({ key: Buffer.from('/berth/refs/v/'), range_end: Buffer.from('/berth/refs/v0') });
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });
});

describe('VolumeCache', () => {
  it('loads a snapshot silently, then reports what appeared and went', () => {
    const cache = new VolumeCache(keys);
    const v1 = record('v1');
    expect(cache.load([ref('v1', 'h2', 'r'), v1, claim('v2', 'h3'), record('v2', 'h1')], 20n)).toEqual([]);
    expect(cache.lookup('v1')).toEqual({
      name: 'v1', driver: 'gfs', labels: { a: 'b' }, options: null, createdAt: at.getTime(), host: 'h1', refs: ['h2/r'],
    });
    expect(cache.claimant('v2')).toBe('h3');

    // After a reconnection: v2 went (removed by h3, whose claim was seen), v3 came, v1 was re-created.
    expect(cache.load([record('v1', 'h4'), record('v3', 'h2')], 30n)).toEqual([
      { action: 'destroy', name: 'v1', driver: 'gfs', host: '' },
      { action: 'destroy', name: 'v2', driver: 'gfs', host: 'h3' },
      { action: 'create', name: 'v1', driver: 'gfs', host: 'h4' },
      { action: 'create', name: 'v3', driver: 'gfs', host: 'h2' },
    ]);
  });

  it('applies watch events in order, and a host\'s own writes unless the watch is past them', () => {
    const cache = new VolumeCache(keys);
    cache.load([], 40n);
    const v = record('w', 'h1');
    expect(cache.apply([{ type: 'Put', kv: v }, { type: 'Put', kv: ref('w', 'h2', 'r1') }], BigInt(v.mod_revision))).toEqual([
      { action: 'create', name: 'w', driver: 'gfs', host: 'h1' },
    ]);
    expect(cache.lookup('w')?.refs).toEqual(['h2/r1']);
    expect(cache.apply([{ type: 'Delete', kv: ref('w', 'h2', 'r1') }], 50n)).toEqual([]);
    expect(cache.lookup('w')?.refs).toEqual([]);
    expect(cache.apply([{ type: 'Put', kv: claim('w', 'h2') }, { type: 'Delete', kv: { ...v, value: Buffer.alloc(0) } }, { type: 'Delete', kv: claim('w', 'h2') }], 51n)).toEqual([
      { action: 'destroy', name: 'w', driver: 'gfs', host: 'h2' },
    ]);

    // An answer to this host's own create at a revision the watch has already passed changes nothing.
    const stale = { ...record('w', 'h1'), mod_revision: '45', create_revision: '45' };
    expect(cache.remember(stale)?.name).toBe('w');
    expect(cache.lookup('w')).toBeUndefined();
    cache.remember({ ...record('x', 'h1'), mod_revision: '60', create_revision: '60' });
    expect(cache.lookup('x')?.host).toBe('h1');
    cache.forget('x', 40n); // older than what the cache reflects: ignored
    expect(cache.lookup('x')).toBeDefined();
    cache.forget('x', 61n);
    expect(cache.lookup('x')).toBeUndefined();
  });

  it('skips records it cannot read, and says so', () => {
    const invalid: string[] = [];
    const cache = new VolumeCache(keys, (key, reason) => invalid.push(`${key}: ${reason}`));
    cache.load([{ ...record('bad'), value: Buffer.from('{"Name":"bad"}') }, { ...record('worse'), value: Buffer.from('nope') }], 60n);
    expect(cache.size).toBe(0);
    expect(invalid).toEqual(['/berth/volumes/bad: no Driver', expect.stringMatching(/^\/berth\/volumes\/worse: /)]);
  });
});
