import { stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Berthd } from './harness.js';

/** Ports of moby's integration/volume API tests, plus the system endpoints, over raw HTTP. */

let daemon: Berthd;
beforeAll(async () => {
  daemon = await Berthd.start();
});
afterAll(async () => {
  await daemon.cleanup();
});

const filters = (f: Record<string, string[]>): string => encodeURIComponent(JSON.stringify(f));

describe('system endpoints', () => {
  it('answers _ping with GET and HEAD as moby', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await daemon.http({ method, path: '/_ping' });
      expect(res.status).toBe(200);
      expect(res.body).toBe(method === 'GET' ? 'OK' : '');
      expect(res.headers).toMatchObject({
        'api-version': '1.51',
        ostype: 'linux',
        'docker-experimental': 'false',
        'builder-version': '1',
        swarm: 'inactive',
        'cache-control': 'no-cache, no-store, must-revalidate',
        pragma: 'no-cache',
        'content-type': 'text/plain; charset=utf-8',
      });
    }
    expect((await daemon.http({ method: 'HEAD', path: '/v1.41/_ping' })).status).toBe(200);
  });

  it('answers OPTIONS on any path and 404 elsewhere', async () => {
    expect((await daemon.http({ method: 'OPTIONS', path: '/whatever/here' })).status).toBe(200);
    const res = await daemon.http({ path: '/containers' });
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ message: 'page not found' });
  });

  it('reports versions and info', async () => {
    const version = (await daemon.http({ path: '/version' })).json as Record<string, unknown>;
    expect(version).toMatchObject({ ApiVersion: '1.51', MinAPIVersion: '1.24', Os: 'linux', Components: [expect.objectContaining({ Name: 'Engine' })] });
    const info = (await daemon.http({ path: '/v1.50/info' })).json as Record<string, unknown>;
    expect(info).toMatchObject({
      DockerRootDir: daemon.dataRoot,
      OSType: 'linux',
      Plugins: { Volume: ['local'] },
      Swarm: { LocalNodeState: 'inactive' },
      SecurityOptions: [],
    });
  });
});

describe('volumes', () => {
  it('TestVolumesCreateAndList', async () => {
    const created = await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'create-and-list' } });
    expect(created.status).toBe(201);
    const volume = created.json as Record<string, unknown>;
    expect(volume).toEqual({
      CreatedAt: expect.any(String),
      Driver: 'local',
      Labels: null,
      Mountpoint: join(daemon.dataRoot, 'volumes', 'create-and-list', '_data'),
      Name: 'create-and-list',
      Options: null,
      Scope: 'local',
    });
    const list = (await daemon.http({ path: `/volumes?filters=${filters({ name: ['create-and-list'] })}` })).json as { Volumes: unknown[] };
    expect(list).toEqual({ Volumes: [volume], Warnings: null });
  });

  it('TestVolumesInspect', async () => {
    const created = (await daemon.http({ method: 'POST', path: '/volumes/create', body: {} })).json as { Name: string; CreatedAt: string; Mountpoint: string };
    expect(created.Name).toMatch(/^[0-9a-f]{64}$/);
    const inspected = (await daemon.http({ path: `/volumes/${created.Name}` })).json;
    expect(inspected).toEqual(created);
    expect(created.CreatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
    expect(Math.abs(Date.parse(created.CreatedAt) - Date.now())).toBeLessThan(60_000);

    // Touching the data directory does not change CreatedAt.
    const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    await utimes(created.Mountpoint, past, past);
    expect(Math.round((await stat(created.Mountpoint)).mtimeMs)).toBe(past.getTime());
    expect(((await daemon.http({ path: `/volumes/${created.Name}` })).json as { CreatedAt: string }).CreatedAt).toBe(created.CreatedAt);
  });

  it('TestVolumesInvalidJSON', async () => {
    const post = (body: string, contentType = 'application/json') =>
      daemon.http({ method: 'POST', path: '/volumes/create', body, headers: { 'Content-Type': contentType } });
    expect(await post('{"name": "foo"}', 'text/plain')).toMatchObject({
      status: 400,
      json: { message: "unsupported Content-Type header (text/plain): must be 'application/json'" },
    });
    expect(await post('{invalid json')).toMatchObject({
      status: 400,
      json: { message: "invalid JSON: invalid character 'i' looking for beginning of object key string" },
    });
    expect(await post('{"Name": "foo"} {"Name": "bar"}')).toMatchObject({ status: 400, json: { message: 'unexpected content after JSON' } });
    expect((await post('')).status).toBeLessThan(500);
  });

  it('reads field names case-insensitively and never answers bad input with a 500', async () => {
    const res = await daemon.http({ method: 'POST', path: '/volumes/create', body: { name: 'lower-case', LABELS: { a: 'b' }, unknown: [1] } });
    expect(res.json).toMatchObject({ Name: 'lower-case', Labels: { a: 'b' } });
    const bad: Array<[string, string, string | object | undefined]> = [
      ['POST', '/volumes/create', { Name: '../escape' }],
      ['POST', '/volumes/create', { Name: 'x', DriverOpts: { bogus: '1' } }],
      ['POST', '/volumes/create', { Labels: 'x' }],
      ['POST', '/volumes/create', '['.repeat(100_000)],
      ['GET', `/volumes?filters=${filters({ dangling: ['maybe'] })}`, undefined],
      ['GET', '/volumes?filters=%7Bnot-json', undefined],
      ['GET', '/volumes?filters=%zz', undefined],
      ['POST', `/volumes/prune?filters=${filters({ name: ['x'] })}`, undefined],
      ['GET', '/events?since=abc', undefined],
      ['POST', '/volumes/x/mount', {}],
      ['DELETE', '/volumes/..%2F..%2Fetc', undefined],
    ];
    for (const [method, path, body] of bad) {
      const r = await daemon.http({ method, path, ...(body === undefined ? {} : { body }) });
      expect(r.status, `${method} ${path}: ${r.body}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${path}: ${r.body}`).toBeLessThan(500);
    }
    expect((await daemon.http({ path: '/_ping' })).status).toBe(200);
  });

  it('answers missing volumes as moby', async () => {
    expect(await daemon.http({ path: '/volumes/nosuch' })).toMatchObject({ status: 404, json: { message: 'get nosuch: no such volume' } });
    expect(await daemon.http({ method: 'DELETE', path: '/volumes/nosuch' })).toMatchObject({ status: 404, json: { message: 'get nosuch: no such volume' } });
    expect((await daemon.http({ method: 'DELETE', path: '/volumes/nosuch?force=1' })).status).toBe(204);
    expect((await daemon.http({ path: '/volumes/create' })).json).toEqual({ message: 'get create: no such volume' });
  });

  it('makes a volume in use through the mount extension', async () => {
    await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'held' } });
    const mounted = await daemon.http({ method: 'POST', path: '/volumes/held/mount', body: { ID: 'job-1' } });
    expect(mounted).toMatchObject({ status: 200, json: { Mountpoint: join(daemon.dataRoot, 'volumes', 'held', '_data') } });
    for (const query of ['', '?force=1']) {
      expect(await daemon.http({ method: 'DELETE', path: `/volumes/held${query}` })).toMatchObject({
        status: 409,
        json: { message: 'remove held: volume is in use - [job-1]' },
      });
    }
    expect((await daemon.http({ method: 'POST', path: '/volumes/held/unmount', body: { ID: 'job-1' } })).status).toBe(204);
    expect((await daemon.http({ method: 'DELETE', path: '/volumes/held' })).status).toBe(204);
  });
});

