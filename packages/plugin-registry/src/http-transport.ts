import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable, pipeline } from 'node:stream';

// The registry client's HTTP, on Node's own `http`/`https` (the same stack as the plugin client
// and the API server): keep-alive connections through Node's global agents, a deadline for the
// response headers, and one for silence while a body streams.

export interface HttpRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> | undefined;
  readonly signal?: AbortSignal | undefined;
  /** HTTPS without certificate checks (insecure registries). */
  readonly insecureTls?: boolean | undefined;
  /** How long to wait for the response headers. */
  readonly headersTimeoutMs: number;
  /** The longest silence while the response body streams. */
  readonly bodyTimeoutMs: number;
}

export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  /** Read it to the end, or `discard` or destroy it, so that the connection is freed. */
  readonly body: IncomingMessage;
}

/** Sends one request; resolves once the response headers are in. Network failures reject. */
export function send(url: string | URL, request: HttpRequest): Promise<HttpResponse> {
  const target = typeof url === 'string' ? new URL(url) : url;
  const secure = target.protocol === 'https:';
  const options: https.RequestOptions = { method: request.method, headers: { ...request.headers } };
  if (request.signal !== undefined) options.signal = request.signal;
  if (secure && request.insecureTls === true) options.rejectUnauthorized = false;
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = (secure ? https : http).request(target, options);
    const headersTimer = setTimeout(
      () => req.destroy(new Error('net/http: timeout awaiting response headers')),
      request.headersTimeoutMs,
    );
    req.once('response', (res) => {
      clearTimeout(headersTimer);
      req.setTimeout(request.bodyTimeoutMs, () => req.destroy(new Error('timeout reading the response body')));
      resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    req.on('error', (err) => {
      clearTimeout(headersTimer);
      reject(err);
    });
    const body = request.body;
    if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
      req.end(body);
    } else if (Array.isArray(body) && body.length === 1) {
      req.end(body[0]);
    } else {
      pipeline(Readable.from(body), req, (err) => {
        if (err) req.destroy(err);
      });
    }
  });
}

/** Drops a response body that is not wanted (the connection is reused once it is read). */
export function discard(response: HttpResponse): void {
  response.body.resume();
}
