import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notFound } from '@berth/errdefs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { goString, goStruct } from '@berth/gocompat';
import { httpRequest } from '../../test/http-client.js';
import { silentLogger } from '../logger.js';
import { ApiServer } from './api-server.js';
import { readJson } from './read-json.js';
import { writeEmpty, writeJson } from './respond.js';
import { route, type Route } from './router.js';

const routes: Route[] = [
  route('GET', '/ok', ({ res, apiVersion }) => writeJson(res, 200, { apiVersion })),
  route('GET', '/boom', () => {
    throw new Error('unexpected failure');
  }),
  route('GET', '/missing', () => {
    throw notFound('get x: no such volume');
  }),
  route('POST', '/echo', async ({ req, res }) => writeJson(res, 200, (await readJson(req, goStruct('x.Echo', { Name: goString }))) ?? {})),
  route('POST', '/new', ({ res }) => writeEmpty(res, 204), { minVersion: '1.42' }),
  route('GET', '/stream', async ({ res, shutdown }) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{}\n');
    await new Promise((resolve) => shutdown.addEventListener('abort', resolve, { once: true }));
    res.end();
  }),
];

let dir: string;
let socket: string;
let server: ApiServer | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-api-'));
  socket = join(dir, 'api.sock');
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

const start = async (): Promise<ApiServer> => (server = await ApiServer.listen([socket], { routes, logger: silentLogger }));

describe('ApiServer', () => {
  it('sets the version headers and serves the versioned and bare paths', async () => {
    await start();
    const bare = await httpRequest(socket, { path: '/ok' });
    expect(bare.status).toBe(200);
    expect(bare.json).toEqual({ apiVersion: '1.51' });
    expect(bare.headers).toMatchObject({
      server: expect.stringMatching(/^Docker\/.+ \(linux\)$/),
      'api-version': '1.51',
      ostype: 'linux',
      'docker-experimental': 'false',
      'content-type': 'application/json',
    });
    expect(bare.body.endsWith('}\n')).toBe(true);
    expect((await httpRequest(socket, { path: '/v1.24/ok' })).json).toEqual({ apiVersion: '1.24' });
  });

  it('refuses versions outside 1.24..1.51 with moby texts, in plain text below 1.24', async () => {
    await start();
    const old = await httpRequest(socket, { path: '/v1.23/ok' });
    expect(old.status).toBe(400);
    expect(old.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(old.body).toBe(
      'client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version\n',
    );
    expect(old.headers['docker-experimental']).toBeUndefined();
    const tooNew = await httpRequest(socket, { path: '/v1.52/ok' });
    expect(tooNew.status).toBe(400);
    expect(tooNew.json).toEqual({ message: 'client version 1.52 is too new. Maximum supported API version is 1.51' });
  });

  it('applies per-route minimum versions', async () => {
    await start();
    expect((await httpRequest(socket, { method: 'POST', path: '/v1.41/new' })).json).toEqual({
      message: 'POST /new requires minimum API version 1.42',
    });
    expect((await httpRequest(socket, { method: 'POST', path: '/v1.42/new' })).status).toBe(204);
    expect((await httpRequest(socket, { method: 'POST', path: '/new' })).status).toBe(204);
  });

  it('answers unknown paths and methods with 404 page not found', async () => {
    await start();
    for (const [method, path] of [['GET', '/nope'], ['DELETE', '/ok'], ['GET', '/v1.41/nope'], ['GET', '/v1.41']] as const) {
      const res = await httpRequest(socket, { method, path });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json).toEqual({ message: 'page not found' });
      expect(res.headers['api-version']).toBeUndefined();
    }
    expect((await httpRequest(socket, { path: '/%zz' })).json).toEqual({ message: 'invalid URL escape "%zz"' });
  });

  it('maps error kinds to status codes and survives unexpected errors', async () => {
    await start();
    expect(await httpRequest(socket, { path: '/missing' })).toMatchObject({ status: 404, json: { message: 'get x: no such volume' } });
    expect(await httpRequest(socket, { path: '/boom' })).toMatchObject({ status: 500, json: { message: 'unexpected failure' } });
    expect((await httpRequest(socket, { path: '/ok' })).status).toBe(200);
  });

  it('refuses oversized bodies and closes that connection', async () => {
    await start();
    const res = await httpRequest(socket, { method: 'POST', path: '/echo', body: { Name: 'x'.repeat(2 * 1024 * 1024) } });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ message: 'request body is larger than the limit of 1048576 bytes' });
    expect(res.headers.connection).toBe('close');
    expect((await httpRequest(socket, { method: 'POST', path: '/echo', body: { name: 'ok' } })).json).toEqual({ Name: 'ok' });
  });

  it('creates the socket with mode 0660 and removes it on close', async () => {
    const api = await start();
    expect((await stat(socket)).mode & 0o777).toBe(0o660);
    await api.close();
    server = undefined;
    await expect(stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('ends streaming responses when it closes', async () => {
    const api = await start();
    const streaming = httpRequest(socket, { path: '/stream' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await api.close();
    server = undefined;
    expect((await streaming).body).toBe('{}\n');
  });

  it('replaces a stale socket but never one a live process listens on, nor a non-socket', async () => {
    const other = createServer();
    await new Promise<void>((resolve) => other.listen(socket, resolve));
    await expect(start()).rejects.toThrow(`another daemon is already listening on ${socket}`);
    await new Promise<void>((resolve) => other.close(() => resolve()));

    // A process killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`]);
    await once(child.stdout, 'data');
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await stat(socket)).isSocket()).toBe(true);
    await start();
    expect((await httpRequest(socket, { path: '/ok' })).status).toBe(200);
    await server?.close();
    server = undefined;

    await writeFile(socket, 'not a socket');
    await expect(start()).rejects.toThrow(`${socket} exists and is not a socket`);
  });
});
