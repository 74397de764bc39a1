import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';

/**
 * HTTP over the daemon's unix socket for robustness tests: a fresh connection per request (no
 * keep-alive pool that could hand out a socket of a killed daemon) and a hard deadline on the
 * whole exchange, so that a hang fails a test instead of blocking it.
 */

export interface BoundedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON; `undefined` when empty or not JSON. */
  json: unknown;
}

export interface BoundedRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  /** A string or Buffer is sent as is; anything else as JSON (`Content-Type: application/json` unless given). */
  body?: string | Buffer | object | null;
  /** Deadline for the whole exchange (default 5 s). */
  timeoutMs?: number;
  /** Hang up after this many ms, as a client that goes away mid-request ({@link ClientHungUp}). */
  hangUpAfterMs?: number;
}

/** Raised when the deadline passes; distinguishable from connection errors. */
export class RequestTimeout extends Error {
  override readonly name = 'RequestTimeout';
}

/** Raised when the request hung up on purpose (`hangUpAfterMs`) before the answer was complete. */
export class ClientHungUp extends Error {
  override readonly name = 'ClientHungUp';
}

export function boundedRequest(socketPath: string, req: BoundedRequest): Promise<BoundedResponse> {
  const method = req.method ?? 'GET';
  const headers: Record<string, string | number> = { ...req.headers };
  let body: string | Buffer | undefined;
  if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) body = req.body;
  else if (req.body !== undefined) {
    body = JSON.stringify(req.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  // Frame every body: without it Node sends a GET or DELETE body unframed, and the server reads
  // it as the next request.
  const names = Object.keys(headers).map((h) => h.toLowerCase());
  if (body !== undefined && !names.includes('content-length') && !names.includes('transfer-encoding')) {
    headers['Content-Length'] = Buffer.byteLength(body);
  }
  const timeoutMs = req.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const r = request({ socketPath, method, path: req.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => done(() => reject(err)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        done(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json: parseJson(text) }));
      });
    });
    const timer = setTimeout(() => {
      done(() => reject(new RequestTimeout(`${method} ${req.path} got no complete answer within ${timeoutMs} ms`)));
      r.destroy();
    }, timeoutMs);
    if (req.hangUpAfterMs !== undefined) {
      setTimeout(() => {
        done(() => reject(new ClientHungUp(`${method} ${req.path}: hung up after ${req.hangUpAfterMs} ms`)));
        r.destroy();
      }, req.hangUpAfterMs);
    }
    r.on('error', (err) => done(() => reject(err)));
    r.end(body);
  });
}

export interface RawResponse {
  status: number;
  /** Lower-cased header names; the last value wins. */
  headers: Record<string, string>;
  body: string;
  json: unknown;
  /** Everything the server sent. */
  raw: string;
}

/**
 * Writes `bytes` as they are (a request line Node's client would refuse, e.g. a literal NUL or
 * UTF-8 in the path) and reads until the server closes the connection. Send `Connection: close`.
 */
export function rawRequest(socketPath: string, bytes: Buffer | string, timeoutMs = 5_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RequestTimeout(`raw request got no complete answer within ${timeoutMs} ms: ${JSON.stringify(String(bytes).slice(0, 120))}`));
    }, timeoutMs);
    // No half-close: the server would take it for a client that went away.
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks)));
    });
  });
}

/**
 * Sends `head` and `body` without closing the write side (a half-close reads as a client that went
 * away), and reads the answer until the server closes the connection. For bodies the server must
 * refuse before reading them through: send a part and see that the server answers and hangs up
 * anyway. A server that neither answers nor closes fails by the deadline.
 */
export function partialRequest(
  socketPath: string,
  head: string,
  body: Buffer,
  options: { timeoutMs?: number; bodyDelayMs?: number } = {},
): Promise<RawResponse> {
  const { timeoutMs = 10_000, bodyDelayMs = 0 } = options;
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RequestTimeout(`the server neither answered nor closed within ${timeoutMs} ms (got ${Buffer.concat(chunks).length} bytes)`));
    }, timeoutMs);
    socket.on('connect', () => {
      socket.write(head);
      // A server that answers from the headers alone is given the time to, before any body is sent
      // (writing into a connection the server has closed would lose its answer to EPIPE).
      setTimeout(() => {
        if (chunks.length === 0 && !socket.destroyed) socket.write(body);
      }, bodyDelayMs);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      if (chunks.length > 0) return; // the answer is there; the close follows
      clearTimeout(timer);
      reject(new Error(`the connection failed before any answer: ${String(err)}`));
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks)));
    });
  });
}

function parseRaw(all: Buffer): RawResponse {
  const split = all.indexOf('\r\n\r\n');
  const head = (split < 0 ? all : all.subarray(0, split)).toString('latin1');
  let body: Buffer = split < 0 ? Buffer.alloc(0) : all.subarray(split + 4);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const text = body.toString('utf8');
  return { status, headers, body: text, json: parseJson(text), raw: all.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const out: Buffer[] = [];
  let rest = data;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) break;
    const size = Number.parseInt(rest.subarray(0, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(rest.subarray(eol + 2, eol + 2 + size));
    rest = rest.subarray(eol + 2 + size + 2);
  }
  return Buffer.concat(out);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Connection errors that prove the request never reached a daemon. */
export function neverSent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ENOENT';
}
