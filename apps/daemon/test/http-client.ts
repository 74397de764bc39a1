import { request, type IncomingHttpHeaders } from 'node:http';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON; `undefined` when empty or not JSON. */
  json: unknown;
}

export interface HttpRequest {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  /** A string or object (sent as JSON with `Content-Type: application/json` unless given). */
  body?: string | Buffer | object;
  timeoutMs?: number;
}

/** One HTTP request over a unix socket, with the whole response read. */
export function httpRequest(socketPath: string, req: HttpRequest): Promise<HttpResponse> {
  const headers: Record<string, string | number> = { ...req.headers };
  let body: string | Buffer | undefined;
  if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) body = req.body;
  else if (req.body !== undefined) {
    body = JSON.stringify(req.body);
    headers['Content-Type'] ??= 'application/json';
  }
  return new Promise((resolve, reject) => {
    const r = request({ socketPath, method: req.method ?? 'GET', path: req.path, headers, timeout: req.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    r.on('timeout', () => r.destroy(new Error(`request ${req.method ?? 'GET'} ${req.path} timed out`)));
    r.on('error', reject);
    r.end(body);
  });
}
