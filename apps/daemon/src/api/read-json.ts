import type { IncomingMessage } from 'node:http';
import { BerthError, invalidParameter } from '@berth/errdefs';
import { decodeFirstValue, decodeGo, GoJsonError, type GoType } from '@berth/gocompat';
import { parseMediaType } from './media-type.js';

/** JSON request bodies larger than this are refused (moby has no limit; a daemon should). */
export const JSON_BODY_LIMIT = 1024 * 1024;

export class BodyTooLargeError extends BerthError {
  constructor(limit: number) {
    super('invalid-parameter', `request body is larger than the limit of ${limit} bytes`);
  }
}

/**
 * moby's `httputils.ReadJSON`: a body needs `Content-Type: application/json`; an empty body is
 * the zero value (`undefined` here); otherwise the first JSON value is decoded as Go would into
 * `type`, and anything but `]`, `}` or whitespace after it is `unexpected content after JSON`.
 * Every failure is a 400 with moby's text.
 */
export async function readJson(
  req: IncomingMessage,
  type: GoType,
  options: { limit?: number } = {},
): Promise<Record<string, unknown> | undefined> {
  const limit = options.limit ?? JSON_BODY_LIMIT;
  const contentType = req.headers['content-type'] ?? '';
  const length = contentLength(req);
  if (contentType === '' && length === 0) return undefined;
  checkContentType(contentType);
  if (length === 0) return undefined;
  if (length > limit) throw new BodyTooLargeError(limit);

  const body = await readBody(req, limit);
  let decoded: unknown;
  try {
    const { value, more } = decodeFirstValue(body);
    decoded = decodeGo(value, type);
    if (more) throw invalidParameter('unexpected content after JSON');
  } catch (err) {
    if (err instanceof GoJsonError && err.code === 'eof') throw invalidParameter('invalid JSON: got EOF while reading request body');
    if (err instanceof GoJsonError) throw invalidParameter(`invalid JSON: ${err.message}`);
    throw err;
  }
  return decoded === undefined || decoded === null ? undefined : (decoded as Record<string, unknown>);
}

/** moby's `CheckForJSON` after the empty-body shortcut. */
function checkContentType(contentType: string): void {
  let mediaType: string;
  try {
    mediaType = parseMediaType(contentType);
  } catch (err) {
    throw invalidParameter(`malformed Content-Type header (${contentType}): ${(err as Error).message}`);
  }
  if (mediaType !== 'application/json') {
    throw invalidParameter(`unsupported Content-Type header (${contentType}): must be 'application/json'`);
  }
}

/** Go's `Request.ContentLength`: -1 when unknown (chunked), 0 when there is no body. */
function contentLength(req: IncomingMessage): number {
  if (req.headers['transfer-encoding'] !== undefined) return -1;
  const raw = req.headers['content-length'];
  return raw === undefined ? 0 : Number(raw);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        // The rest is left unread: the error response closes the connection instead.
        cleanup();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(BerthError.from(err, 'canceled'));
    };
    const onClose = (): void => {
      cleanup();
      reject(new BerthError('canceled', 'client closed the connection while sending the request body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
