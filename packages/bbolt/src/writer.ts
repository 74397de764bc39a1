import { invalidParameter } from '@berth/errdefs';
import {
  BRANCH_PAGE,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  compareKeys,
  DEFAULT_PAGE_SIZE,
  ELEMENT_SIZE,
  FREELIST_PAGE,
  fnv1a64,
  isPageSize,
  LEAF_PAGE,
  MAGIC,
  MAX_KEY_SIZE,
  MAX_VALUE_SIZE,
  META_CHECKSUMMED,
  META_PAGE,
  PAGE_HEADER_SIZE,
  VERSION,
} from './format.js';

export interface BoltWriteEntry {
  readonly key: string | Uint8Array;
  readonly value: Uint8Array;
}

/** A top-level bucket and its keys (any order; keys must be unique). */
export interface BoltWriteBucket {
  readonly name: string | Uint8Array;
  readonly entries: Iterable<BoltWriteEntry>;
}

export interface BoltWriteOptions {
  /** Default 4096, the page size bbolt picks on x86-64 and arm64 Linux. */
  pageSize?: number | undefined;
}

interface Element {
  key: Uint8Array;
  value: Uint8Array;
  flags: number;
}

interface Child {
  key: Uint8Array;
  page: number;
}

/**
 * Writes a complete bbolt file holding `buckets` (top-level buckets of plain keys, the subset
 * Docker's `volumes/metadata.db` needs), as bbolt itself lays one out after a commit: pages 0 and 1
 * the two metas (txids 0 and 1, checksummed), page 2 an empty freelist, then the buckets' pages;
 * a bucket small enough is stored inline in its key's value, a larger one as leaf pages under
 * branch pages, a value larger than a page on overflow pages. Every page below the high-water mark
 * is reachable or the freelist, so bbolt's consistency check and its next commits find what they
 * expect.
 */
export function writeBolt(buckets: Iterable<BoltWriteBucket>, options: BoltWriteOptions = {}): Uint8Array {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!isPageSize(pageSize)) throw invalidParameter(`invalid bbolt page size ${pageSize}`);
  const pages = new PageWriter(pageSize);

  const freelist = pages.allocate(1);
  pages.header(freelist, FREELIST_PAGE, 0);

  const top: Element[] = [];
  for (const bucket of buckets) {
    const entries = sortedUnique([...bucket.entries].map((e) => ({ key: toKey(e.key), value: e.value, flags: 0 })), 'key');
    top.push({ key: toKey(bucket.name), value: bucketValue(entries, pages), flags: BUCKET_LEAF_FLAG });
  }
  const root = writeTree(sortedUnique(top, 'bucket name'), pages);

  const file = pages.finish();
  for (const txid of [0, 1]) writeMeta(file, { pageSize, txid, root, freelist, highWaterMark: file.byteLength / pageSize });
  return file;
}

/** A bucket's value: the 16-byte header, then its leaf page when it is small enough to be inline. */
function bucketValue(entries: Element[], pages: PageWriter): Uint8Array {
  const size = leafSize(entries);
  // bbolt's rule: inline when the bucket's only page would fill at most a quarter of a page.
  if (size <= pages.pageSize / 4) {
    const value = new Uint8Array(BUCKET_HEADER_SIZE + size);
    writeLeaf(value.subarray(BUCKET_HEADER_SIZE), entries);
    return value;
  }
  const value = new Uint8Array(BUCKET_HEADER_SIZE);
  new DataView(value.buffer).setBigUint64(0, BigInt(writeTree(entries, pages)), true);
  return value;
}

/** Writes the leaf pages of `entries` and the branch pages above them; returns the root page id. */
function writeTree(entries: Element[], pages: PageWriter): number {
  let level: Child[] = pack(entries, (e) => ELEMENT_SIZE + e.key.byteLength + e.value.byteLength, pages.pageSize).map((group) => {
    const id = pages.allocate(pagesFor(leafSize(group), pages.pageSize));
    writeLeaf(pages.page(id), group);
    pages.stamp(id);
    return { key: group[0]?.key ?? new Uint8Array(0), page: id };
  });
  while (level.length > 1) {
    level = pack(level, (c) => ELEMENT_SIZE + c.key.byteLength, pages.pageSize).map((group) => {
      const id = pages.allocate(pagesFor(branchSize(group), pages.pageSize));
      writeBranch(pages.page(id), group);
      pages.stamp(id);
      return { key: (group[0] as Child).key, page: id };
    });
  }
  return (level[0] as Child).page;
}

/** Splits `items` into runs that fit one page each (a single item too large gets its own, with overflow). */
function pack<T>(items: T[], sizeOf: (item: T) => number, pageSize: number): T[][] {
  const groups: T[][] = [[]];
  let used = PAGE_HEADER_SIZE;
  for (const item of items) {
    const size = sizeOf(item);
    const current = groups.at(-1) as T[];
    if (current.length > 0 && used + size > pageSize) {
      groups.push([item]);
      used = PAGE_HEADER_SIZE + size;
    } else {
      current.push(item);
      used += size;
    }
  }
  return groups;
}

function leafSize(entries: Element[]): number {
  return entries.reduce((n, e) => n + ELEMENT_SIZE + e.key.byteLength + e.value.byteLength, PAGE_HEADER_SIZE);
}

