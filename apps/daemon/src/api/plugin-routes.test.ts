import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conflict, invalidParameter, notFound } from '@berth/errdefs';
import type { Filters } from '@berth/filters';
import { encodeRegistryAuth } from '@berth/plugin-registry';
import { familiarString, type NamedReference, type PluginObject, type PluginPrivilege } from '@berth/plugin-store';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../../test/http-client.js';
import { silentLogger } from '../logger.js';
import { ApiServer } from './api-server.js';
import { pluginRoutes, type PluginBackend, type PluginRegistryBackend, type RegistryCallOptions } from './plugin-routes.js';

const ID = 'a'.repeat(64);

function plugin(name: string, enabled = false): PluginObject {
  return {
    Config: { Description: name } as PluginObject['Config'],
    Enabled: enabled,
    Id: ID,
    Name: name,
    PluginReference: name,
    Settings: { Args: [], Devices: [], Env: [], Mounts: [] },
  };
}

/** Records what the routes hand to the manager, and answers like it for one plugin `vol:latest`. */
class FakeBackend implements PluginBackend {
  calls: Array<[string, ...unknown[]]> = [];
  current: PluginObject = plugin('vol:latest');
  running = false;
  received = 0;

  list(filters: Filters): PluginObject[] {
    this.calls.push(['list', filters.toJSON()]);
    filters.validate(['enabled', 'capability']);
    return [this.current];
  }
  inspect(name: string): PluginObject {
    if (name === 'vol' || name === 'vol:latest' || ID.startsWith(name)) return this.current;
    throw notFound(`plugin "${name}" not found`);
  }
  isRunning(name: string): boolean {
    this.inspect(name);
    return this.running;
  }
  async createFromContext(name: string, context: AsyncIterable<Uint8Array>): Promise<unknown> {
    this.calls.push(['create', name]);
    // Reads one chunk only, as the manager does when it refuses the first entry.
    for await (const chunk of context) {
      this.received += chunk.length;
      break;
    }
    if (name === 'refuse') throw invalidParameter('invalid plugin context');
    return undefined;
  }
  async enable(name: string, options: { timeoutSeconds?: number }): Promise<void> {
    this.calls.push(['enable', name, options.timeoutSeconds]);
    this.inspect(name);
  }
  async disable(name: string, options: { force?: boolean }): Promise<void> {
    this.calls.push(['disable', name, options.force]);
    if (options.force !== true) throw conflict('plugin vol:latest is in use');
  }
  async remove(name: string, options: { force?: boolean }): Promise<void> {
    this.calls.push(['remove', name, options.force]);
  }
  async set(name: string, args: readonly string[]): Promise<void> {
    this.calls.push(['set', name, args]);
    this.inspect(name);
  }
}

/** Records the registry calls; `fail` says when to fail: before any progress, or after some. */
class FakeRegistry implements PluginRegistryBackend {
  calls: Array<[string, ...unknown[]]> = [];
  fail: 'before' | 'after' | undefined;
  async remotePrivileges(ref: NamedReference, options: Omit<RegistryCallOptions, 'onProgress'>): Promise<PluginPrivilege[] | null> {
    this.calls.push(['privileges', familiarString(ref), options.auth, options.headers]);
    if (ref.path.endsWith('unknown')) return [];
    if (ref.path.endsWith('plain')) return null;
    return [{ Name: 'network', Description: 'permissions to access a network', Value: ['host'] }];
  }
  async pull(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RegistryCallOptions): Promise<void> {
    this.calls.push(['pull', familiarString(ref), name, privileges, options.auth, options.headers]);
    await this.#progress(options);
  }
  async upgrade(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RegistryCallOptions): Promise<void> {
    this.calls.push(['upgrade', familiarString(ref), name, privileges]);
    backend.inspect(name);
    if (backend.current.Enabled) throw conflict(`plugin must be disabled before upgrading: plugin ${backend.current.Name} is enabled`);
    await this.#progress(options);
  }
  async push(name: string, options: RegistryCallOptions): Promise<void> {
    this.calls.push(['push', name]);
    backend.inspect(name);
    await this.#progress(options);
    options.onProgress({ aux: { Tag: 'latest', Digest: `sha256:${'c'.repeat(64)}`, Size: 525 } });
  }
  async #progress(options: RegistryCallOptions): Promise<void> {
    if (this.fail === 'before') throw invalidParameter('refused before any progress');
    options.onProgress({ status: 'Pulling from x', id: 'latest' });
    if (this.fail === 'after') throw new Error('registry went away');
  }
}

