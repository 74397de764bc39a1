/**
 * bbolt's on-disk format (etcd-io/bbolt `internal/common`, v1.3.6 as in dockerd 20.10), in the
 * byte order of the x86-64 and arm64 machines that write Docker's files: little-endian.
 *
 *   page header (16 B)       id u64 | flags u16 | count u16 | overflow u32
 *   meta (after the header)  magic u32 | version u32 | pageSize u32 | flags u32 |
 *                            root bucket {root u64, sequence u64} | freelist u64 |
 *                            pgid (high-water mark) u64 | txid u64 | checksum u64
 *   branch element (16 B)    pos u32 | ksize u32 | pgid u64       key at element + pos
 *   leaf element (16 B)      flags u32 | pos u32 | ksize u32 | vsize u32   key, then value, at element + pos
 *   bucket value             root u64 | sequence u64, then (root = 0: inline bucket) a whole leaf page
 *   freelist page            `count` page ids u64 (count 0xFFFF: the real count is the first u64)
 *
 * A page takes (overflow + 1) * pageSize bytes. Pages 0 and 1 are the two metas; the valid one with
 * the higher txid is current. The checksum is FNV-1a 64 over the meta's first 56 bytes.
 */

export const PAGE_HEADER_SIZE = 16;
export const ELEMENT_SIZE = 16;
export const BUCKET_HEADER_SIZE = 16;
export const META_SIZE = 64;
export const META_CHECKSUMMED = 56;

export const BRANCH_PAGE = 0x01;
export const LEAF_PAGE = 0x02;
export const META_PAGE = 0x04;
export const FREELIST_PAGE = 0x10;

/** Leaf element flag: the value is a nested bucket. */
export const BUCKET_LEAF_FLAG = 0x01;

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
/** Meta `freelist` when the freelist is not persisted. */
export const NO_FREELIST = 0xffff_ffff_ffff_ffffn;
/** A freelist page whose `count` is this keeps its real count in its first id slot. */
export const FREELIST_COUNT_OVERFLOW = 0xffff;

/** bbolt's limits on keys and values. */
export const MAX_KEY_SIZE = 32768;
export const MAX_VALUE_SIZE = 0x7fff_fffe;

/** The page size bbolt picks on Linux x86-64 and arm64 (the OS page size). */
export const DEFAULT_PAGE_SIZE = 4096;

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = 0xffff_ffff_ffff_ffffn;

/** FNV-1a, 64 bits: the checksum of a meta page. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let hash = FNV_OFFSET;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK_64;
  return hash;
}

/** Byte-wise comparison, bbolt's key order. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export const isPageSize = (n: number): boolean => Number.isInteger(n) && n >= 512 && n <= 1 << 20 && (n & (n - 1)) === 0;
