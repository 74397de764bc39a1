/**
 * A v1 volume plugin in the test process, as moby's `docker_cli_external_volume_driver_test.go`
 * builds one: an HTTP server (here on a unix socket) that keeps volumes in a map and counts calls per
 * endpoint. Plus a minimal plugin client with `@berth/plugin-store`'s error semantics (that package
 * is not a dependency of this one), plugin objects over it and a counting plugin getter.
 */
import { mkdtemp, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BerthError, notFound, system, unavailable } from '@berth/errdefs';
import { onTestFinished } from 'vitest';
import type { PluginCaller, PluginCallOptions, PluginGetter, PluginRefMode, VolumePlugin } from '../src/types.js';

export const VERSION_MIMETYPE = 'application/vnd.docker.plugins.v1.2+json';

export type Endpoint = 'Create' | 'Remove' | 'Mount' | 'Unmount' | 'Path' | 'Get' | 'List' | 'Capabilities';

export interface Received {
  readonly endpoint: string;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

interface FakeVol {
  opts: Record<string, string> | null;
  /** moby's "ninja" volumes: created, but `Get` answers `{}` and `List` leaves them out. */
  ninja: boolean;
}

/** Full control of one endpoint's answer; `request` is the decoded JSON body. */
export type Handler = (request: Record<string, unknown>, res: http.ServerResponse) => void;

export interface FakeVolumePlugin {
  readonly name: string;
  readonly socketPath: string;
  /** Where the plugin "mounts" its volumes: `<dir>/mnt/<name>`. */
  mountpointOf(volume: string): string;
  readonly vols: Map<string, FakeVol>;
  readonly received: Received[];
  /** What `Capabilities` answers as `Scope`. */
  scope: string;
  count(endpoint: Endpoint): number;
  /** Replaces an endpoint's behaviour (misbehaving plugins); without a handler, restores moby's. */
  override(endpoint: Endpoint, handler?: Handler): void;
  /** Stops answering and drops open connections; the socket file stays behind, as after a crash. */
  crash(): Promise<void>;
}

const json = (res: http.ServerResponse, value: unknown, status = 200): void => {
  res.writeHead(status, { 'Content-Type': VERSION_MIMETYPE }).end(`${JSON.stringify(value)}\n`);
};

/** Starts a plugin listening on `<dir>/<name>.sock`; stopped when the test finishes. */
export async function startFakeVolumePlugin(dir: string, name: string): Promise<FakeVolumePlugin> {
  const socketPath = join(dir, `${name}.sock`);
  const mountpointOf = (volume: string): string => join(dir, 'mnt', volume);
  const vols = new Map<string, FakeVol>();
  const received: Received[] = [];
  const overrides = new Map<string, Handler>();
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');

  const handlers: Record<Endpoint, Handler> = {
    Create: (req, res) => {
      const opts = (req['Opts'] ?? null) as Record<string, string> | null;
      vols.set(str(req['Name']), { opts, ninja: opts !== null && 'ninja' in opts });
      json(res, {});
    },
    Remove: (req, res) => {
      vols.delete(str(req['Name']));
      json(res, {});
    },
    Mount: (req, res) => {
      const vol = vols.get(str(req['Name']));
      // moby's way to simulate a mount failure: http.Error, a 500 with a plain-text body.
      if (vol?.opts !== null && vol?.opts !== undefined && 'invalidOption' in vol.opts) {
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('invalid argument\n');
        return;
      }
      json(res, { Mountpoint: mountpointOf(str(req['Name'])) });
    },
    Unmount: (_req, res) => json(res, {}),
    Path: (req, res) => json(res, { Mountpoint: mountpointOf(str(req['Name'])) }),
    Get: (req, res) => {
      const name = str(req['Name']);
      const vol = vols.get(name);
      if (vol === undefined) json(res, { Err: 'no such volume' });
      else if (vol.ninja) json(res, {});
      else json(res, { Volume: { Name: name, Mountpoint: mountpointOf(name), Status: { Hello: 'world' } } });
    },
    List: (_req, res) => {
      const volumes = [...vols].filter(([, v]) => !v.ninja).map(([n]) => ({ Name: n, Mountpoint: mountpointOf(n) }));
      json(res, { Volumes: volumes });
    },
    Capabilities: (_req, res) => json(res, { Capabilities: { Scope: plugin.scope } }),
  };

  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const endpoint = (req.url ?? '').replace(/^\/VolumeDriver\./, '');
      received.push({ endpoint, body, headers: req.headers });
      if (req.url === '/Plugin.Activate') return json(res, { Implements: ['VolumeDriver'] });
      const handler = overrides.get(endpoint) ?? handlers[endpoint as Endpoint];
      if (handler === undefined) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
        return;
      }
      let request: Record<string, unknown> = {};
      try {
        request = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
      } catch {
        res.writeHead(400).end('bad request body\n');
        return;
      }
      handler(request, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });

  const plugin: FakeVolumePlugin = {
    name,
    socketPath,
    mountpointOf,
    vols,
    received,
    scope: 'global',
    count: (endpoint) => received.filter((r) => r.endpoint === endpoint).length,
    override: (endpoint, handler) => void (handler === undefined ? overrides.delete(endpoint) : overrides.set(endpoint, handler)),
    crash: async () => {
      // server.close() unlinks the socket; a crashed process leaves it behind, nobody listening.
      await rename(socketPath, `${socketPath}.kept`);
      await stop();
      await rename(`${socketPath}.kept`, socketPath);
    },
  };
  onTestFinished(stop);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return plugin;
}

