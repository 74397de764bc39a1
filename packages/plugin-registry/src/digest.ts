import { createHash, type Hash } from 'node:crypto';
import { invalidParameter } from '@berth/errdefs';

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Whether `text` is a well-formed `sha256:<64 hex>` digest (the only algorithm stored). */
export function isSha256Digest(text: unknown): text is string {
  return typeof text === 'string' && SHA256.test(text);
}

/**
 * Checks a digest that came from outside (a manifest, a user): it names files in the content
 * store, so nothing but `sha256:<64 lowercase hex>` is accepted.
 */
export function assertSha256Digest(text: unknown, what = 'digest'): string {
  if (isSha256Digest(text)) return text;
  if (typeof text === 'string' && ANY_DIGEST.test(text) && !text.startsWith('sha256:')) {
    throw invalidParameter(`unsupported digest algorithm in ${what} "${text}"`);
  }
  throw invalidParameter(`invalid ${what} "${String(text)}"`);
}

export function sha256Digest(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** An incremental sha256 with the byte count, for streams. */
export class Digester {
  readonly #hash: Hash = createHash('sha256');
  #size = 0;

  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
  }

  get size(): number {
    return this.#size;
  }

  digest(): string {
    return `sha256:${this.#hash.digest('hex')}`;
  }
}

/** moby's `stringid.TruncateID`: the 12 first hex digits, the id of a progress line. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return digest.slice(colon + 1, colon + 13);
}
