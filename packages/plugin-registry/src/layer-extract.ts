import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BerthError, invalidParameter } from '@berth/errdefs';
import tar from 'tar-stream';

/** An entry of tar-stream's extractor (a streamx readable). */
type Entry = AsyncIterable<Uint8Array> & { readonly header: tar.Header; resume(): unknown };

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';

export interface ApplyLayerOptions {
  readonly signal?: AbortSignal | undefined;
  /** Bytes of the layer blob (compressed) consumed so far. */
  readonly onProgress?: ((read: number) => void) | undefined;
}

/**
 * Applies one layer (tar, or tar+gzip: detected from its first bytes, as moby's `ApplyLayer`
 * does) onto `rootfsDir`, with AUFS whiteouts (`.wh.<name>` removes a lower layer's file,
 * `.wh..wh..opq` empties a directory of lower layers' files).
 *
 * The layer comes from a registry and the daemon runs as root, so it is distrusted with the same
 * rules as a `docker plugin create` context (`@berth/plugin-manager`'s tar-context): entries with
 * `..` components or absolute names, device nodes and FIFOs, symlinks whose relative target
 * climbs out of the rootfs, hard links to anything outside it and entries below a symlink are
 * refused (`invalid-parameter`); no symlink is ever followed while writing. The caller removes
 * `rootfsDir` when this throws.
 */