function branchSize(children: Child[]): number {
  return children.reduce((n, c) => n + ELEMENT_SIZE + c.key.byteLength, PAGE_HEADER_SIZE);
}

const pagesFor = (bytes: number, pageSize: number): number => Math.max(1, Math.ceil(bytes / pageSize));

/** A leaf page into `target` (header flags and count; the id and overflow are the caller's): elements, then keys and values. */
function writeLeaf(target: Uint8Array, entries: Element[]): void {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  view.setUint16(8, LEAF_PAGE, true);
  view.setUint16(10, entries.length, true);
  let data = PAGE_HEADER_SIZE + entries.length * ELEMENT_SIZE;
  entries.forEach((entry, i) => {
    const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    view.setUint32(at, entry.flags, true);
    view.setUint32(at + 4, data - at, true);
    view.setUint32(at + 8, entry.key.byteLength, true);
    view.setUint32(at + 12, entry.value.byteLength, true);
    target.set(entry.key, data);
    target.set(entry.value, data + entry.key.byteLength);
    data += entry.key.byteLength + entry.value.byteLength;
  });
}

function writeBranch(target: Uint8Array, children: Child[]): void {
  const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
  view.setUint16(8, BRANCH_PAGE, true);
  view.setUint16(10, children.length, true);
  let data = PAGE_HEADER_SIZE + children.length * ELEMENT_SIZE;
  children.forEach((child, i) => {
    const at = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
    view.setUint32(at, data - at, true);
    view.setUint32(at + 4, child.key.byteLength, true);
    view.setBigUint64(at + 8, BigInt(child.page), true);
    target.set(child.key, data);
    data += child.key.byteLength;
  });
}

function writeMeta(
  file: Uint8Array,
  meta: { pageSize: number; txid: number; root: number; freelist: number; highWaterMark: number },
): void {
  const start = meta.txid % 2 === 0 ? 0 : meta.pageSize;
  const view = new DataView(file.buffer, file.byteOffset + start, meta.pageSize);
  view.setBigUint64(0, BigInt(meta.txid % 2), true);
  view.setUint16(8, META_PAGE, true);
  const at = PAGE_HEADER_SIZE;
  view.setUint32(at, MAGIC, true);
  view.setUint32(at + 4, VERSION, true);
  view.setUint32(at + 8, meta.pageSize, true);
  view.setUint32(at + 12, 0, true);
  view.setBigUint64(at + 16, BigInt(meta.root), true);
  view.setBigUint64(at + 24, 0n, true);
  view.setBigUint64(at + 32, BigInt(meta.freelist), true);
  view.setBigUint64(at + 40, BigInt(meta.highWaterMark), true);
  view.setBigUint64(at + 48, BigInt(meta.txid), true);
  const checksummed = file.subarray(start + at, start + at + META_CHECKSUMMED);
  view.setBigUint64(at + META_CHECKSUMMED, fnv1a64(checksummed), true);
}

/** Pages handed out in order after the two metas; the file is laid out from them at the end. */
class PageWriter {
  readonly pageSize: number;
  #next = 2;
  /** Each allocation by its first page id, in order. */
  readonly #allocations = new Map<number, Uint8Array>();

  constructor(pageSize: number) {
    this.pageSize = pageSize;
  }

  /** `count` consecutive pages; returns the first id. */
  allocate(count: number): number {
    const id = this.#next;
    this.#next += count;
    this.#allocations.set(id, new Uint8Array(count * this.pageSize));
    return id;
  }

  /** The bytes of the allocation that starts at `id`. */
  page(id: number): Uint8Array {
    const bytes = this.#allocations.get(id);
    if (bytes === undefined) throw new Error(`no allocation starts at page ${id}`);
    return bytes;
  }

  header(id: number, flags: number, count: number): void {
    const view = new DataView(this.page(id).buffer);
    view.setUint16(8, flags, true);
    view.setUint16(10, count, true);
    this.stamp(id);
  }

  /** Sets the page id and the overflow (the allocation's pages after the first) of a page. */
  stamp(id: number): void {
    const bytes = this.page(id);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(id), true);
    view.setUint32(12, bytes.byteLength / this.pageSize - 1, true);
  }

  finish(): Uint8Array {
    const file = new Uint8Array(this.#next * this.pageSize);
    for (const [id, bytes] of this.#allocations) file.set(bytes, id * this.pageSize);
    return file;
  }
}

function sortedUnique(elements: Element[], what: string): Element[] {
  for (const e of elements) {
    if (e.key.byteLength === 0) throw invalidParameter(`bbolt: a ${what} must not be empty`);
    if (e.key.byteLength > MAX_KEY_SIZE) throw invalidParameter(`bbolt: a ${what} of ${e.key.byteLength} bytes is over the limit of ${MAX_KEY_SIZE}`);
    if (e.value.byteLength > MAX_VALUE_SIZE) throw invalidParameter(`bbolt: a value of ${e.value.byteLength} bytes is too large`);
  }
  const sorted = elements.sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 1; i < sorted.length; i++) {
    if (compareKeys((sorted[i - 1] as Element).key, (sorted[i] as Element).key) === 0) {
      throw invalidParameter(`bbolt: duplicate ${what} ${JSON.stringify(Buffer.from((sorted[i] as Element).key).toString('utf8'))}`);
    }
  }
  return sorted;
}

function toKey(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
}
