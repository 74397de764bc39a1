import { mkdtemp, rename, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import type { Logger } from '@berth/logger';
import type { Clock } from '../src/clock.js';

export interface Received {
  readonly path: string;
  readonly method: string;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };
export type RouteHandler = (req: Received, res: http.ServerResponse) => void;
/** A route's answer: JSON sent with 200, or a function in full control of the response. */
export type Route = RouteHandler | Json;

/**
 * A v1 plugin in the test process: an HTTP server on a unix socket (or TCP port) that counts calls
 * per path, like the fake drivers of moby's integration tests.
 */
export interface FakePlugin {
  /** `unix://…` or `tcp://127.0.0.1:<port>`. */
  readonly addr: string;
  readonly received: Received[];
  count(path: string): number;
  close(): Promise<void>;
}

export interface FakePluginOptions {
  /** What `Plugin.Activate` lists; default `['VolumeDriver']`. */
  implements?: string[];
  routes?: Record<string, Route>;
}

export async function startFakePlugin(where: string | { tcp: true }, options: FakePluginOptions = {}): Promise<FakePlugin> {
  const received: Received[] = [];
  const routes: Record<string, Route> = {
    '/Plugin.Activate': { Implements: options.implements ?? ['VolumeDriver'] },
    ...options.routes,
  };
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const call: Received = {
        path: req.url ?? '',
        method: req.method ?? '',
        body: Buffer.concat(chunks).toString('utf8'),
        headers: req.headers,
      };
      received.push(call);
      const route = routes[call.path];
      if (typeof route === 'function') {
        route(call, res);
      } else if (route === undefined) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      } else {
        res.writeHead(200, { 'Content-Type': 'application/vnd.docker.plugins.v1.1+json' }).end(JSON.stringify(route));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let addr = '';
  const plugin: FakePlugin = {
    get addr() {
      return addr;
    },
    received,
    count: (p) => received.filter((r) => r.path === p).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server.listening) resolve();
        else server.close(() => resolve());
      }),
  };
  onTestFinished(() => plugin.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof where === 'string') server.listen(where, resolve);
    else server.listen(0, '127.0.0.1', resolve);
  });
  addr = typeof where === 'string' ? `unix://${where}` : `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return plugin;
}

/** A route that never answers. */
export const hang: Route = () => {};

/** A socket file nobody listens on, as a crashed plugin leaves behind (connecting: ECONNREFUSED). */
export async function staleSocket(socketPath: string): Promise<void> {
  const server = http.createServer();
  const temporary = `${socketPath}.tmp`;
  await new Promise<void>((resolve) => server.listen(temporary, resolve));
  // Closing unlinks the path the server was bound to; the renamed file stays behind.
  await rename(temporary, socketPath);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A directory removed when the current test finishes. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-ps-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock whose sleeps take no real time: they advance `now` and are recorded. */
export function fakeClock(start = 1_000_000): Clock & { sleeps: number[]; advance(ms: number): void } {
  let now = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    sleep: (ms, signal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      now += ms;
      return new Promise((resolve) => setImmediate(resolve));
    },
  };
}

export function recordingLogger(): Logger & { lines: Array<{ level: string; message: string }> } {
  const lines: Array<{ level: string; message: string }> = [];
  const log =
    (level: string) =>
    (message: string): void => {
      lines.push({ level, message });
    };
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}