describe('prune', () => {
  let prune: Berthd;
  beforeAll(async () => {
    prune = await Berthd.start();
  });
  afterAll(async () => {
    await prune.cleanup();
  });

  const create = async (body: object): Promise<string> =>
    ((await prune.http({ method: 'POST', path: '/volumes/create', body })).json as { Name: string }).Name;
  const names = async (): Promise<string[]> =>
    ((await prune.http({ path: '/volumes' })).json as { Volumes: Array<{ Name: string }> }).Volumes.map((v) => v.Name).sort();

  it('TestVolumePruneAnonymous', async () => {
    const anonymous = await create({});
    const named = await create({ Name: 'test' });
    let report = (await prune.http({ method: 'POST', path: '/volumes/prune' })).json as { VolumesDeleted: string[]; SpaceReclaimed: number };
    expect(report.VolumesDeleted).toEqual([anonymous]);
    expect(await names()).toEqual(['test']);

    const anonymous2 = await create({});
    report = (await prune.http({ method: 'POST', path: `/volumes/prune?filters=${filters({ all: ['true'] })}` })).json as typeof report;
    expect(report.VolumesDeleted.sort()).toEqual([anonymous2, named].sort());

    // An API 1.41 client prunes named volumes too.
    const anonymous3 = await create({});
    const named2 = await create({ Name: 'test-api141' });
    report = (await prune.http({ method: 'POST', path: '/v1.41/volumes/prune' })).json as typeof report;
    expect(report.VolumesDeleted.sort()).toEqual([anonymous3, named2].sort());
    expect(await names()).toEqual([]);
  });

  it('keeps volumes with driver options, and reports an empty prune as []', async () => {
    await create({ Name: 'with-opts', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });
    const report = await prune.http({ method: 'POST', path: `/volumes/prune?filters=${filters({ all: ['1'] })}` });
    expect(report.body).toBe('{"VolumesDeleted":[],"SpaceReclaimed":0}\n');
    expect(await names()).toEqual(['with-opts']);
    expect(await prune.http({ method: 'POST', path: `/volumes/prune?filters=${filters({ all: ['1', '0'] })}` })).toMatchObject({
      status: 400,
      json: { message: "invalid filter 'all=[1 0]': only one value is expected" },
    });
  });
});

describe('events over HTTP', () => {
  it('replays volume events between since and until, filtered', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'ev-a' } });
    await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'ev-b' } });
    await daemon.http({ method: 'DELETE', path: '/volumes/ev-a' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const until = (Date.now() / 1000).toFixed(3);
    const res = await daemon.http({ path: `/events?since=${since}&until=${until}&filters=${filters({ volume: ['ev-a'] })}` });
    expect(res.headers['content-type']).toBe('application/json');
    const events = res.body.trim().split('\n').map((l) => JSON.parse(l) as { Action: string; Actor: unknown; scope: string; time: number; timeNano: number });
    expect(events.map((e) => [e.Action, e.Actor])).toEqual([
      ['create', { ID: 'ev-a', Attributes: { driver: 'local' } }],
      ['destroy', { ID: 'ev-a', Attributes: { driver: 'local' } }],
    ]);
    expect(events[0]).toMatchObject({ Type: 'volume', scope: 'local' });
    expect(res.body).toMatch(/"timeNano":\d{19}\}/);
  });
});
