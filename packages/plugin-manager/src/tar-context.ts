import { createHash } from 'node:crypto';
import { chmod, lchown, link, lstat, mkdir, open, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BerthError, invalidParameter } from '@berth/errdefs';
import tar from 'tar-stream';

/** An entry of tar-stream's extractor (a streamx readable). */
type Entry = AsyncIterable<Uint8Array> & { readonly header: tar.Header; resume(): unknown };

/** Largest `config.json` accepted from a context; real ones are a few KiB. */
export const DEFAULT_MAX_CONFIG_BYTES = 1 << 20;

export interface ExtractOptions {
  signal?: AbortSignal | undefined;
  maxConfigBytes?: number | undefined;
}

export interface ExtractedContext {
  /** The bytes of `config.json`, undefined when the context has none. */
  config: Buffer | undefined;
  /** Whether any `rootfs/` entry was seen (an empty `rootfs/` directory counts). */
  hasRootfs: boolean;
  /** `sha256:<hex>` of the whole context as received. */
  digest: string;
}

/**
 * Streams a plugin build context (what `docker plugin create` sends: a tar holding `config.json`
 * and `rootfs/`) to disk: `config.json` is kept in memory (size-limited), `rootfs/…` entries are
 * extracted into `rootfsDir`, everything else is skipped, as moby's `splitConfigRootFSFromTar`.
 *
 * The daemon runs as root, so the archive is distrusted: entries with `..` components or absolute
 * names, device nodes and FIFOs, symlinks whose relative target climbs out of the rootfs, hard
 * links to anything outside it, and entries below a symlink are refused (`invalid-parameter`).
 * No symlink is ever followed while writing. Absolute symlink targets are kept: inside the plugin
 * they resolve against its own root. The caller removes `rootfsDir` when this throws.
 */
