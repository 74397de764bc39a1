import { readFile } from 'node:fs/promises';
import { BerthError } from '@berth/errdefs';
import {
  BRANCH_PAGE,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  compareKeys,
  ELEMENT_SIZE,
  fnv1a64,
  FREELIST_COUNT_OVERFLOW,
  FREELIST_PAGE,
  isPageSize,
  LEAF_PAGE,
  MAGIC,
  META_CHECKSUMMED,
  META_PAGE,
  META_SIZE,
  PAGE_HEADER_SIZE,
  VERSION,
} from './format.js';

/** One key of a bucket. `value` is `undefined` when the key names a nested bucket (as in bbolt). */
export interface BoltEntry {
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

export interface BoltOpenOptions {
  signal?: AbortSignal | undefined;
}

export interface BoltFromBytesOptions {
  /** Named in every error (default `bbolt file`): the path, when the bytes came from a file. */
  source?: string | undefined;
}

/** The current meta page. */
export interface BoltMeta {
  readonly pageSize: number;
  readonly txid: number;
  /** Pages below this id are allocated; the file holds at least this many pages. */
  readonly highWaterMark: number;
  readonly rootPage: number;
  /** The freelist page, or `undefined` when the file does not persist its freelist. */
  readonly freelistPage: number | undefined;
}

/** A bounded view of one page: a page of the file, or the inline page inside a bucket's value. */
export interface Page {
  /** The page id; `undefined` for an inline page. */
  readonly id: number | undefined;
  readonly flags: number;
  readonly count: number;
  /** Absolute offsets of the page's header and of its end in the file's bytes. */
  readonly start: number;
  readonly end: number;
}

/** A path below a bucket's root deeper than this is a loop or garbage, never a real tree. */
const MAX_DEPTH = 64;

/**
 * A read-only bbolt file, held in memory. Every offset is checked against the file and every page
 * against the current meta's high-water mark before it is read: a corrupt file is refused with a
 * `BerthError` (kind `system`) whose message names the file and what is wrong, never read past.
 */
export class BoltFile {
  readonly source: string;
  readonly meta: BoltMeta;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  private constructor(bytes: Uint8Array, source: string) {
    this.source = source;
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.meta = this.#currentMeta();
  }

  /** Reads the file at `path` (opened read-only; nothing is written). */
  static async open(path: string, options: BoltOpenOptions = {}): Promise<BoltFile> {
    const bytes = await readFile(path, { signal: options.signal });
    return new BoltFile(bytes, path);
  }

  static fromBytes(bytes: Uint8Array, options: BoltFromBytesOptions = {}): BoltFile {
    return new BoltFile(bytes, options.source ?? 'bbolt file');
  }