/** A handler that never answers. */
export const hang: Handler = () => undefined;

/** A handler that answers 200 with `bytes` of endless JSON, produced only as fast as it is read. */
export function huge(bytes: number): Handler {
  return (_req, res) => {
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    res.writeHead(200, { 'Content-Type': VERSION_MIMETYPE, 'Content-Length': String(bytes) });
    new Readable({
      read() {
        if (sent >= bytes) return void this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    }).pipe(res);
  };
}

/** A handler that starts a JSON answer and closes the connection in the middle of it. */
export const closeMidAnswer: Handler = (_req, res) => {
  res.writeHead(200, { 'Content-Type': VERSION_MIMETYPE, 'Content-Length': '100' });
  res.write('{"Volume": {"Name": "v", "Mountp');
  setImmediate(() => res.socket?.destroy());
};

/** A handler that answers 200 with a raw body. */
export function raw(body: string, contentType = 'text/html', status = 200): Handler {
  return (_req, res) => void res.writeHead(status, { 'Content-Type': contentType }).end(body);
}

export interface TestClientOptions {
  /** Answers larger than this fail (plugin-store's default is 16 MiB). */
  maxResponseBytes?: number;
}

/**
 * The plugin client's contract as `@berth/plugin-store` implements it, without its retries: JSON
 * body plus `\n`, 200 answers decoded whatever their content type (`{}` when empty), other statuses
 * rejected as `system` `<method>: <Err or body>` with the status on the cause, transport failures
 * `unavailable`, deadlines `deadline-exceeded`, undecodable 200s `system` without a status.
 */
export function testClient(socketPath: string, options: TestClientOptions = {}): PluginCaller {
  const limit = options.maxResponseBytes ?? 1024 * 1024;
  return {
    call: (method: string, args?: unknown, call: PluginCallOptions = {}) =>
      new Promise<unknown>((resolve, reject) => {
        const body = args === undefined || args === null ? '' : `${JSON.stringify(args)}\n`;
        let answered = false;
        let done = false;
        const finish = (err: unknown, value?: unknown): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          call.signal?.removeEventListener('abort', onAbort);
          if (err === undefined) resolve(value);
          else {
            request.destroy();
            reject(err);
          }
        };
        const onAbort = (): void => finish(call.signal?.reason);
        const request = http.request({
          socketPath,
          method: 'POST',
          path: `/${method}`,
          agent: false,
          headers: { Accept: VERSION_MIMETYPE, Host: 'plugin.moby.localhost', 'Content-Length': Buffer.byteLength(body) },
        });
        const timer = setTimeout(
          () => finish(new BerthError('deadline-exceeded', `${method}: the plugin did not answer within ${call.timeoutMs}ms`)),
          call.timeoutMs ?? 60_000,
        );
        call.signal?.addEventListener('abort', onAbort, { once: true });
        request.on('error', (err) =>
          finish(unavailable(answered ? `${method}: the plugin closed the connection in the middle of its answer` : `${method}: ${err.message}`, { cause: err })),
        );
        request.on('response', (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > limit) finish(system(`${method}: the plugin's answer is larger than ${limit} bytes`));
            else chunks.push(c);
          });
          res.on('close', () => {
            if (!res.complete) finish(unavailable(`${method}: the plugin closed the connection in the middle of its answer`));
          });
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8').trim();
            if (res.statusCode === 200) {
              try {
                finish(undefined, text === '' ? {} : ((JSON.parse(text) as unknown) ?? {}));
              } catch {
                finish(system(`${method}: the plugin's answer is not JSON: ${text.slice(0, 200)}`));
              }
              return;
            }
            let message = text;
            try {
              const parsed = JSON.parse(text) as { Err?: unknown };
              if (typeof parsed.Err === 'string' && parsed.Err !== '') message = parsed.Err;
            } catch {
              // plain text or HTML
            }
            finish(system(`${method}: ${message}`, { cause: { serviceMethod: method, statusCode: res.statusCode } }));
          });
        });
        if (call.signal?.aborted === true) onAbort();
        else request.end(body);
      }),
  };
}

