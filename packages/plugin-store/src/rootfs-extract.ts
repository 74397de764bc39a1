import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, invalidParameter } from '@berth/errdefs';
import tar from 'tar-stream';

/** An entry of tar-stream's extractor (a streamx readable). */
export type TarEntry = AsyncIterable<Uint8Array> & { readonly header: tar.Header; resume(): unknown };

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';

export interface ExtractRootfsOptions {
  readonly signal?: AbortSignal | undefined;
  /** Names the archive in refusals: `invalid <what>: tar entry "<name>": <why>`, e.g. `plugin context`. */
  readonly what: string;
  /** Prefix of the error for a truncated or malformed archive, e.g. `error applying layer`. */
  readonly readError: string;
  /**
   * Extract only the entries below this top-level directory (e.g. `rootfs`), at their path below
   * it; hard-link targets may name it (moby strips it). Default: every entry, at its own path.
   */
  readonly subdir?: string | undefined;
  /** Entries outside `subdir` (their names already checked); default: skipped. */
  readonly onOther?: ((name: string, entry: TarEntry) => Promise<void>) | undefined;
  /** Apply AUFS whiteouts, as image layers carry them (`.wh.<name>`, `.wh..wh..opq`). */
  readonly whiteouts?: boolean | undefined;
  /** Sees every chunk of the archive as received (to hash or count it). */
  readonly onChunk?: ((chunk: Uint8Array) => void) | undefined;
}

export interface ExtractRootfsResult {
  /** Entries extracted into the rootfs (the `subdir/` entry itself counts). */
  readonly extracted: number;
}

/**
 * Extracts a distrusted tar into `rootfsDir`. The daemon runs as root, so entries with `..`
 * components or absolute names, device nodes and FIFOs, symlinks whose relative target climbs out
 * of the rootfs, hard links to anything outside it, and entries below a symlink are refused
 * (`invalid-parameter`). No symlink is ever followed while writing. Absolute symlink targets are
 * kept: inside the plugin they resolve against its own root. Modes, owners (as root) and
 * modification times are kept. The caller removes `rootfsDir` when this throws.
 */
