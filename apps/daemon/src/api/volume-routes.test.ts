import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conflict, notFound } from '@berth/errdefs';
import type { Filters } from '@berth/filters';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../../test/http-client.js';
import { silentLogger } from '../logger.js';
import { ApiServer } from './api-server.js';
import type { VolumeInfo } from '@berth/volume-service';
import type { CreateVolumeOptions, VolumeBackend } from './volume-backend.js';
import { volumeRoutes } from './volume-routes.js';

/** Records what the routes hand to the service, and answers like it. */
class FakeBackend implements VolumeBackend {
  calls: Array<[string, ...unknown[]]> = [];
  volumes = new Map<string, VolumeInfo>();

  async create(options: CreateVolumeOptions): Promise<VolumeInfo> {
    this.calls.push(['create', options]);
    const name = options.name ?? 'a'.repeat(64);
    const v: VolumeInfo = { CreatedAt: '2025-01-01T00:00:00Z', Driver: options.driver ?? 'local', Labels: options.labels ?? null, Mountpoint: `/d/${name}/_data`, Name: name, Options: options.driverOpts ?? null, Scope: 'local' };
    this.volumes.set(name, v);
    return v;
  }
  async get(name: string, options?: { resolveStatus?: boolean }): Promise<VolumeInfo> {
    this.calls.push(['get', name, options?.resolveStatus]);
    const v = this.volumes.get(name);
    if (v === undefined) throw notFound(`get ${name}: no such volume`);
    return v;
  }
  async list(filters: Filters): Promise<{ volumes: VolumeInfo[]; warnings: string[] }> {
    this.calls.push(['list', filters.toJSON()]);
    filters.validate(['dangling', 'name', 'driver', 'label', 'warn']);
    return { volumes: [...this.volumes.values()], warnings: filters.contains('warn') ? ['list slow: timed out'] : [] };
  }
  async remove(name: string, options?: { force?: boolean }): Promise<void> {
    this.calls.push(['remove', name, options?.force]);
    if (name === 'busy') throw conflict('remove busy: volume is in use - [c1]');
  }
  async prune(filters: Filters): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    this.calls.push(['prune', filters.toJSON()]);
    return { VolumesDeleted: [], SpaceReclaimed: 0 };
  }
  async mount(name: string, ref: string): Promise<string> {
    this.calls.push(['mount', name, ref]);
    return `/d/${name}/_data`;
  }
  async unmount(name: string, ref: string): Promise<void> {
    this.calls.push(['unmount', name, ref]);
  }
  getDriverList(): string[] {
    return ['local'];
  }
}

let dir: string;
let socket: string;
let server: ApiServer;
const backend = new FakeBackend();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-vol-'));
  socket = join(dir, 'api.sock');
  server = await ApiServer.listen([socket], { routes: volumeRoutes(backend), logger: silentLogger });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  backend.calls = [];
  backend.volumes.clear();
});

const call = (method: string, path: string, body?: object | string, headers?: Record<string, string>) =>
  httpRequest(socket, { method, path, ...(body === undefined ? {} : { body }), ...(headers === undefined ? {} : { headers }) });

describe('POST /volumes/create', () => {
  it('answers 201 with the volume in Go field order, passing only what was set', async () => {
    const res = await call('POST', '/v1.50/volumes/create', { name: 'v1', Labels: { a: 'b' }, DriverOpts: null, Unknown: 1 });
    expect(res.status).toBe(201);
    expect(res.body).toBe(
      '{"CreatedAt":"2025-01-01T00:00:00Z","Driver":"local","Labels":{"a":"b"},"Mountpoint":"/d/v1/_data","Name":"v1","Options":null,"Scope":"local"}\n',
    );
    expect(backend.calls).toEqual([['create', { name: 'v1', labels: { a: 'b' } }]]);
  });

  it('creates an anonymous volume from an empty body', async () => {
    expect((await call('POST', '/volumes/create')).status).toBe(201);
    expect(backend.calls).toEqual([['create', {}]]);
  });

  it('refuses cluster volumes for API >= 1.42 (no swarm) and ignores the spec before', async () => {
    const res = await call('POST', '/v1.42/volumes/create', { Name: 'c', ClusterVolumeSpec: {} });
    expect(res.status).toBe(503);
    expect(res.json).toEqual({
      message: 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
    });
    expect((await call('POST', '/v1.41/volumes/create', { Name: 'c', ClusterVolumeSpec: {} })).status).toBe(201);
  });
});