/** A legacy plugin as the plugin store returns it: host paths, driver kept by the registry. */
export function v1Plugin(name: string, client: PluginCaller): VolumePlugin {
  return { name, client: () => client, scopedPath: (p) => p, isV1: () => true };
}

/** A managed plugin: paths it reports live under its rootfs; its driver is rebuilt per lookup. */
export function managedPlugin(name: string, client: PluginCaller, rootfs: string): VolumePlugin & { refCount: number } {
  return { name, refCount: 0, client: () => client, scopedPath: (p) => join(rootfs, p), isV1: () => false };
}

/**
 * The plugin store as the registry sees it: counts `get` calls per mode and the reference count of
 * managed plugins; a name in `gates` waits for that promise first (a lookup that hangs in discovery).
 */
export class CountingPluginGetter implements PluginGetter {
  readonly plugins = new Map<string, VolumePlugin & { refCount?: number }>();
  readonly calls: Array<[string, PluginRefMode]> = [];
  readonly gates = new Map<string, Promise<void>>();

  add(plugin: VolumePlugin & { refCount?: number }): void {
    this.plugins.set(plugin.name, plugin);
  }

  async get(name: string, _capability: string, mode: PluginRefMode): Promise<unknown> {
    this.calls.push([name, mode]);
    await this.gates.get(name);
    const plugin = this.plugins.get(name);
    if (plugin === undefined) throw notFound(`plugin "${name}" not found`);
    if (plugin.refCount !== undefined) plugin.refCount += mode === 'acquire' ? 1 : mode === 'release' ? -1 : 0;
    return plugin;
  }

  async getAllByCap(): Promise<unknown[]> {
    return [...this.plugins.values()];
  }
}

/** A fresh temp directory (short path: unix socket paths are limited to 107 bytes), removed after the test. */
export async function socketDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bvd-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Records every call a client makes: method, arguments, deadline. */
export function recording(client: PluginCaller): PluginCaller & { log: Array<{ method: string; args: unknown; timeoutMs: number | undefined }> } {
  const log: Array<{ method: string; args: unknown; timeoutMs: number | undefined }> = [];
  return {
    log,
    call: (method, args, options) => {
      log.push({ method, args, timeoutMs: options?.timeoutMs });
      return client.call(method, args, options);
    },
  };
}
