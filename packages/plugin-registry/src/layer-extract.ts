import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extractRootfsTar } from '@berth/plugin-store';

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
 * The layer comes from a registry and the daemon runs as root, so it is distrusted: it is
 * extracted by `@berth/plugin-store`'s `extractRootfsTar`, the same rules as a `docker plugin
 * create` context. The caller removes `rootfsDir` when this throws.
 */
export async function applyLayer(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  rootfsDir: string,
  options: ApplyLayerOptions = {},
): Promise<void> {
  options.signal?.throwIfAborted();
  await extractRootfsTar(decompressed(counting(source, options.onProgress)), rootfsDir, {
    signal: options.signal,
    what: 'plugin layer',
    readError: 'error applying layer',
    whiteouts: true,
  });
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
