import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { BerthError, kindOf } from '@berth/errdefs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { fakeClock, hang, recordingLogger, startFakePlugin, tempDir, type Route } from '../test/fake-plugin.js';
import { isPluginNotFound, PluginClient, pluginStatusCode, VERSION_MIMETYPE, type PluginCallOutcome, type PluginClientOptions } from './index.js';

async function pluginWith(routes: Record<string, Route>): Promise<string> {
  const dir = await tempDir();
  return (await startFakePlugin(path.join(dir, 'p.sock'), { routes })).addr;
}

function client(addr: string, options: Partial<PluginClientOptions> = {}): PluginClient {
  return new PluginClient({ addr, clock: fakeClock(), ...options });
}

async function failure(promise: Promise<unknown>): Promise<BerthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(BerthError.is(err), `expected a BerthError, got ${String(err)}`).toBe(true);
  return err as BerthError;
}

describe('PluginClient requests', () => {
  it('posts JSON with a trailing newline and moby headers; no args means no body (TestEchoInputOutput)', async () => {
    const dir = await tempDir();
    const echo: Route = (req, res) => res.writeHead(200, { 'Content-Type': VERSION_MIMETYPE }).end(req.body);
    const plugin = await startFakePlugin(path.join(dir, 'echo.sock'), { routes: { '/Test.Echo': echo } });
    const c = client(plugin.addr);
    const manifest = { Implements: ['VolumeDriver', 'NetworkDriver'] };
    expect(await c.call('Test.Echo', manifest)).toEqual(manifest);
    expect(await c.call('Test.Echo')).toEqual({});
    expect(await c.call('Test.Echo', {})).toEqual({});
    const [withArgs, withoutArgs, empty] = plugin.received;
    expect(withArgs).toMatchObject({ method: 'POST', path: '/Test.Echo', body: `${JSON.stringify(manifest)}\n` });
    expect(withArgs?.headers).toMatchObject({ accept: VERSION_MIMETYPE, host: 'plugin.moby.localhost' });
    expect(withoutArgs).toMatchObject({ body: '' });
    expect(withoutArgs?.headers['content-length']).toBe('0');
    expect(empty?.body).toBe('{}\n');
  });

  it('talks plain HTTP to tcp:// addresses with the address as Host', async () => {
    const plugin = await startFakePlugin({ tcp: true }, { routes: { '/X.Y': { ok: 1 } } });
    expect(await client(plugin.addr).call('X.Y', {})).toEqual({ ok: 1 });
    expect(plugin.received[0]?.headers.host).toBe(plugin.addr.slice('tcp://'.length));
  });

  it('accepts the answers loose plugins give', async () => {
    const send =
      (status: number, body: string, type?: string): Route =>
      (_req, res) =>
        res.writeHead(status, type === undefined ? {} : { 'Content-Type': type }).end(body);
    const addr = await pluginWith({
      '/A.Json': send(200, '{"Mountpoint":"/x"}', 'application/json'),
      '/A.V11': send(200, '{"Mountpoint":"/y"}', 'application/vnd.docker.plugins.v1.1+json'),
      '/A.Text': send(200, '{"Mountpoint":"/z"}\n', 'text/plain; charset=utf-8'),
      '/A.None': send(200, '{}'),
      '/A.Empty': send(200, ''),
      '/A.Null': send(200, 'null'),
      '/A.ErrIn200': send(200, '{"Err":"already mounted"}'),
      '/A.Missing': send(200, '{"Volume":{"Name":"v"}}'),
    });
    const c = client(addr);
    expect(await c.call('A.Json', {})).toEqual({ Mountpoint: '/x' });
    expect(await c.call('A.V11', {})).toEqual({ Mountpoint: '/y' });
    expect(await c.call('A.Text', {})).toEqual({ Mountpoint: '/z' });
    expect(await c.call('A.None', {})).toEqual({});
    expect(await c.call('A.Empty', {})).toEqual({});
    expect(await c.call('A.Null', {})).toEqual({});
    // A 200 with Err is data: the caller (the VolumeDriver adapter) turns it into its error.
    expect(await c.call('A.ErrIn200', {})).toEqual({ Err: 'already mounted' });
    expect(await c.call('A.Missing', {})).toEqual({ Volume: { Name: 'v' } });
  });

  it('turns error answers into "<Iface.Method>: <message>", detecting 404s', async () => {
    const send =
      (status: number, body: string): Route =>
      (_req, res) =>
        res.writeHead(status).end(body);
    const addr = await pluginWith({
      '/V.Err500': send(500, '{"Err":"no space left"}'),
      '/V.LowerErr': send(400, '{"err":"bad name"}'),
      '/V.EmptyErr': send(500, '{"Err":""}'),
      '/V.Text': send(500, '  disk on fire\n'),
      '/V.Html': send(502, '<html><body><h1>502 Bad Gateway</h1></body></html>'),
      '/V.Nothing': send(503, ''),
      '/V.Huge': send(500, 'x'.repeat(10_000)),
    });
    const c = client(addr);
    const cases: Array<[string, string]> = [
      ['V.Err500', 'V.Err500: no space left'],
      ['V.LowerErr', 'V.LowerErr: bad name'],
      ['V.EmptyErr', 'V.EmptyErr: {"Err":""}'],
      ['V.Text', 'V.Text: disk on fire'],
      ['V.Html', 'V.Html: <html><body><h1>502 Bad Gateway</h1></body></html>'],
      ['V.Nothing', 'V.Nothing: 503 Service Unavailable'],
      ['V.Missing', 'V.Missing: 404 page not found'],
    ];
    for (const [method, text] of cases) {
      const err = await failure(c.call(method, {}));
      expect(err.message).toBe(text);
      expect(err.kind).toBe('system');
    }
    expect(isPluginNotFound(await failure(c.call('V.Missing', {})))).toBe(true);
    expect(isPluginNotFound(await failure(c.call('V.Err500', {})))).toBe(false);
    expect(pluginStatusCode(await failure(c.call('V.Html', {})))).toBe(502);
    expect((await failure(c.call('V.Huge', {}))).message.length).toBeLessThan(4200);
  });

  it('never retries an answered call', async () => {
    const dir = await tempDir();
    const plugin = await startFakePlugin(path.join(dir, 'p.sock'), {
      routes: { '/V.Fail': (_req, res) => res.writeHead(500).end('{"Err":"boom"}') },
    });
    const clock = fakeClock();
    await failure(client(plugin.addr, { clock }).call('V.Fail', {}));
    expect(plugin.count('/V.Fail')).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('rejects answers that are not JSON', async () => {
    const addr = await pluginWith({ '/G.Arbage': (_req, res) => res.writeHead(200).end('\u0000\u0001not json at all') });
    const err = await failure(client(addr).call('G.Arbage', {}));
    expect(err.message).toMatch(/^G\.Arbage: the plugin's answer is not JSON: /);
  });
});

describe('PluginClient deadlines and broken plugins', () => {
  it('fails a call that exceeds the client timeout (TestNewClientWithTimeout)', async () => {
    const addr = await pluginWith({ '/Test.Echo': (req, res) => setTimeout(() => res.end(req.body), 300) });
    const err = await failure(client(addr, { timeoutMs: 100 }).call('Test.Echo', { a: 1 }));
    expect(err.kind).toBe('deadline-exceeded');
    expect(err.message).toBe('Test.Echo: the plugin did not answer within 100ms');
    expect(await client(addr, { timeoutMs: 100 }).call('Test.Echo', { a: 1 }, { timeoutMs: 2000 })).toEqual({ a: 1 });
  });

  it('applies a per-call deadline to a plugin that never answers (TestClientWithRequestTimeout)', async () => {
    const addr = await pluginWith({ '/Plugin.Hello': hang });
    const started = Date.now();
    const err = await failure(client(addr).call('/Plugin.Hello', undefined, { timeoutMs: 1 }));
    expect(err.kind).toBe('deadline-exceeded');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('stops waiting when the signal aborts', async () => {
    const addr = await pluginWith({ '/Slow.Call': hang });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('client went away')), 50);
    await expect(client(addr).call('Slow.Call', {}, { signal: controller.signal })).rejects.toThrow('client went away');
  });

  it('tells its observer how each call ended: ok, an error, a timeout (its own deadline or the caller’s), a cancel', async () => {
    const addr = await pluginWith({
      '/Ok.Call': { Mountpoint: '/x' },
      '/Err.Call': { Err: 'volume is busy' },
      '/Slow.Call': hang,
    });
    const seen: Array<[string, string, PluginCallOutcome]> = [];
    const observed = client(addr, { name: 'vol', onCall: (plugin, method, ms, outcome) => (expect(ms).toBeGreaterThanOrEqual(0), seen.push([plugin, method, outcome])) });
    await observed.call('/Ok.Call', {});
    await observed.call('Err.Call', {});
    await failure(observed.call('No.Such', {}));
    await failure(observed.call('Slow.Call', {}, { timeoutMs: 20 }));
    await expect(observed.call('Slow.Call', {}, { signal: AbortSignal.timeout(20) })).rejects.toThrow();
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('client went away')), 20);
    await expect(observed.call('Slow.Call', {}, { signal: controller.signal })).rejects.toThrow('client went away');
    expect(seen).toEqual([
      ['vol', 'Ok.Call', 'ok'],
      ['vol', 'Err.Call', 'error'],
      ['vol', 'No.Such', 'error'],
      ['vol', 'Slow.Call', 'timeout'],
      ['vol', 'Slow.Call', 'timeout'],
      ['vol', 'Slow.Call', 'canceled'],
    ]);
  });

  it('refuses answers over the size limit and drops the connection', async () => {
    let closed = false;
    const endless: Route = (_req, res) => {
      res.writeHead(200);
      res.socket?.on('close', () => (closed = true));
      const chunk = Buffer.alloc(1 << 20, 'x');
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    };
    const declared: Route = (_req, res) => {
      res.writeHead(200, { 'Content-Length': String(100 * 1024 * 1024) });
      res.write('{"Mountpoint":');
    };
    const addr = await pluginWith({ '/Big.Endless': endless, '/Big.Declared': declared });
    const before = process.memoryUsage().rss;
    const err = await failure(client(addr).call('Big.Endless', {}));
    expect(err.message).toBe("Big.Endless: the plugin's answer is larger than 16777216 bytes");
    expect(process.memoryUsage().rss - before).toBeLessThan(96 * 1024 * 1024);
    await expect.poll(() => closed).toBe(true);
    const small = client(addr, { maxResponseBytes: 1024 });
    expect((await failure(small.call('Big.Declared', {}))).message).toBe(
      "Big.Declared: the plugin's answer is larger than 1024 bytes",
    );
  });

  it('reports a connection closed in the middle of the answer', async () => {
    const addr = await pluginWith({
      '/Cut.Off': (_req, res) => {
        res.writeHead(200, { 'Content-Length': '100' });
        res.write('{"Mountpoint":"/x');
        setTimeout(() => res.socket?.destroy(), 20);
      },
    });
    const clock = fakeClock();
    const err = await failure(client(addr, { clock }).call('Cut.Off', {}));
    expect(err.kind).toBe('unavailable');
    expect(err.message).toBe('Cut.Off: the plugin closed the connection in the middle of its answer');
    expect(clock.sleeps).toEqual([]);
  });
});

describe('PluginClient retries', () => {
  it('fails at once without retries when nothing listens (TestFailedConnection)', async () => {
    const err = await failure(client('tcp://127.0.0.1:1').call('Service.Method', {}, { retry: false }));
    expect(err.kind).toBe('unavailable');
    expect(err.message).toBe('Service.Method: dial tcp 127.0.0.1:1: connect: connection refused');
  });

  it('retries a call whose connection dropped before any answer (TestFailOnce)', async () => {
    let failed = false;
    const addr = await pluginWith({
      '/Test.FailOnce': (_req, res) => {
        if (!failed) {
          failed = true;
          res.socket?.destroy();
          return;
        }
        res.end('{"ok":true}');
      },
    });
    const clock = fakeClock();
    expect(await client(addr, { clock }).call('Test.FailOnce', { body: 'x' })).toEqual({ ok: true });
    expect(clock.sleeps).toEqual([1000]);
  });

  it('backs off 1, 2, 4, 8 s on transport errors and gives up within the 30 s budget', async () => {
    const dir = await tempDir();
    const clock = fakeClock();
    const logger = recordingLogger();
    const socket = path.join(dir, 'absent.sock');
    const err = await failure(client(`unix://${socket}`, { clock, logger }).call('VolumeDriver.Get', { Name: 'v' }));
    expect(clock.sleeps).toEqual([1000, 2000, 4000, 8000]);
    expect(err.kind).toBe('unavailable');
    expect(err.message).toBe(`VolumeDriver.Get: dial unix ${socket}: connect: no such file or directory`);
    expect(logger.lines[0]).toEqual({
      level: 'warn',
      message: `Unable to connect to plugin: ${socket}/VolumeDriver.Get: ${err.message}, retrying in 1s`,
    });
  });

  it('resends the whole body on a retry', async () => {
    const dir = await tempDir();
    const socket = path.join(dir, 'late.sock');
    let plugin: Awaited<ReturnType<typeof startFakePlugin>> | undefined;
    const clock = fakeClock();
    const sleep = clock.sleep;
    clock.sleep = async (ms, signal) => {
      plugin ??= await startFakePlugin(socket, { routes: { '/V.Create': {} } });
      return sleep(ms, signal);
    };
    await client(`unix://${socket}`, { clock }).call('V.Create', { Name: 'v', Opts: null });
    expect(plugin?.received[0]?.body).toBe('{"Name":"v","Opts":null}\n');
  });
});

describe('PluginClient over TLS', () => {
  it('verifies with the CA file of a .json spec, or skips verification without one', async () => {
    const dir = await tempDir();
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
    ]);
    const server = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (_req, res) =>
      res.end('{"Implements":["VolumeDriver"]}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const addr = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const verified = client(addr, { tls: { caFile: cert, certFile: '', keyFile: '', insecureSkipVerify: false } });
    expect(await verified.call('Plugin.Activate')).toEqual({ Implements: ['VolumeDriver'] });
    const skipping = client(addr, { tls: { insecureSkipVerify: true } });
    expect(await skipping.call('Plugin.Activate')).toEqual({ Implements: ['VolumeDriver'] });
    const strict = client(addr, { tls: { insecureSkipVerify: false } });
    expect(kindOf(await failure(strict.call('Plugin.Activate', undefined, { retry: false })))).toBe('unavailable');
    const missing = client(addr, { tls: { caFile: path.join(dir, 'nope.pem'), insecureSkipVerify: false } });
    expect((await failure(missing.call('Plugin.Activate'))).message).toMatch(/^could not read CA certificate ".*nope\.pem": /);
  });
});