export async function extractRootfsTar(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  rootfsDir: string,
  options: ExtractRootfsOptions,
): Promise<ExtractRootfsResult> {
  const { signal, subdir } = options;
  signal?.throwIfAborted();
  const refuse = (name: string, why: string): BerthError =>
    invalidParameter(`invalid ${options.what}: tar entry "${name}": ${why}`);
  const extract = tar.extract();
  const writer = new RootfsWriter(rootfsDir, refuse, subdir === undefined ? '' : `${subdir}/`, options.whiteouts === true);
  const stop = (): void => {
    extract.destroy();
    if ('destroy' in input && typeof input.destroy === 'function') input.destroy();
  };
  // An abort must also end a wait for input that never comes.
  const onAbort = (): void => {
    extract.destroy(signal?.reason as Error);
    stop();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const feeding = feed(input, extract, signal, options.onChunk);
  // Its errors also reach the iteration below (the extractor is destroyed with them).
  feeding.catch(() => undefined);
  let extracted = 0;
  try {
    for await (const entry of extract as AsyncIterable<TarEntry>) {
      const name = entryName(entry.header.name, refuse);
      let rel: string | undefined = name;
      if (subdir !== undefined) {
        rel = name === subdir ? '' : name.startsWith(`${subdir}/`) ? name.slice(subdir.length + 1) : undefined;
      }
      if (rel === undefined) {
        if (options.onOther === undefined) entry.resume();
        else await options.onOther(name, entry);
        continue;
      }
      extracted += 1;
      await writer.write(rel, entry);
    }
    await feeding;
    await writer.finish();
  } catch (err) {
    stop();
    if (BerthError.is(err)) throw err;
    if (signal?.aborted === true) throw signal.reason;
    // A truncated or malformed archive: the caller's input, not a server fault.
    throw invalidParameter(`${options.readError}: ${(err as Error).message}`, { cause: err });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { extracted };
}

/** Writes the input into the extractor, honouring back-pressure and the signal. */
async function feed(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  extract: tar.Extract,
  signal: AbortSignal | undefined,
  onChunk: ((chunk: Uint8Array) => void) | undefined,
): Promise<void> {
  try {
    for await (const chunk of input) {
      // The reader gave up (a refused entry): stop reading the input.
      if (extract.destroyed) return;
      signal?.throwIfAborted();
      onChunk?.(chunk);
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
    // streamx's `end(data)` writes `data` first when it is not undefined.
    extract.end(undefined);
  } catch (err) {
    extract.destroy(err as Error);
    throw err;
  }
}

/** The entry's path relative to the archive root (`""` for the root itself); `..` and absolute names refused. */
function entryName(raw: string, refuse: (name: string, why: string) => BerthError): string {
  if (raw.startsWith('/')) throw refuse(raw, 'absolute paths are not allowed');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse(raw, 'paths must not contain ".."');
  return parts.join('/');
}

const IS_ROOT = process.getuid?.() === 0;

/** Writes entries below one directory without following a symlink anywhere. */
class RootfsWriter {
  readonly #root: string;
  readonly #refuse: (name: string, why: string) => BerthError;
  /** How entry names appear in errors: `rootfs/` for a context, nothing for a layer. */
  readonly #display: string;
  readonly #whiteouts: boolean;
  /** Relative directories known to be real directories created or checked by us. */
  readonly #dirs = new Set<string>(['']);
  /** Paths this archive wrote (an opaque whiteout keeps them). */
  readonly #written = new Set<string>();
  /** Directory times, set last: writing into a directory changes its mtime. */
  readonly #dirTimes: { full: string; mtime: Date }[] = [];

  constructor(root: string, refuse: (name: string, why: string) => BerthError, display: string, whiteouts: boolean) {
    this.#root = root;
    this.#refuse = refuse;
    this.#display = display;
    this.#whiteouts = whiteouts;
  }

  async write(rel: string, entry: TarEntry): Promise<void> {
    const { header } = entry;
    const display = `${this.#display}${rel}`;
    const type = header.type ?? 'file';
    if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      entry.resume();
      throw this.#refuse(display, `${type.replace('-', ' ')}s are not allowed`);
    }
    if (rel === '') {
      // The root entry itself: only its mode and time matter.
      entry.resume();
      if (type === 'directory') {
        await chmod(this.#root, modeOf(header, 0o755));
        this.#time('', header);
      }
      return;
    }
    const base = path.posix.basename(rel);
    if (this.#whiteouts && base.startsWith(WHITEOUT_PREFIX)) {
      entry.resume();
      await this.#whiteout(rel, base, display);
      return;
    }
    await this.#parents(rel, display);
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
        // Owner first: chown clears set-id bits.
        await this.#own(full, header);
        await chmod(full, modeOf(header, 0o644));
        await touch(full, header);
        return;
      case 'symlink': {
        entry.resume();
        const target = header.linkname ?? '';
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
        if (!target.startsWith('/') && (resolved === '..' || resolved.startsWith('../'))) {
          throw this.#refuse(display, `symbolic link to "${target}" points outside the rootfs`);
        }
        await this.#clear(full);
        await symlink(target, full);
        await this.#own(full, header);
        await touch(full, header);
        return;
      }
      case 'link': {
        entry.resume();
        const source = await this.#linkSource(header.linkname ?? '', display);
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

  async #whiteout(rel: string, base: string, display: string): Promise<void> {
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
    if (name === '' || name === '.' || name === '..') throw this.#refuse(display, 'invalid whiteout');
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
  async #parents(rel: string, display: string): Promise<void> {
    const parts = rel.split('/').slice(0, -1);
    let current = '';
    for (const part of parts) {
      current = current === '' ? part : `${current}/${part}`;
      if (this.#dirs.has(current)) continue;
      const full = path.join(this.#root, current);
      const info = await lstat(full).catch(() => undefined);
      if (info === undefined) await mkdir(full, { mode: 0o755 });
      else if (info.isSymbolicLink()) throw this.#refuse(display, `"${this.#display}${current}" is a symbolic link`);
      else if (!info.isDirectory()) throw this.#refuse(display, `"${this.#display}${current}" is not a directory`);
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

  /** The host path of a hard link's target: a non-directory already extracted into the rootfs. */
  async #linkSource(linkname: string, display: string): Promise<string> {
    // Targets name entries of the archive; moby strips the subdirectory prefix (in any case).
    let target = linkname;
    if (this.#display !== '' && target.toLowerCase().startsWith(this.#display.toLowerCase())) {
      target = target.slice(this.#display.length);
    }
    const parts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (target.startsWith('/') || parts.includes('..') || parts.length === 0) {
      throw this.#refuse(display, `hard link to "${linkname}" points outside the rootfs`);
    }
    if (!(await this.#isRealDir(parts.slice(0, -1).join('/')))) {
      throw this.#refuse(display, `hard link target "${linkname}" is not in the rootfs`);
    }
    const source = path.join(this.#root, ...parts);
    const info = await lstat(source).catch(() => undefined);
    if (info === undefined || info.isDirectory()) throw this.#refuse(display, `hard link target "${linkname}" is not in the rootfs`);
    return source;
  }

  async #own(full: string, header: tar.Header): Promise<void> {
    if (IS_ROOT) await lchown(full, header.uid ?? 0, header.gid ?? 0);
  }

  #time(rel: string, header: tar.Header): void {
    if (header.mtime !== undefined) this.#dirTimes.push({ full: path.join(this.#root, rel), mtime: header.mtime });
  }
}

async function touch(full: string, header: tar.Header): Promise<void> {
  if (header.mtime !== undefined) await lutimes(full, header.mtime, header.mtime).catch(() => undefined);
}

/** Creates the file (never through an existing name or symlink: `wx`) and copies the entry into it. */
async function writeFile(full: string, entry: TarEntry): Promise<void> {
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