  /** The root bucket, whose keys are the top-level buckets. */
  get root(): BoltBucket {
    return new BoltBucket(this, this.#treePage(this.meta.rootPage, 'the root bucket'), 'the root bucket');
  }

  /** A top-level bucket, or `undefined` when there is none of that name. */
  bucket(name: string | Uint8Array): BoltBucket | undefined {
    return this.root.bucket(name);
  }

  /** @internal A corruption error naming the file. */
  corrupt(detail: string): BerthError {
    return new BerthError('system', `${this.source}: corrupt bbolt file: ${detail}`);
  }

  /** @internal The page `id` as a branch or leaf page of a tree, checked. */
  treePage(id: number, from: string): Page {
    return this.#treePage(id, from);
  }

  /** @internal The inline page held in a bucket value at `[start, end)`. */
  inlinePage(start: number, end: number, bucket: string): Page {
    if (end - start < PAGE_HEADER_SIZE) throw this.corrupt(`${bucket}: inline bucket of ${end - start} bytes has no page header`);
    const page: Page = { id: undefined, flags: this.#u16(start + 8), count: this.#u16(start + 10), start, end };
    if (page.flags !== LEAF_PAGE) throw this.corrupt(`${bucket}: inline bucket page has flags 0x${page.flags.toString(16)}, not a leaf`);
    this.#checkElements(page, `${bucket} (inline)`);
    return page;
  }

  /** @internal Element `index` of a leaf page. */
  leafElement(page: Page, index: number): { flags: number; key: Uint8Array; value: Uint8Array } {
    const at = page.start + PAGE_HEADER_SIZE + index * ELEMENT_SIZE;
    const flags = this.#u32(at);
    const pos = this.#u32(at + 4);
    const ksize = this.#u32(at + 8);
    const vsize = this.#u32(at + 12);
    const keyStart = at + pos;
    const valueEnd = keyStart + ksize + vsize;
    if (valueEnd > page.end) throw this.corrupt(`${describe(page)}: element ${index} reaches byte ${valueEnd - page.start} of a ${page.end - page.start}-byte page`);
    return {
      flags,
      key: this.#bytes.subarray(keyStart, keyStart + ksize),
      value: this.#bytes.subarray(keyStart + ksize, valueEnd),
    };
  }

  /** @internal Element `index` of a branch page. */
  branchElement(page: Page, index: number): { key: Uint8Array; child: number } {
    const at = page.start + PAGE_HEADER_SIZE + index * ELEMENT_SIZE;
    const pos = this.#u32(at);
    const ksize = this.#u32(at + 4);
    const keyStart = at + pos;
    if (keyStart + ksize > page.end) throw this.corrupt(`${describe(page)}: element ${index} reaches byte ${keyStart + ksize - page.start} of a ${page.end - page.start}-byte page`);
    return { key: this.#bytes.subarray(keyStart, keyStart + ksize), child: this.#u64(at + 8, `${describe(page)}: element ${index}`) };
  }

  /** @internal Where `bytes` (a subarray of this file) starts in the file. */
  offsetOf(bytes: Uint8Array): number {
    return bytes.byteOffset - this.#bytes.byteOffset;
  }

  /** @internal */
  u64(offset: number, what: string): number {
    return this.#u64(offset, what);
  }

  /** @internal The freelist page's overflow and the page ids it lists (none without a freelist page). */
  freelist(): { overflow: number; ids: number[] } {
    const id = this.meta.freelistPage;
    if (id === undefined) return { overflow: 0, ids: [] };
    const start = id * this.meta.pageSize;
    const flags = this.#u16(start + 8);
    if (flags !== FREELIST_PAGE) throw this.corrupt(`page ${id} (the freelist) has flags 0x${flags.toString(16)}, not a freelist page`);
    const overflow = this.#u32(start + 12);
    if (id + overflow >= this.meta.highWaterMark) throw this.corrupt(`the freelist page ${id} runs past the high-water mark`);
    const end = start + (overflow + 1) * this.meta.pageSize;
    let first = start + PAGE_HEADER_SIZE;
    let count = this.#u16(start + 10);
    if (count === FREELIST_COUNT_OVERFLOW) {
      count = this.#u64(first, 'the freelist count');
      first += 8;
    }
    if (first + count * 8 > end) throw this.corrupt(`the freelist page ${id} lists ${count} ids that do not fit in it`);
    const ids: number[] = [];
    for (let i = 0; i < count; i++) ids.push(this.#u64(first + i * 8, 'the freelist'));
    return { overflow, ids };
  }

  #currentMeta(): BoltMeta {
    if (this.#bytes.byteLength < PAGE_HEADER_SIZE + META_SIZE) {
      throw new BerthError('system', `${this.source}: not a bbolt file: ${this.#bytes.byteLength} bytes is too small`);
    }
    const first = this.#readMeta(0, 0);
    // Page 1 starts one page in: the page size comes from page 0 when its meta is sound; else try
    // the sizes bbolt uses, as bbolt does when page 0 is damaged.
    const sizes = first.meta !== undefined ? [first.meta.pageSize] : [4096, 16384, 65536, 8192, 32768, 1024, 2048, 512];
    // Report the page-1 candidate that got furthest: one whose magic matched, else the first.
    let second: MetaResult | undefined;
    for (const size of sizes) {
      const result = this.#readMeta(1, size);
      if (second === undefined || result.meta !== undefined || !result.problem.startsWith('bad magic')) second = result;
      if (result.meta !== undefined || !result.problem.startsWith('bad magic')) break;
    }
    second ??= { problem: 'beyond the end of the file' };
    const candidates = [first.meta, second.meta].filter((m): m is BoltMeta => m !== undefined);
    if (candidates.length === 0) {
      throw new BerthError('system', `${this.source}: not a bbolt file, or both meta pages are damaged (page 0: ${first.problem}; page 1: ${second.problem})`);
    }
    const meta = candidates.reduce((a, b) => (b.txid > a.txid ? b : a));
    const needed = meta.highWaterMark * meta.pageSize;
    if (needed > this.#bytes.byteLength) {
      throw new BerthError(
        'system',
        `${this.source}: truncated bbolt file: its ${meta.highWaterMark} pages of ${meta.pageSize} bytes need ${needed} bytes, the file has ${this.#bytes.byteLength}`,
      );
    }
    return meta;
  }

  #readMeta(id: number, pageSize: number): MetaResult {
    const start = id * pageSize;
    const at = start + PAGE_HEADER_SIZE;
    if (at + META_SIZE > this.#bytes.byteLength) return { problem: 'beyond the end of the file' };
    const magic = this.#u32(at);
    if (magic !== MAGIC) return { problem: `bad magic 0x${magic.toString(16).padStart(8, '0')}` };
    const version = this.#u32(at + 4);
    if (version !== VERSION) return { problem: `unsupported version ${version}` };
    const stored = this.#view.getBigUint64(at + 56, true);
    const computed = fnv1a64(this.#bytes.subarray(at, at + META_CHECKSUMMED));
    if (stored !== computed) return { problem: `checksum mismatch (stored ${hex64(stored)}, computed ${hex64(computed)})` };
    const flags = this.#u16(start + 8);
    if (flags !== META_PAGE) return { problem: `flags 0x${flags.toString(16)}, not a meta page` };
    const size = this.#u32(at + 8);
    if (!isPageSize(size)) return { problem: `page size ${size} is not a power of two between 512 and 1 MiB` };
    if (id !== 0 && size !== pageSize) return { problem: `page size ${size} does not match its offset` };
    const what = `meta page ${id}`;
    const rootPage = this.#u64(at + 16, what);
    const freelist = this.#view.getBigUint64(at + 32, true);
    const highWaterMark = this.#u64(at + 40, what);
    const txid = this.#u64(at + 48, what);
    if (highWaterMark < 2 || rootPage < 2 || rootPage >= highWaterMark) {
      return { problem: `root page ${rootPage} outside the high-water mark ${highWaterMark}` };
    }
    const freelistPage = freelist === 0xffff_ffff_ffff_ffffn ? undefined : Number(freelist);
    if (freelistPage !== undefined && (freelistPage < 2 || freelistPage >= highWaterMark)) {
      return { problem: `freelist page ${freelist} outside the high-water mark ${highWaterMark}` };
    }
    return { meta: { pageSize: size, txid, highWaterMark, rootPage, freelistPage } };
  }

  #treePage(id: number, from: string): Page {
    const { pageSize, highWaterMark } = this.meta;
    if (id < 2 || id >= highWaterMark) {
      throw this.corrupt(`${from} points to page ${id}, outside the file's pages 2..${highWaterMark - 1}`);
    }
    const start = id * pageSize;
    const selfId = this.#u64(start, `page ${id}`);
    if (selfId !== id) throw this.corrupt(`page ${id} (${from}) says it is page ${selfId}`);
    const flags = this.#u16(start + 8);
    if (flags !== BRANCH_PAGE && flags !== LEAF_PAGE) {
      throw this.corrupt(`page ${id} (${from}) has flags 0x${flags.toString(16)}, not a branch or leaf page`);
    }
    const overflow = this.#u32(start + 12);
    if (id + overflow >= highWaterMark) {
      throw this.corrupt(`page ${id} (${from}) runs over ${overflow} more pages, past the high-water mark ${highWaterMark}`);
    }
    const page: Page = { id, flags, count: this.#u16(start + 10), start, end: start + (overflow + 1) * pageSize };
    if (flags === BRANCH_PAGE && page.count === 0) throw this.corrupt(`branch page ${id} (${from}) has no elements`);
    this.#checkElements(page, `page ${id}`);
    return page;
  }

  #checkElements(page: Page, what: string): void {
    const needed = PAGE_HEADER_SIZE + page.count * ELEMENT_SIZE;
    if (needed > page.end - page.start) throw this.corrupt(`${what}: ${page.count} elements do not fit in ${page.end - page.start} bytes`);
  }

  #u16(offset: number): number {
    return this.#view.getUint16(offset, true);
  }

  #u32(offset: number): number {
    return this.#view.getUint32(offset, true);
  }

  #u64(offset: number, what: string): number {
    const value = this.#view.getBigUint64(offset, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.corrupt(`${what}: page id ${value} is out of range`);
    return Number(value);
  }
}

type MetaResult = { meta: BoltMeta; problem?: undefined } | { meta?: undefined; problem: string };

/** A bucket: its keys in order, its values, its nested buckets. */
export class BoltBucket {
  readonly #file: BoltFile;
  readonly #root: Page;
  readonly #name: string;

