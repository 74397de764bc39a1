import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BerthError } from '@berth/errdefs';
import { branchChildren, breakMetaChecksum, bucketRootPage, garbleMeta, readEverything, setBranchChild } from '../test/corrupt.js';
import { checkBolt } from './check.js';
import { BoltFile } from './reader.js';
import { writeBolt } from './writer.js';

const many = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `volume-${String(i).padStart(5, '0')}`, value: Buffer.from(`{"Name":"volume-${i}","Driver":"local"}`) }));

/** A file with a branch page (3,000 keys) and an inline bucket. */
function sample(): Uint8Array {
  return writeBolt([{ name: 'volumes', entries: many(3000) }, { name: 'tiny', entries: [{ key: 'k', value: Buffer.from('v') }] }]);
}

const read = (bytes: Uint8Array): number => readEverything(BoltFile.fromBytes(bytes, { source: '/x/metadata.db' }));

describe('BoltFile on damaged files', () => {
  it('reads the sample', () => {
    expect(read(sample())).toBe(3001);
  });

  it('refuses a file too small to hold a meta page', () => {
    expect(() => read(new Uint8Array(50))).toThrow('/x/metadata.db: not a bbolt file: 50 bytes is too small');
  });

  it('refuses a truncated file, naming the sizes', () => {
    const bytes = sample();
    expect(() => read(bytes.subarray(0, bytes.byteLength - 4096))).toThrow(
      `/x/metadata.db: truncated bbolt file: its ${bytes.byteLength / 4096} pages of 4096 bytes need ${bytes.byteLength} bytes, the file has ${bytes.byteLength - 4096}`,
    );
  });

  it('uses the other meta page when one is damaged, and refuses when both are', () => {
    const bytes = sample();
    garbleMeta(bytes, 1, 4096);
    expect(BoltFile.fromBytes(bytes).meta.txid).toBe(0);
    expect(read(bytes)).toBe(3001);
    garbleMeta(bytes, 0, 4096);
    expect(() => read(bytes)).toThrow(/^\/x\/metadata\.db: not a bbolt file, or both meta pages are damaged \(page 0: bad magic 0x[0-9a-f]{8}; page 1: bad magic/);
  });

  it('checks the meta checksums', () => {
    const bytes = sample();
    breakMetaChecksum(bytes, 0, 4096);
    breakMetaChecksum(bytes, 1, 4096);
    expect(() => read(bytes)).toThrow(/page 0: checksum mismatch \(stored 0x[0-9a-f]{16}, computed 0x[0-9a-f]{16}\); page 1: checksum mismatch/);
  });

  it('refuses a page id beyond the file, and a cycle', () => {
    const bytes = sample();
    const root = bucketRootPage(bytes, 'volumes');
    const [, second] = branchChildren(bytes, root);
    setBranchChild(bytes, root, 1, 9999);
    expect(() => read(bytes)).toThrow(`/x/metadata.db: corrupt bbolt file: branch page ${root} element 1 points to page 9999, outside the file's pages 2..`);
    setBranchChild(bytes, root, 1, root);
    expect(() => read(bytes)).toThrow(`/x/metadata.db: corrupt bbolt file: branch page ${root} of bucket "volumes" points back to page ${root}, which leads to it (a cycle)`);
    // The same leaf twice: its keys come again, out of order.
    setBranchChild(bytes, root, 1, branchChildren(bytes, root)[0] as number);
    expect(() => read(bytes)).toThrow('keys out of order');
    setBranchChild(bytes, root, 1, second as number);
    expect(read(bytes)).toBe(3001);
  });

  it('refuses a page that says it is another, and an element that runs off its page', () => {
    const bytes = sample();
    const root = bucketRootPage(bytes, 'volumes');
    const leaf = branchChildren(bytes, root)[0] as number;
    const view = new DataView(bytes.buffer);
    view.setBigUint64(leaf * 4096, 7n, true);
    expect(() => read(bytes)).toThrow(`corrupt bbolt file: page ${leaf} (branch page ${root} element 0) says it is page 7`);
    view.setBigUint64(leaf * 4096, BigInt(leaf), true);
    view.setUint32(leaf * 4096 + 16 + 4, 5000, true); // element 0's pos
    expect(() => read(bytes)).toThrow(`corrupt bbolt file: leaf page ${leaf}: element 0 reaches byte`);
  });

  it('finds unreachable pages and pages claimed twice (bbolt check)', () => {
    const bytes = sample();
    const root = bucketRootPage(bytes, 'volumes');
    const [first, second] = branchChildren(bytes, root) as [number, number];
    setBranchChild(bytes, root, 1, first);
    expect(checkBolt(BoltFile.fromBytes(bytes))).toEqual([`page ${first}: in bucket "volumes", but already in bucket "volumes"`, `page ${second}: unreachable unfreed`]);
  });

  it('never reads outside the file nor fails with anything but a clear error, whatever bytes change', () => {
    // Smaller than `sample()` (a branch page over a few leaves, an inline bucket): many runs, quickly.
    const original = writeBolt([{ name: 'volumes', entries: many(400) }, { name: 'tiny', entries: [{ key: 'k', value: Buffer.from('v') }] }]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: original.byteLength - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const bytes = original.slice();
        for (const [at, value] of edits) bytes[at] = value;
        try {
          read(bytes);
          checkBolt(BoltFile.fromBytes(bytes));
        } catch (err) {
          expect(BerthError.is(err), String(err)).toBe(true);
          expect((err as Error).message).toMatch(/^\/x\/metadata\.db: |^bbolt file: /);
        }
      }),
      { numRuns: 3000 },
    );
  }, 60_000);
});