let dir: string;
let socket: string;
let server: ApiServer;
const backend = new FakeBackend();
const registry = new FakeRegistry();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-pr-'));
  socket = join(dir, 'api.sock');
  server = await ApiServer.listen([socket], { routes: pluginRoutes(backend, registry), logger: silentLogger });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  registry.calls = [];
  registry.fail = undefined;
  backend.calls = [];
  backend.current = plugin('vol:latest');
  backend.running = false;
  backend.received = 0;
});

const request = (method: string, path: string, body?: string | Buffer, contentType = 'application/json') =>
  httpRequest(socket, { method, path, ...(body === undefined ? {} : { body, headers: { 'Content-Type': contentType } }) });

describe('plugin routes', () => {
  it('lists and inspects with berth’s Running beside moby’s fields, by names with / and :', async () => {
    backend.current = plugin('vieux/sshfs:latest', true);
    backend.running = true;
    const list = await request('GET', '/plugins?filters=' + encodeURIComponent('{"enabled":{"true":true}}'));
    expect(list.status).toBe(200);
    expect(list.body).toBe(
      `[{"Config":{"Description":"vieux/sshfs:latest"},"Enabled":true,"Running":true,"Id":"${ID}","Name":"vieux/sshfs:latest","PluginReference":"vieux/sshfs:latest","Settings":{"Args":[],"Devices":[],"Env":[],"Mounts":[]}}]\n`,
    );
    expect(backend.calls).toEqual([['list', { enabled: { true: true } }]]);
    expect((await request('GET', '/plugins?filters=' + encodeURIComponent('{"enable":{"true":true}}'))).json).toEqual({ message: "invalid filter 'enable'" });
    expect((await request('GET', `/v1.41/plugins/${ID.slice(0, 5)}/json`)).json).toMatchObject({ Name: 'vieux/sshfs:latest', Running: true });
    expect((await request('GET', '/plugins/nosuch/json')).json).toEqual({ message: 'plugin "nosuch" not found' });
  });

  it('parses enable’s timeout as Go’s strconv.Atoi, and clamps it to what a timer can wait', async () => {
    for (const [query, message] of [
      ['', 'strconv.Atoi: parsing "": invalid syntax'],
      ['?timeout=', 'strconv.Atoi: parsing "": invalid syntax'],
      ['?timeout=%20', 'strconv.Atoi: parsing " ": invalid syntax'],
      ['?timeout=0x10', 'strconv.Atoi: parsing "0x10": invalid syntax'],
      ['?timeout=%22', 'strconv.Atoi: parsing "\\"": invalid syntax'],
      ['?timeout=9223372036854775808', 'strconv.Atoi: parsing "9223372036854775808": value out of range'],
    ] as const) {
      const res = await request('POST', `/plugins/vol/enable${query}`);
      expect([query, res.status, res.json]).toEqual([query, 400, { message }]);
    }
    for (const [query, seconds] of [
      ['?timeout=30', 30],
      ['?timeout=%2B7', 7],
      ['?timeout=-5', 0],
      ['?timeout=9223372036854775807', 2147483],
    ] as const) {
      const res = await request('POST', `/plugins/vol/enable${query}`);
      expect([res.status, res.body, res.headers['content-length']]).toEqual([200, '', '0']);
      expect(backend.calls.pop()).toEqual(['enable', 'vol', seconds]);
    }
  });

  it('passes force to disable and remove, answering 200 with an empty body', async () => {
    expect((await request('POST', '/plugins/vol/disable')).json).toEqual({ message: 'plugin vol:latest is in use' });
    const disabled = await request('POST', '/plugins/vol/disable?force=1');
    expect([disabled.status, disabled.body]).toEqual([200, '']);
    const removed = await request('DELETE', '/plugins/vieux/sshfs:latest?force=true');
    expect([removed.status, removed.body]).toEqual([200, '']);
    expect(backend.calls).toEqual([
      ['disable', 'vol', false],
      ['disable', 'vol', true],
      ['remove', 'vieux/sshfs:latest', true],
    ]);
  });

  it('reads set’s body as a Go []string', async () => {
    expect((await request('POST', '/plugins/vol/set', '["DEBUG=1", null]')).status).toBe(204);
    expect((await request('POST', '/plugins/vol/set', '')).status).toBe(204);
    expect((await request('POST', '/plugins/vol/set', '[1]')).json).toEqual({
      message: 'invalid JSON: json: cannot unmarshal number into Go value of type string',
    });
    expect(backend.calls).toEqual([
      ['set', 'vol', ['DEBUG=1', '']],
      ['set', 'vol', []],
    ]);
  });

  it('answers an early refusal of a build context without cutting the connection, reading the rest', async () => {
    const big = Buffer.alloc(4 << 20, 7);
    const refused = await request('POST', '/plugins/create?name=refuse', big, 'application/x-tar');
    expect([refused.status, refused.json]).toEqual([400, { message: 'invalid plugin context' }]);
    expect(backend.received).toBeGreaterThan(0);
    expect(backend.received).toBeLessThan(big.length);
    const created = await request('POST', '/plugins/create?name=ok', big, 'application/x-tar');
    expect([created.status, created.body]).toEqual([204, '']);
  });

  it('checks pull, upgrade and push as moby does before handing them to the registry side', async () => {
    const pull = (query: string, body?: string) => request('POST', `/plugins/pull${query}`, body);
    const accepted = '[{"Name":"network","Value":["host"]}]';
    const ok = await pull('?remote=vieux/sshfs', accepted);
    expect([ok.status, ok.headers['content-type'], ok.headers['docker-plugin-name']]).toEqual([200, 'application/json', 'vieux/sshfs:latest']);
    expect(ok.body).toBe('{"status":"Pulling from x","id":"latest"}\r\n');
    expect(registry.calls).toEqual([['pull', 'vieux/sshfs:latest', 'vieux/sshfs:latest', [{ Name: 'network', Description: '', Value: ['host'] }], {}, {}]]);
    expect((await pull('?remote=vieux/sshfs', '{"Name":"x"}')).json).toEqual({
      message: 'invalid JSON: json: cannot unmarshal object into Go value of type plugin.Privileges',
    });
    expect((await pull('?remote=vieux/sshfs', '[{"Value":"x"}]')).json).toEqual({
      message: 'invalid JSON: json: cannot unmarshal string into Go struct field Privilege.Value of type []string',
    });
    expect((await pull('')).json).toEqual({ message: 'invalid reference format' });
    expect((await pull('?remote=vieux/SSHFS')).status).toBe(400);
    expect((await pull('?remote=%zz')).json).toEqual({ message: 'failed to parse form: invalid URL escape "%zz"' });
    expect((await pull(`?remote=vieux/sshfs&name=x@sha256:${'a'.repeat(64)}`)).json).toEqual({ message: 'cannot use digest in plugin tag' });

    // Local names: `name`, or the remote's familiar form; a digest keeps its tag for the name.
    registry.calls = [];
    await pull('?remote=vieux/sshfs&name=other');
    await pull(`?remote=localhost:5000/a/b:1.0@sha256:${'b'.repeat(64)}`);
    await pull(`?remote=docker.io/library/x@sha256:${'b'.repeat(64)}`);
    expect(registry.calls.map((c) => [c[1], c[2]])).toEqual([
      ['vieux/sshfs:latest', 'other:latest'],
      [`localhost:5000/a/b@sha256:${'b'.repeat(64)}`, 'localhost:5000/a/b:1.0'],
      [`x@sha256:${'b'.repeat(64)}`, 'x:latest'],
    ]);

    registry.calls = [];
    expect((await request('POST', '/plugins/vol/upgrade?remote=vieux/sshfs:next')).status).toBe(200);
    expect(registry.calls).toEqual([['upgrade', 'vieux/sshfs:next', 'vol:latest', []]]);
    backend.current = plugin('vol:latest', true);
    const enabled = await request('POST', '/plugins/vol/upgrade?remote=vieux/sshfs:next');
    expect([enabled.status, enabled.json]).toEqual([409, { message: 'plugin must be disabled before upgrading: plugin vol:latest is enabled' }]);
    expect((await request('POST', '/plugins/nosuch/upgrade?remote=vieux/sshfs')).status).toBe(404);
    expect((await request('POST', '/v1.25/plugins/vol/upgrade?remote=vieux/sshfs')).json).toEqual({
      message: 'POST /plugins/{name:.*}/upgrade requires minimum API version 1.26',
    });
    const pushed = await request('POST', '/plugins/vol/push');
    expect(pushed.status).toBe(200);
    expect(pushed.body.split('\r\n').filter(Boolean).map((l) => JSON.parse(l) as unknown).at(-1)).toEqual({
      aux: { Tag: 'latest', Digest: `sha256:${'c'.repeat(64)}`, Size: 525 },
    });
    expect((await request('POST', '/plugins/nosuch/push')).status).toBe(404);
  });

  it('answers errors before the first message with a status, after it in the stream', async () => {
    registry.fail = 'before';
    const before = await request('POST', '/plugins/pull?remote=vieux/sshfs');
    expect([before.status, before.json, before.headers['docker-plugin-name']]).toEqual([400, { message: 'refused before any progress' }, 'vieux/sshfs:latest']);
    registry.fail = 'after';
    for (const path of ['/plugins/pull?remote=vieux/sshfs', '/plugins/vol/upgrade?remote=vieux/sshfs', '/plugins/vol/push']) {
      const after = await request('POST', path);
      expect(after.status).toBe(200);
      expect(after.body).toBe(
        '{"status":"Pulling from x","id":"latest"}\r\n{"errorDetail":{"message":"registry went away"},"error":"registry went away"}\r\n',
      );
    }
  });

  it('decodes X-Registry-Auth (garbage is no credentials, as moby) and forwards X-Meta-* headers', async () => {
    const auth = encodeRegistryAuth({ username: 'user', password: 'pass', serverAddress: 'localhost:5000' });
    await httpRequest(socket, { method: 'POST', path: '/plugins/pull?remote=vieux/sshfs', headers: { 'X-Registry-Auth': auth, 'X-Meta-Trace': 'abc' } });
    await httpRequest(socket, { method: 'POST', path: '/plugins/pull?remote=vieux/sshfs', headers: { 'X-Registry-Auth': '!!not base64!!' } });
    await httpRequest(socket, { path: '/plugins/privileges?remote=vieux/sshfs', headers: { 'X-Registry-Auth': auth } });
    expect(registry.calls.map((c) => [c[0], c.at(-2), c.at(-1)])).toEqual([
      ['pull', { username: 'user', password: 'pass', serverAddress: 'localhost:5000' }, { 'X-Meta-Trace': 'abc' }],
      ['pull', {}, {}],
      ['privileges', { username: 'user', password: 'pass', serverAddress: 'localhost:5000' }, {}],
    ]);
  });

  it('answers the privileges of a remote plugin: null for none, [] when it cannot be fetched', async () => {
    const privileges = await request('GET', '/plugins/privileges?remote=vieux/sshfs');
    expect([privileges.status, privileges.json]).toEqual([200, [{ Name: 'network', Description: 'permissions to access a network', Value: ['host'] }]]);
    expect((await request('GET', '/plugins/privileges?remote=x/plain')).body).toBe('null\n');
    expect((await request('GET', '/plugins/privileges?remote=x/unknown')).body).toBe('[]\n');
    expect((await request('GET', '/plugins/privileges')).json).toEqual({ message: 'invalid reference format' });
  });
});
