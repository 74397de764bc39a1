import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conflict, invalidParameter, notFound } from '@berth/errdefs';
import type { Filters } from '@berth/filters';
import type { PluginObject, PluginPrivilege } from '@berth/plugin-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../../test/http-client.js';
import { silentLogger } from '../logger.js';
import { ApiServer } from './api-server.js';
import { pluginRoutes, type PluginBackend } from './plugin-routes.js';

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
  privileges(name: string): PluginPrivilege[] {
    this.calls.push(['privileges', name]);
    return [{ Name: 'network', Description: 'permissions to access a network', Value: ['host'] }];
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

let dir: string;
let socket: string;
let server: ApiServer;
const backend = new FakeBackend();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-pr-'));
  socket = join(dir, 'api.sock');
  server = await ApiServer.listen([socket], { routes: pluginRoutes(backend), logger: silentLogger });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
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

  it('checks pull, upgrade and push as moby does, then answers 501', async () => {
    const pull = (query: string, body?: string) => request('POST', `/plugins/pull${query}`, body);
    expect((await pull('?remote=vieux/sshfs', '[{"Name":"network","Value":["host"]}]')).status).toBe(501);
    expect((await pull('?remote=vieux/sshfs', '{"Name":"x"}')).json).toEqual({
      message: 'invalid JSON: json: cannot unmarshal object into Go value of type plugin.Privileges',
    });
    expect((await pull('?remote=vieux/sshfs', '[{"Value":"x"}]')).json).toEqual({
      message: 'invalid JSON: json: cannot unmarshal string into Go struct field Privilege.Value of type []string',
    });
    expect((await pull('')).json).toEqual({ message: 'invalid reference format' });
    expect((await pull('?remote=vieux/SSHFS')).status).toBe(400);
    expect((await pull('?remote=vieux/sshfs&name=vol')).json).toEqual({ message: 'plugin vol:latest already exists' });
    expect((await pull('?remote=vieux/sshfs&name=other:v2')).status).toBe(501);
    expect((await pull('?remote=%zz')).json).toEqual({ message: 'failed to parse form: invalid URL escape "%zz"' });

    expect((await request('POST', '/plugins/vol/upgrade?remote=vieux/sshfs:next')).status).toBe(501);
    backend.current = plugin('vol:latest', true);
    expect((await request('POST', '/plugins/vol/upgrade?remote=vieux/sshfs:next')).json).toEqual({
      message: 'plugin must be disabled before upgrading: plugin vol:latest is enabled',
    });
    expect((await request('POST', '/plugins/nosuch/upgrade?remote=vieux/sshfs')).status).toBe(404);
    expect((await request('POST', '/plugins/vol/push')).status).toBe(501);
    expect((await request('POST', '/plugins/nosuch/push')).status).toBe(404);
  });

  it('answers the privileges of an installed plugin, and 501 for anything else', async () => {
    const privileges = await request('GET', '/plugins/privileges?remote=vol');
    expect([privileges.status, privileges.json]).toEqual([200, [{ Name: 'network', Description: 'permissions to access a network', Value: ['host'] }]]);
    expect(backend.calls).toEqual([['privileges', 'vol:latest']]);
    expect((await request('GET', '/plugins/privileges?remote=vieux/sshfs')).status).toBe(501);
    expect((await request('GET', `/plugins/privileges?remote=vol@sha256:${'b'.repeat(64)}`)).status).toBe(501);
    expect((await request('GET', '/plugins/privileges')).json).toEqual({ message: 'invalid reference format' });
  });
});