  /** @internal */
  constructor(file: BoltFile, root: Page, name: string) {
    this.#file = file;
    this.#root = root;
    this.#name = name;
  }

  cursor(): BoltCursor {
    return new BoltCursor(this.#file, this.#root, this.#name);
  }

  /** Every entry, in key order. */
  *entries(): IterableIterator<BoltEntry> {
    const cursor = this.cursor();
    for (let entry = cursor.first(); entry !== undefined; entry = cursor.next()) yield entry;
  }

  /** The value of `key`; `undefined` when there is none or the key names a nested bucket. */
  get(key: string | Uint8Array): Uint8Array | undefined {
    const wanted = toKey(key);
    const found = this.cursor().seek(wanted);
    return found !== undefined && compareKeys(found.key, wanted) === 0 ? found.value : undefined;
  }

  /** The nested bucket `name`, or `undefined` when there is none (or `name` holds a value). */
  bucket(name: string | Uint8Array): BoltBucket | undefined {
    const wanted = toKey(name);
    const cursor = this.cursor();
    const found = cursor.seek(wanted);
    if (found === undefined || compareKeys(found.key, wanted) !== 0 || found.value !== undefined) return undefined;
    const header = cursor.rawValue();
    const label = `bucket ${JSON.stringify(Buffer.from(wanted).toString('utf8'))}`;
    if (header.byteLength < BUCKET_HEADER_SIZE) throw this.#file.corrupt(`${label}: bucket value of ${header.byteLength} bytes`);
    const start = this.#file.offsetOf(header);
    const root = this.#file.u64(start, label);
    const page =
      root === 0
        ? this.#file.inlinePage(start + BUCKET_HEADER_SIZE, start + header.byteLength, label)
        : this.#file.treePage(root, label);
    return new BoltBucket(this.#file, page, label);
  }
}

/**
 * A position in a bucket, as bbolt's cursor: `first`, `next`, `seek`. Keys must come in strictly
 * increasing order and no page may be its own ancestor; a file that breaks either is corrupt.
 */
export class BoltCursor {
  readonly #file: BoltFile;
  readonly #root: Page;
  readonly #bucket: string;
  #stack: Array<{ page: Page; index: number }> = [];
  #last: Uint8Array | undefined;
  #raw: Uint8Array = new Uint8Array(0);

  /** @internal */
  constructor(file: BoltFile, root: Page, bucket: string) {
    this.#file = file;
    this.#root = root;
    this.#bucket = bucket;
  }

  first(): BoltEntry | undefined {
    this.#stack = [{ page: this.#root, index: 0 }];
    this.#last = undefined;
    this.#descend();
    return this.#settle();
  }

  next(): BoltEntry | undefined {
    const leaf = this.#stack.at(-1);
    if (leaf === undefined) return this.first();
    leaf.index++;
    return this.#settle();
  }

  /** The first entry whose key is at or after `key`. */
  seek(key: string | Uint8Array): BoltEntry | undefined {
    const wanted = toKey(key);
    this.#stack = [];
    this.#last = undefined;
    let page = this.#root;
    for (;;) {
      if (page.flags === LEAF_PAGE) {
        let index = 0;
        while (index < page.count && compareKeys(this.#file.leafElement(page, index).key, wanted) < 0) index++;
        this.#stack.push({ page, index });
        return this.#settle();
      }
      // The last child whose first key is at or before `key`.
      let index = 0;
      while (index + 1 < page.count && compareKeys(this.#file.branchElement(page, index + 1).key, wanted) <= 0) index++;
      this.#stack.push({ page, index });
      page = this.#child(page, index);
    }
  }

  /** @internal The raw bytes of the current element's value (a bucket header for a bucket). */
  rawValue(): Uint8Array {
    return this.#raw;
  }

  /** From the top of the stack down to a leaf, taking the first child of every branch. */
  #descend(): void {
    for (;;) {
      const top = this.#stack.at(-1);
      if (top === undefined || top.page.flags === LEAF_PAGE) return;
      this.#stack.push({ page: this.#child(top.page, top.index), index: 0 });
    }
  }

  #child(page: Page, index: number): Page {
    const { child } = this.#file.branchElement(page, index);
    if (this.#stack.some((level) => level.page.id === child)) {
      throw this.#file.corrupt(`${describe(page)} of ${this.#bucket} points back to page ${child}, which leads to it (a cycle)`);
    }
    if (this.#stack.length >= MAX_DEPTH) throw this.#file.corrupt(`${this.#bucket} is more than ${MAX_DEPTH} pages deep`);
    return this.#file.treePage(child, `${describe(page)} element ${index}`);
  }

  /** Moves past exhausted pages to the next element, and returns it. */
  #settle(): BoltEntry | undefined {
    for (;;) {
      const leaf = this.#stack.at(-1);
      if (leaf === undefined) return undefined;
      if (leaf.index < leaf.page.count) break;
      // This leaf is done: the next sibling of the nearest ancestor that has one.
      this.#stack.pop();
      const parent = this.#stack.at(-1);
      if (parent === undefined) return undefined;
      parent.index++;
      if (parent.index < parent.page.count) this.#descend();
    }
    const leaf = this.#stack.at(-1) as { page: Page; index: number };
    const element = this.#file.leafElement(leaf.page, leaf.index);
    if (this.#last !== undefined && compareKeys(element.key, this.#last) <= 0) {
      throw this.#file.corrupt(`${describe(leaf.page)} of ${this.#bucket}: keys out of order at element ${leaf.index}`);
    }
    this.#last = element.key;
    this.#raw = element.value;
    return { key: element.key, value: (element.flags & BUCKET_LEAF_FLAG) !== 0 ? undefined : element.value };
  }
}

function toKey(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
}

function describe(page: Page): string {
  return page.id === undefined ? 'inline page' : `${page.flags === LEAF_PAGE ? 'leaf' : 'branch'} page ${page.id}`;
}

function hex64(value: bigint): string {
  return `0x${value.toString(16).padStart(16, '0')}`;
}
