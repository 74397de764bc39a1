import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { invalidParameter } from '@berth/errdefs';
import { DEFAULT_MAX_CONFIG_BYTES, extractRootfsTar, type TarEntry } from '@berth/plugin-store';

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
 * extracted into `rootfsDir` with the safe-extraction rules of `extractRootfsTar`, everything else
 * is skipped, as moby's `splitConfigRootFSFromTar`. The caller removes `rootfsDir` when this throws.
 */
export async function extractPluginContext(
  input: Readable | AsyncIterable<Uint8Array>,
  rootfsDir: string,
  options: ExtractOptions = {},
): Promise<ExtractedContext> {
  const maxConfigBytes = options.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES;
  const hash = createHash('sha256');
  let config: Buffer | undefined;
  const { extracted } = await extractRootfsTar(input as AsyncIterable<Uint8Array>, rootfsDir, {
    signal: options.signal,
    what: 'plugin context',
    readError: 'failed to read plugin context',
    subdir: 'rootfs',
    onChunk: (chunk) => hash.update(chunk),
    onOther: async (name, entry) => {
      if (name === 'config.json') config = await readLimited(entry, maxConfigBytes);
      else entry.resume();
    },
  });
  return { config, hasRootfs: extracted > 0, digest: `sha256:${hash.digest('hex')}` };
}

async function readLimited(entry: TarEntry, limit: number): Promise<Buffer> {
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
