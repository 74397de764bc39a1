import { BoltFile } from '../src/index.js';

/** Low-level edits of a bbolt file's bytes, to make the corrupt copies the tests read. */

const view = (bytes: Uint8Array): DataView => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The root page id of the top-level bucket `name` (0: inline), read without the reader's checks. */
export function bucketRootPage(bytes: Uint8Array, name: string): number {
  const file = BoltFile.fromBytes(bytes);
  const { pageSize, rootPage } = file.meta;
  const v = view(bytes);
  const page = rootPage * pageSize;
  const count = v.getUint16(page + 10, true);
  for (let i = 0; i < count; i++) {
    const at = page + 16 + i * 16;
    const key = bytes.subarray(at + v.getUint32(at + 4, true), at + v.getUint32(at + 4, true) + v.getUint32(at + 8, true));
    if (Buffer.from(key).toString() === name) return Number(v.getBigUint64(at + v.getUint32(at + 4, true) + key.byteLength, true));
  }
  throw new Error(`no bucket ${name}`);
}

/** Points element `index` of branch page `page` at `child`. */
export function setBranchChild(bytes: Uint8Array, page: number, index: number, child: number): void {
  const { pageSize } = BoltFile.fromBytes(bytes).meta;
  view(bytes).setBigUint64(page * pageSize + 16 + index * 16 + 8, BigInt(child), true);
}

/** The child page ids of branch page `page`. */
export function branchChildren(bytes: Uint8Array, page: number): number[] {
  const { pageSize } = BoltFile.fromBytes(bytes).meta;
  const v = view(bytes);
  const start = page * pageSize;
  return Array.from({ length: v.getUint16(start + 10, true) }, (_, i) => Number(v.getBigUint64(start + 16 + i * 16 + 8, true)));
}

export function pageFlags(bytes: Uint8Array, page: number): number {
  const { pageSize } = BoltFile.fromBytes(bytes).meta;
  return view(bytes).getUint16(page * pageSize + 8, true);
}

/** Overwrites the 64 meta bytes of meta page `id` (0 or 1) with garbage. */
export function garbleMeta(bytes: Uint8Array, id: 0 | 1, pageSize: number): void {
  for (let i = 0; i < 64; i++) bytes[id * pageSize + 16 + i] = (i * 37 + 11) & 0xff;
}

/** Changes the txid of meta page `id` without updating its checksum. */
export function breakMetaChecksum(bytes: Uint8Array, id: 0 | 1, pageSize: number): void {
  const at = id * pageSize + 16 + 48;
  view(bytes).setBigUint64(at, view(bytes).getBigUint64(at, true) + 2n, true);
}

/** Reads every entry of every top-level bucket, and the buckets nested in them. */
export function readEverything(file: BoltFile): number {
  let n = 0;
  for (const top of file.root.entries()) {
    const bucket = file.bucket(top.key);
    for (const entry of bucket?.entries() ?? []) {
      n++;
      if (entry.value === undefined) n += [...(bucket?.bucket(entry.key)?.entries() ?? [])].length;
    }
  }
  return n;
}