export async function extractPluginContext(
  input: Readable | AsyncIterable<Uint8Array>,
  rootfsDir: string,
  options: ExtractOptions = {},
): Promise<ExtractedContext> {
  const maxConfigBytes = options.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES;
  const hash = createHash('sha256');
  const extract = tar.extract();
  const writer = new RootfsWriter(rootfsDir);
  const stop = (): void => {
    extract.destroy();
    if ('destroy' in input && typeof input.destroy === 'function') input.destroy();
  };
  // An abort must also end a wait for input that never comes.
  const onAbort = (): void => {
    extract.destroy(options.signal?.reason as Error);
    stop();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const feeding = feed(input, extract, hash, options.signal);
  // Its errors also reach the iteration below (the extractor is destroyed with them).
  feeding.catch(() => undefined);

  let config: Buffer | undefined;
  let hasRootfs = false;
  try {
    for await (const entry of extract as AsyncIterable<Entry>) {
      const { header } = entry;
      const name = entryName(header.name);
      if (name === 'config.json') {
        config = await readLimited(entry, maxConfigBytes);
        continue;
      }
      const parts = name.split('/');
      if (parts[0] !== 'rootfs') {
        entry.resume();
        continue;
      }
      hasRootfs = true;
      await writer.write(parts.slice(1).join('/'), entry, header);
    }
    await feeding;
  } catch (err) {
    stop();
    throw asContextError(err, options.signal);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return { config, hasRootfs, digest: `sha256:${hash.digest('hex')}` };
}

/** Writes the input into the extractor, hashing it, honouring back-pressure and the signal. */
async function feed(
  input: Readable | AsyncIterable<Uint8Array>,
  extract: tar.Extract,
  hash: ReturnType<typeof createHash>,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    for await (const chunk of input as AsyncIterable<Uint8Array>) {
      // The reader gave up (a refused entry): stop reading the input.
      if (extract.destroyed) return;
      signal?.throwIfAborted();
      hash.update(chunk);
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

/** The entry's path relative to the context root, `..` and absolute names refused. */
function entryName(raw: string): string {
  if (raw.startsWith('/')) throw refuse(raw, 'absolute paths are not allowed');
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse(raw, 'paths must not contain ".."');
  return parts.join('/');
}

function refuse(name: string, why: string): BerthError {
  return invalidParameter(`invalid plugin context: tar entry "${name}": ${why}`);
}

async function readLimited(entry: Entry, limit: number): Promise<Buffer> {
  if ((entry.header.size ?? 0) > limit) throw invalidParameter(`config.json is larger than ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += chunk.length;
    if (size > limit) throw invalidParameter(`config.json is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function asContextError(err: unknown, signal: AbortSignal | undefined): unknown {
  if (BerthError.is(err)) return err;
  if (signal?.aborted === true) return signal.reason;
  // A truncated or malformed archive: the caller's input, not a server fault.
  return invalidParameter(`failed to read plugin context: ${(err as Error).message}`, { cause: err });
}

const IS_ROOT = process.getuid?.() === 0;

/** Writes entries below one directory without following a symlink anywhere. */
class RootfsWriter {
  readonly #root: string;
  /** Relative directories known to be real directories created or checked by us. */
  readonly #dirs = new Set<string>(['']);

  constructor(root: string) {
    this.#root = root;
  }

  async write(rel: string, entry: Entry, header: tar.Header): Promise<void> {
    const display = `rootfs/${rel}`;
    const type = header.type ?? 'file';
    if (type === 'character-device' || type === 'block-device' || type === 'fifo') {
      entry.resume();
      throw refuse(display, `${type.replace('-', ' ')}s are not allowed`);
    }
    if (rel === '') {
      // The `rootfs/` entry itself: only its mode matters.
      entry.resume();
      if (type === 'directory') await chmod(this.#root, modeOf(header, 0o755));
      return;
    }
    await this.#parents(rel, display);
    const full = path.join(this.#root, rel);
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
        return;
      case 'symlink': {
        entry.resume();
        const target = header.linkname ?? '';
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
        if (!target.startsWith('/') && (resolved === '..' || resolved.startsWith('../'))) {
          throw refuse(display, `symbolic link to "${target}" points outside the rootfs`);
        }
        await this.#clear(full);
        await symlink(target, full);
        await this.#own(full, header);
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
      else if (info.isSymbolicLink()) throw refuse(display, `"rootfs/${current}" is a symbolic link`);
      else if (!info.isDirectory()) throw refuse(display, `"rootfs/${current}" is not a directory`);
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
  }

  /** A later entry replaces an earlier one of the same name (tar semantics); directories go too. */
  async #clear(full: string): Promise<void> {
    const info = await lstat(full).catch(() => undefined);
    if (info === undefined) return;
    await rm(full, { recursive: true, force: true });
    this.#dirs.forEach((d) => {
      if (path.join(this.#root, d) === full || path.join(this.#root, d).startsWith(`${full}/`)) this.#dirs.delete(d);
    });
  }

  /** The host path of a hard link's target: an entry already extracted into the rootfs. */
  async #linkSource(linkname: string, display: string): Promise<string> {
    // Targets name entries of the context; moby strips the `rootfs/` prefix (in any case).
    let target = linkname;
    if (target.toLowerCase().startsWith('rootfs/')) target = target.slice('rootfs/'.length);
    const parts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (target.startsWith('/') || parts.includes('..') || parts.length === 0) {
      throw refuse(display, `hard link to "${linkname}" points outside the rootfs`);
    }
    let current = '';
    for (const part of parts.slice(0, -1)) {
      current = current === '' ? part : `${current}/${part}`;
      const info = await lstat(path.join(this.#root, current)).catch(() => undefined);
      if (info?.isDirectory() !== true) throw refuse(display, `hard link target "${linkname}" is not in the rootfs`);
    }
    const source = path.join(this.#root, ...parts);
    const info = await lstat(source).catch(() => undefined);
    if (info === undefined || info.isDirectory()) throw refuse(display, `hard link target "${linkname}" is not in the rootfs`);
    return source;
  }

  async #own(full: string, header: tar.Header): Promise<void> {
    if (IS_ROOT) await lchown(full, header.uid ?? 0, header.gid ?? 0);
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