export async function applyLayer(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  rootfsDir: string,
  options: ApplyLayerOptions = {},
): Promise<void> {
  const { signal } = options;
  signal?.throwIfAborted();
  const extract = tar.extract();
  const writer = new LayerWriter(rootfsDir);
  const input = decompressed(counting(source, options.onProgress));
  const onAbort = (): void => {
    extract.destroy(signal?.reason as Error);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const feeding = feed(input, extract, signal);
  feeding.catch(() => undefined);
  try {
    for await (const entry of extract as AsyncIterable<Entry>) {
      await writer.write(entry);
    }
    await feeding;
    await writer.finish();
  } catch (err) {
    extract.destroy();
    if (BerthError.is(err)) throw err;
    if (signal?.aborted === true) throw signal.reason;
    throw invalidParameter(`error applying layer: ${(err as Error).message}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function* counting(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  onProgress: ((read: number) => void) | undefined,
): AsyncIterable<Uint8Array> {
  let read = 0;
  for await (const chunk of source) {
    read += chunk.length;
    onProgress?.(read);
    yield chunk;
  }
}

/** The bytes of a tar, gunzipped when they start with gzip's magic number. */
async function* decompressed(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done === true) return;
  const head = first.value;
  const all = (async function* () {
    yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) return;
      yield next.value;
    }
  })();
  if (head.length < 2 || head[0] !== 0x1f || head[1] !== 0x8b) {
    yield* all;
    return;
  }
  const gunzip = createGunzip();
  pipeline(Readable.from(all), gunzip, () => undefined);
  yield* gunzip as AsyncIterable<Uint8Array>;
}

/** Writes the input into the extractor, honouring back-pressure and the signal. */
async function feed(input: AsyncIterable<Uint8Array>, extract: tar.Extract, signal: AbortSignal | undefined): Promise<void> {
  try {
    for await (const chunk of input) {
      if (extract.destroyed) return;
      signal?.throwIfAborted();
      if (!extract.write(chunk) && !extract.destroyed) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            extract.off('drain', done);
            extract.off('close', done);
            resolve();
          };
          extract.on('drain', done);
          extract.on('close', done);
        });
        if (extract.destroyed) return;
      }
    }
    signal?.throwIfAborted();
    extract.end(undefined);
  } catch (err) {
    extract.destroy(err as Error);
    throw err;
  }
}

function refuse(name: string, why: string): BerthError {
  return invalidParameter(`invalid plugin layer: tar entry "${name}": ${why}`);
}

/** The entry's path relative to the layer root (`""` for the root itself); `..` and absolute names refused. */
function entryName(raw: string): string {
  if (raw.startsWith('/')) throw refuse(raw, 'absolute paths are not allowed');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse(raw, 'paths must not contain ".."');
  return parts.join('/');
}

const IS_ROOT = process.getuid?.() === 0;

/** Writes one layer's entries below a directory without following a symlink anywhere. */
class LayerWriter {
  readonly #root: string;
  /** Relative directories known to be real directories. */
  readonly #dirs = new Set<string>(['']);
  /** Paths this layer wrote (an opaque whiteout keeps them). */
  readonly #written = new Set<string>();
  /** Directory times, set last: writing into a directory changes its mtime. */
  readonly #dirTimes: { full: string; mtime: Date }[] = [];

  constructor(root: string) {
    this.#root = root;
  }

  async write(entry: Entry): Promise<void> {
    const { header } = entry;
    const rel = entryName(header.name);
    const type = header.type ?? 'file';
    if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      entry.resume();
      throw refuse(rel, `${type.replace('-', ' ')}s are not allowed`);
    }
    if (rel === '') {
      entry.resume();
      if (type === 'directory') {
        await chmod(this.#root, modeOf(header, 0o755));
        this.#time('', header);
      }
      return;
    }
    const base = path.posix.basename(rel);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      entry.resume();
      await this.#whiteout(rel, base);
      return;
    }
    await this.#parents(rel);
    const full = path.join(this.#root, rel);
    this.#written.add(rel);
    switch (type) {
      case 'directory':
        entry.resume();
        await this.#directory(rel, full, header);
        return;
      case 'file':
      case 'contiguous-file':
        await this.#clear(full);
        await writeFile(full, entry);
        await this.#own(full, header);
        await chmod(full, modeOf(header, 0o644));
        await this.#touch(full, header);
        return;
      case 'symlink': {
        entry.resume();
        const target = header.linkname ?? '';
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
        if (!target.startsWith('/') && (resolved === '..' || resolved.startsWith('../'))) {
          throw refuse(rel, `symbolic link to "${target}" points outside the rootfs`);
        }
        await this.#clear(full);
        await symlink(target, full);
        await this.#own(full, header);
        await this.#touch(full, header);
        return;
      }
      case 'link': {
        entry.resume();
        const source = await this.#linkSource(header.linkname ?? '', rel);
        await this.#clear(full);
        await link(source, full);
        return;
      }
      default:
        // pax and GNU long-name headers are consumed by the parser; anything else is not a file.
        entry.resume();
    }
  }

  /** Sets the directories' times, deepest first. */
  async finish(): Promise<void> {
    for (const { full, mtime } of this.#dirTimes.reverse()) {
      await lutimes(full, mtime, mtime).catch(() => undefined);
    }
  }

  async #whiteout(rel: string, base: string): Promise<void> {
    const parentRel = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    if (!(await this.#isRealDir(parentRel))) return;
    const parent = path.join(this.#root, parentRel);
    if (base === WHITEOUT_OPAQUE) {
      for (const name of await readdir(parent)) {
        const child = parentRel === '' ? name : `${parentRel}/${name}`;
        if (!this.#written.has(child)) await this.#clear(path.join(parent, name));
      }
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) return;
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') throw refuse(rel, 'invalid whiteout');
    await this.#clear(path.join(parent, name));
  }

  /** Whether `rel` is a directory reached without symlinks (missing parents are not created). */
  async #isRealDir(rel: string): Promise<boolean> {
    if (this.#dirs.has(rel)) return true;
    let current = '';
    for (const part of rel.split('/')) {
      current = current === '' ? part : `${current}/${part}`;
      const info = await lstat(path.join(this.#root, current)).catch(() => undefined);
      if (info?.isDirectory() !== true) return false;
    }
    return true;
  }

  /** Makes sure every parent of `rel` is a real directory: missing ones are created, symlinks refused. */
  async #parents(rel: string): Promise<void> {
    const parts = rel.split('/').slice(0, -1);
    let current = '';
    for (const part of parts) {
      current = current === '' ? part : `${current}/${part}`;
      if (this.#dirs.has(current)) continue;
      const full = path.join(this.#root, current);
      const info = await lstat(full).catch(() => undefined);
      if (info === undefined) await mkdir(full, { mode: 0o755 });
      else if (info.isSymbolicLink()) throw refuse(rel, `"${current}" is a symbolic link`);
      else if (!info.isDirectory()) throw refuse(rel, `"${current}" is not a directory`);
      this.#dirs.add(current);
    }
  }

  async #directory(rel: string, full: string, header: tar.Header): Promise<void> {
    const info = await lstat(full).catch(() => undefined);
    if (info !== undefined && !info.isDirectory()) await rm(full, { force: true });
    if (info === undefined || !info.isDirectory()) await mkdir(full, { mode: 0o755 });
    await this.#own(full, header);
    await chmod(full, modeOf(header, 0o755));
    this.#dirs.add(rel);
    this.#time(rel, header);
  }

  /** A later entry replaces an earlier one of the same name (tar semantics); directories go too. */
  async #clear(full: string): Promise<void> {
    const info = await lstat(full).catch(() => undefined);
    if (info === undefined) return;
    await rm(full, { recursive: true, force: true });
    for (const d of [...this.#dirs]) {
      const dir = path.join(this.#root, d);
      if (d !== '' && (dir === full || dir.startsWith(`${full}/`))) this.#dirs.delete(d);
    }
  }

  /** The host path of a hard link's target: a non-directory already in the rootfs. */
  async #linkSource(linkname: string, rel: string): Promise<string> {
    const parts = linkname.split('/').filter((p) => p !== '' && p !== '.');
    if (linkname.startsWith('/') || parts.includes('..') || parts.length === 0) {
      throw refuse(rel, `hard link to "${linkname}" points outside the rootfs`);
    }
    const parent = parts.slice(0, -1).join('/');
    if (!(await this.#isRealDir(parent))) throw refuse(rel, `hard link target "${linkname}" is not in the rootfs`);
    const source = path.join(this.#root, ...parts);
    const info = await lstat(source).catch(() => undefined);
    if (info === undefined || info.isDirectory()) throw refuse(rel, `hard link target "${linkname}" is not in the rootfs`);
    return source;
  }

  async #own(full: string, header: tar.Header): Promise<void> {
    if (IS_ROOT) await lchown(full, header.uid ?? 0, header.gid ?? 0);
  }

  async #touch(full: string, header: tar.Header): Promise<void> {
    if (header.mtime !== undefined) await lutimes(full, header.mtime, header.mtime).catch(() => undefined);
  }

  #time(rel: string, header: tar.Header): void {
    if (header.mtime !== undefined) this.#dirTimes.push({ full: path.join(this.#root, rel), mtime: header.mtime });
  }
}

/** Creates the file (never through an existing name or symlink: `wx`) and copies the entry into it. */
async function writeFile(full: string, entry: Entry): Promise<void> {
  const handle = await open(full, 'wx', 0o600);
  try {
    for await (const chunk of entry) await handle.write(chunk);
  } finally {
    await handle.close();
  }
}

function modeOf(header: tar.Header, fallback: number): number {
  return header.mode === undefined ? fallback : header.mode & 0o7777;
}
