import { BUCKET_HEADER_SIZE, BUCKET_LEAF_FLAG, LEAF_PAGE } from './format.js';
import type { BoltFile, Page } from './reader.js';

/**
 * bbolt's `tx.Check`, for the current meta: every page below the high-water mark is exactly one of
 * a meta page (0 and 1), the freelist page, a page listed free, or a page reachable from the root
 * bucket, and none is reached twice. Returns the problems found (none: the file is consistent).
 * Structural damage on the way (a page outside the file, a bad header) throws as reading does.
 */
export function checkBolt(file: BoltFile): string[] {
  const { highWaterMark, pageSize } = file.meta;
  const owner = new Map<number, string>([
    [0, 'meta'],
    [1, 'meta'],
  ]);
  const problems: string[] = [];
  const claim = (first: number, count: number, what: string): boolean => {
    for (let id = first; id < first + count; id++) {
      const previous = owner.get(id);
      if (previous !== undefined) {
        problems.push(`page ${id}: ${what}, but already ${previous}`);
        return false;
      }
      owner.set(id, what);
    }
    return true;
  };

  if (file.meta.freelistPage !== undefined) {
    const freelist = file.freelist();
    claim(file.meta.freelistPage, freelist.overflow + 1, 'the freelist');
    for (const id of freelist.ids) {
      if (id < 2 || id >= highWaterMark) problems.push(`page ${id}: listed free, but outside pages 2..${highWaterMark - 1}`);
      else claim(id, 1, 'free');
    }
  }

  const walk = (page: Page, bucket: string): void => {
    if (page.id !== undefined && !claim(page.id, (page.end - page.start) / pageSize, `in ${bucket}`)) return;
    for (let i = 0; i < page.count; i++) {
      if (page.flags === LEAF_PAGE) {
        const element = file.leafElement(page, i);
        if ((element.flags & BUCKET_LEAF_FLAG) === 0) continue;
        const name = `bucket ${JSON.stringify(Buffer.from(element.key).toString('utf8'))}`;
        if (element.value.byteLength < BUCKET_HEADER_SIZE) {
          problems.push(`${name}: bucket value of ${element.value.byteLength} bytes`);
          continue;
        }
        const start = file.offsetOf(element.value);
        const root = file.u64(start, name);
        walk(root === 0 ? file.inlinePage(start + BUCKET_HEADER_SIZE, start + element.value.byteLength, name) : file.treePage(root, name), name);
      } else {
        walk(file.treePage(file.branchElement(page, i).child, `page ${page.id ?? 'inline'} element ${i}`), bucket);
      }
    }
  };
  walk(file.treePage(file.meta.rootPage, 'the root bucket'), 'the root bucket');

  for (let id = 2; id < highWaterMark; id++) {
    if (!owner.has(id)) problems.push(`page ${id}: unreachable unfreed`);
  }
  return problems;
}