describe('GET /volumes', () => {
  it('lists with Warnings null when there are none', async () => {
    await backend.create({ name: 'v1' });
    const res = await call('GET', '/volumes');
    expect(res.json).toEqual({ Volumes: [expect.objectContaining({ Name: 'v1', Labels: null, Options: null })], Warnings: null });
    expect((await call('GET', `/volumes?filters=${encodeURIComponent('{"warn":["x"]}')}`)).json).toMatchObject({ Warnings: ['list slow: timed out'] });
  });

  it('writes Go JSON byte for byte from each volume kept encoded, also when the service hands it out frozen again', async () => {
    backend.volumes.clear();
    const frozen = Object.freeze({ CreatedAt: '2025-01-01T00:00:00Z', Driver: 'local', Labels: { 'l\u2028': 'v' }, Mountpoint: '/d/f/_data', Name: 'f', Options: null, Scope: 'local' });
    backend.volumes.set('f', frozen);
    backend.volumes.set('g', { Driver: 'plug', Labels: null, Mountpoint: '', Name: 'g', Options: { o: '1' }, Scope: 'global', CreatedAt: '' });
    const expected =
      '{"Volumes":[{"CreatedAt":"2025-01-01T00:00:00Z","Driver":"local","Labels":{"l\\u2028":"v"},"Mountpoint":"/d/f/_data","Name":"f","Options":null,"Scope":"local"},' +
      '{"Driver":"plug","Labels":null,"Mountpoint":"","Name":"g","Options":{"o":"1"},"Scope":"global"}],"Warnings":null}\n';
    for (let i = 0; i < 2; i++) expect((await call('GET', '/volumes')).body).toBe(expected);
    expect((await call('GET', '/volumes/f')).body).toBe(`${expected.slice('{"Volumes":['.length, expected.indexOf(',{"Driver":"plug"'))}\n`);
    const warned = await call('GET', `/volumes?filters=${encodeURIComponent('{"warn":["x"]}')}`);
    expect(warned.body.endsWith('],"Warnings":["list slow: timed out"]}\n')).toBe(true);
    backend.volumes.clear();
    expect((await call('GET', '/volumes')).body).toBe('{"Volumes":[],"Warnings":null}\n');
  });

  it('prefixes unparsable filters, but not unknown keys', async () => {
    expect((await call('GET', '/volumes?filters=%7B')).json).toEqual({ message: 'error reading volume filters: invalid filter' });
    expect((await call('GET', `/volumes?filters=${encodeURIComponent('{"FOO":{"1":true}}')}`)).json).toEqual({ message: "invalid filter 'FOO'" });
    expect((await call('GET', '/volumes?filters=%zz')).json).toEqual({ message: 'invalid URL escape "%zz"' });
  });
});

describe('GET /volumes/{name}', () => {
  it('inspects with status, names may contain slashes, "create" is a name', async () => {
    await backend.create({ name: 'create' });
    expect((await call('GET', '/volumes/create')).json).toMatchObject({ Name: 'create' });
    expect(backend.calls.at(-1)).toEqual(['get', 'create', true]);
    expect((await call('GET', '/v1.50/volumes/a%2Fb')).json).toEqual({ message: 'get a/b: no such volume' });
    expect((await call('GET', '/volumes/x/y')).status).toBe(404);
  });
});

describe('DELETE /volumes/{name}', () => {
  it('answers 204 and reads force as moby BoolValue', async () => {
    expect((await call('DELETE', '/volumes/v1?force=1')).status).toBe(204);
    expect((await call('DELETE', '/volumes/v1?force=no')).status).toBe(204);
    expect((await call('DELETE', '/volumes/v1')).status).toBe(204);
    expect(backend.calls).toEqual([['remove', 'v1', true], ['remove', 'v1', false], ['remove', 'v1', false]]);
    expect(await call('DELETE', '/volumes/busy')).toMatchObject({ status: 409, json: { message: 'remove busy: volume is in use - [c1]' } });
  });
});

describe('POST /volumes/prune', () => {
  it('adds all=true before API 1.42 and needs API 1.25', async () => {
    const res = await call('POST', `/v1.41/volumes/prune?filters=${encodeURIComponent('{"label":["a"]}')}`);
    expect(res.json).toEqual({ VolumesDeleted: [], SpaceReclaimed: 0 });
    expect((await call('POST', '/v1.42/volumes/prune')).status).toBe(200);
    expect(backend.calls).toEqual([['prune', { label: { a: true }, all: { true: true } }], ['prune', {}]]);
    expect((await call('POST', '/v1.24/volumes/prune')).json).toEqual({ message: 'POST /volumes/prune requires minimum API version 1.25' });
    expect((await call('POST', '/volumes/prune?filters=%7B')).json).toEqual({ message: 'invalid filter' });
  });
});

describe('PUT /volumes/{name}', () => {
  it('needs API 1.42, then says there is no swarm', async () => {
    expect((await call('PUT', '/v1.41/volumes/v1')).json).toEqual({ message: 'PUT /volumes/{name:.*} requires minimum API version 1.42' });
    expect(await call('PUT', '/volumes/v1?version=1', {})).toMatchObject({
      status: 503,
      json: { message: 'volume update only valid for cluster volumes, but swarm is unavailable' },
    });
  });
});

describe('mount extension', () => {
  it('mounts and unmounts for a reference', async () => {
    expect(await call('POST', '/volumes/a/b/mount', { ID: 'ref1' })).toMatchObject({ status: 200, json: { Mountpoint: '/d/a/b/_data' } });
    expect((await call('POST', '/v1.41/volumes/a/b/unmount', { id: 'ref1' })).status).toBe(204);
    expect(backend.calls).toEqual([['mount', 'a/b', 'ref1'], ['unmount', 'a/b', 'ref1']]);
  });

  it('requires an ID', async () => {
    for (const body of [undefined, {}, { ID: '' }]) {
      const res = await call('POST', '/volumes/v/mount', body);
      expect(res.status).toBe(400);
      expect(res.json).toEqual({ message: 'missing ID: set "ID" to the reference that holds the mount' });
    }
    expect((await call('POST', '/volumes/v/unmount', '{"ID":1}', { 'Content-Type': 'application/json' })).json).toEqual({
      message: 'invalid JSON: json: cannot unmarshal number into Go struct field MountRequest.ID of type string',
    });
    expect(backend.calls).toEqual([]);
  });
});
