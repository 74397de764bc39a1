import { describe, expect, it } from 'vitest';
import { checkBolt } from './check.js';
import { BoltFile } from './reader.js';
import { writeBolt, type BoltWriteEntry } from './writer.js';

const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8'));
const entry = (key: string, value: string): BoltWriteEntry => ({ key, value: Buffer.from(value) });
const readAll = (file: BoltFile, bucket: string): Array<[string, string | undefined]> =>
  [...(file.bucket(bucket)?.entries() ?? [])].map((e) => [text(e.key) as string, text(e.value)]);

describe('writeBolt', () => {
  it('writes an empty file as a fresh bbolt does: two metas, a freelist, an empty root leaf', () => {
    const file = BoltFile.fromBytes(writeBolt([]));
    expect(file.meta).toEqual({ pageSize: 4096, txid: 1, highWaterMark: 4, rootPage: 3, freelistPage: 2 });
    expect([...file.root.entries()]).toEqual([]);
    expect(checkBolt(file)).toEqual([]);
  });

  it('keeps a small bucket inline, sorted, with its values', () => {
    const bytes = writeBolt([{ name: 'volumes', entries: [entry('b', '2'), entry('a', '1'), entry('c', '')] }]);
    const file = BoltFile.fromBytes(bytes);
    // Inline: no page besides the metas, the freelist and the root leaf.
    expect(file.meta.highWaterMark).toBe(4);
    expect(readAll(file, 'volumes')).toEqual([['a', '1'], ['b', '2'], ['c', '']]);
    expect(file.root.get('volumes')).toBeUndefined(); // a bucket, not a value
    expect([...file.root.entries()].map((e) => [text(e.key), e.value])).toEqual([['volumes', undefined]]);
    expect(checkBolt(file)).toEqual([]);
  });

  it('writes an empty bucket', () => {
    const file = BoltFile.fromBytes(writeBolt([{ name: 'volumes', entries: [] }]));
    expect(file.bucket('volumes')).toBeDefined();
    expect(readAll(file, 'volumes')).toEqual([]);
    expect(file.bucket('other')).toBeUndefined();
  });

  it('spreads many keys over leaf pages under branch pages, every page accounted for', () => {
    const entries = Array.from({ length: 50_000 }, (_, i) => entry(`key-${String(i).padStart(6, '0')}`, `value ${i}`));
    const file = BoltFile.fromBytes(writeBolt([{ name: 'big', entries: [...entries].reverse() }, { name: 'small', entries: [entry('k', 'v')] }]));
    const read = readAll(file, 'big');
    expect(read).toHaveLength(50_000);
    expect(read[0]).toEqual(['key-000000', 'value 0']);
    expect(read.at(-1)).toEqual(['key-049999', 'value 49999']);
    expect(readAll(file, 'small')).toEqual([['k', 'v']]);
    expect(checkBolt(file)).toEqual([]);

    const big = file.bucket('big');
    expect(text(big?.get('key-031337'))).toBe('value 31337');
    expect(big?.get('key-031337x')).toBeUndefined();
    const cursor = big?.cursor();
    // The first key at or after the one sought.
    expect(text(cursor?.seek('key-0499985')?.key)).toBe('key-049999');
    expect(cursor?.next()).toBeUndefined();
    expect(cursor?.seek('key-0499995')).toBeUndefined();
    expect(text(cursor?.seek('')?.key)).toBe('key-000000');
    expect(text(cursor?.next()?.key)).toBe('key-000001');
  });

  it('puts a value larger than a page on overflow pages', () => {
    const large = 'x'.repeat(3 * 4096 + 17);
    const file = BoltFile.fromBytes(writeBolt([{ name: 'b', entries: [entry('a', 'small'), entry('big', large), entry('c', 'small')] }]));
    expect(readAll(file, 'b')).toEqual([['a', 'small'], ['big', large], ['c', 'small']]);
    expect(checkBolt(file)).toEqual([]);
  });

  it('writes other page sizes', () => {
    const entries = Array.from({ length: 2000 }, (_, i) => entry(`k${i}`, 'v'.repeat(i % 300)));
    const file = BoltFile.fromBytes(writeBolt([{ name: 'b', entries }], { pageSize: 16384 }));
    expect(file.meta.pageSize).toBe(16384);
    expect(readAll(file, 'b')).toHaveLength(2000);
    expect(checkBolt(file)).toEqual([]);
  });

  it('refuses duplicate, empty and oversized keys, and bad page sizes', () => {
    expect(() => writeBolt([{ name: 'b', entries: [entry('a', '1'), entry('a', '2')] }])).toThrow('bbolt: duplicate key "a"');
    expect(() => writeBolt([{ name: 'b', entries: [entry('', '1')] }])).toThrow('bbolt: a key must not be empty');
    expect(() => writeBolt([{ name: 'b', entries: [] }, { name: 'b', entries: [] }])).toThrow('bbolt: duplicate bucket name "b"');
    expect(() => writeBolt([{ name: 'b', entries: [entry('k'.repeat(32769), '')] }])).toThrow('over the limit of 32768');
    expect(() => writeBolt([], { pageSize: 1000 })).toThrow('invalid bbolt page size 1000');
  });
});
