// A small keep-alive Engine API client over a unix socket, the same for every daemon measured.
import http from 'node:http';
import net from 'node:net';

export class EngineClient {
  /**
   * @param {string} socketPath
   * @param {{ maxSockets?: number, apiVersion?: string }} [options]
   */
  constructor(socketPath, options = {}) {
    this.socketPath = socketPath;
    this.prefix = options.apiVersion === undefined ? '' : `/v${options.apiVersion}`;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 16, keepAliveMsecs: 10_000 });
  }

  /**
   * One request; resolves with status, headers and body (a Buffer; `json()` parses it).
   * Rejects on a transport error or after `timeoutMs` (default 30 s), destroying the request.
   * @param {string} method
   * @param {string} path  without the /v<api> prefix
   * @param {{ body?: unknown, stream?: import('node:stream').Readable, contentType?: string, timeoutMs?: number, signal?: AbortSignal }} [options]
   */
  request(method, path, options = {}) {
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? 30_000;
      const headers = { Host: 'docker' };
      let payload;
      if (options.body !== undefined) {
        payload = Buffer.from(JSON.stringify(options.body));
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = String(payload.length);
      } else if (options.stream !== undefined) {
        headers['Content-Type'] = options.contentType ?? 'application/x-tar';
        headers['Transfer-Encoding'] = 'chunked';
      }
      const req = http.request({ socketPath: this.socketPath, agent: this.agent, method, path: this.prefix + path, headers });
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const timer = setTimeout(() => {
        const err = new Error(`${method} ${path}: no answer within ${timeoutMs} ms`);
        err.code = 'ETIMEDOUT_BENCH';
        fail(err);
      }, timeoutMs);
      if (options.signal !== undefined) {
        if (options.signal.aborted) return fail(new Error(`${method} ${path}: aborted`));
        options.signal.addEventListener('abort', () => fail(new Error(`${method} ${path}: aborted`)), { once: true });
      }
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) });
        });
      });
      if (payload !== undefined) req.end(payload);
      else if (options.stream !== undefined) {
        options.stream.on('error', fail);
        options.stream.pipe(req);
      } else req.end();
    });
  }

  /** Like request(), but throws unless the status is `expected`. */
  async expect(expected, method, path, options) {
    const res = await this.request(method, path, options);
    if (res.status !== expected) {
      throw new Error(`${method} ${path}: expected ${expected}, got ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
    }
    return res;
  }

  close() {
    this.agent.destroy();
  }
}

/** One request on a fresh connection (no agent), for start-up probes: `GET /_ping` → true when 200. */
export function ping(socketPath, timeoutMs = 1000) {
  return answersOk(socketPath, { method: 'GET', path: '/_ping', headers: { Host: 'docker' }, timeoutMs });
}

/**
 * One request on a fresh connection (no agent), for probes: true when it is answered 200 within
 * `timeoutMs`, false on any error, another status or the timeout (the request is then destroyed).
 * @param {string} socketPath
 * @param {{ method: string, path: string, headers: Record<string, string>, timeoutMs: number }} request
 * @returns {Promise<boolean>}
 */
export function answersOk(socketPath, { method, path, headers, timeoutMs }) {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, method, path, agent: false, headers });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(false);
    }, timeoutMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve(res.statusCode === 200);
      });
    });
    req.end();
  });
}

/** Resolves true once something accepts connections on the unix socket `path`. */
export function canConnect(path, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
