import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Berthd } from './harness.js';

/**
 * The rest of the Engine API, walked route by route from moby's routers (`daemon/server/router/*`:
 * checkpoint, container, image, build, session, swarm, distribution, network, debug, grpc), each on
 * the bare path and under `/v1.51` (and where a route has a minimum version, below it): berth has no
 * containers, images, networks, builds or swarm, so lists are empty, lookups are moby's 404s,
 * prunes find nothing, swarm reads are moby's answer on a node outside a swarm, and anything that
 * would create, change or run something is berth's 501.
 */

let daemon: Berthd;
beforeAll(async () => {
  daemon = await Berthd.start();
});
afterAll(async () => {
  await daemon.cleanup();
});

type Expect = readonly [status: number, body: unknown];

const unsupported = (method: string, path: string): Expect => [501, { message: `berthd manages volumes and plugins only: ${method} ${path.split('?')[0]} is not supported` }];
const noSwarm: Expect = [503, { message: 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.' }];
const empty: Expect = [200, []];
const notFound = (message: string): Expect => [404, { message }];

/** [method, path as sent, moby's route pattern, minimum API version, answer]. */
type Row = readonly [method: string, path: string, pattern: string, minVersion: string | undefined, answer: Expect];

const row = (method: string, path: string, pattern: string, answer: Expect | 'unsupported', minVersion?: string): Row => [
  method,
  path,
  pattern,
  minVersion,
  answer === 'unsupported' ? unsupported(method, path) : answer,
];

const TABLE: readonly Row[] = [
  // checkpoint (experimental in moby)
  row('GET', '/containers/c1/checkpoints', '/containers/{name:.*}/checkpoints', 'unsupported'),
  row('POST', '/containers/c1/checkpoints', '/containers/{name:.*}/checkpoints', 'unsupported'),
  row('DELETE', '/containers/c1/checkpoints/cp1', '/containers/{name}/checkpoints/{checkpoint}', 'unsupported'),
  // container
  row('HEAD', '/containers/c1/archive?path=/etc', '/containers/{name:.*}/archive', [404, undefined]),
  row('GET', '/containers/json', '/containers/json', empty),
  row('GET', '/containers/c1/export', '/containers/{name:.*}/export', notFound('No such container: c1')),
  row('GET', '/containers/c1/changes', '/containers/{name:.*}/changes', notFound('No such container: c1')),
  row('GET', '/containers/c1/json', '/containers/{name:.*}/json', notFound('No such container: c1')),
  row('GET', '/containers/c1/top', '/containers/{name:.*}/top', notFound('No such container: c1')),
  row('GET', '/containers/c1/logs?stdout=1', '/containers/{name:.*}/logs', notFound('No such container: c1')),
  row('GET', '/containers/c1/stats', '/containers/{name:.*}/stats', notFound('No such container: c1')),
  row('GET', '/containers/c1/attach/ws', '/containers/{name:.*}/attach/ws', notFound('No such container: c1')),
  row('GET', '/exec/e1/json', '/exec/{id:.*}/json', notFound('No such exec instance: e1')),
  row('GET', '/containers/c1/archive?path=/etc', '/containers/{name:.*}/archive', notFound('No such container: c1')),
  row('POST', '/containers/create', '/containers/create', 'unsupported'),
  ...['kill', 'pause', 'unpause', 'restart', 'start', 'stop', 'wait', 'resize', 'attach', 'exec', 'rename', 'update'].map((action) =>
    row('POST', `/containers/c1/${action}`, `/containers/{name:.*}/${action}`, 'unsupported'),
  ),
  row('POST', '/exec/e1/start', '/exec/{name:.*}/start', 'unsupported'),
  row('POST', '/exec/e1/resize', '/exec/{name:.*}/resize', 'unsupported'),
  row('POST', '/containers/prune', '/containers/prune', [200, { ContainersDeleted: null, SpaceReclaimed: 0 }], '1.25'),
  row('POST', '/commit?container=c1', '/commit', 'unsupported'),
  row('PUT', '/containers/c1/archive?path=/', '/containers/{name:.*}/archive', 'unsupported'),
  row('DELETE', '/containers/c1', '/containers/{name:.*}', 'unsupported'),
  // image
  row('GET', '/images/json', '/images/json', empty),
  row('GET', '/images/search?term=busybox', '/images/search', 'unsupported'),
  row('GET', '/images/get?names=busybox', '/images/get', notFound('No such image: busybox:latest')),
  row('GET', '/images/busybox/get', '/images/{name:.*}/get', notFound('No such image: busybox:latest')),
  row('GET', '/images/busybox/history', '/images/{name:.*}/history', notFound('No such image: busybox:latest')),
  row('GET', '/images/docker.io/library/busybox:1.36/json', '/images/{name:.*}/json', notFound('No such image: busybox:1.36')),
  row('GET', '/images/busybox/attestations', '/images/{name:.*}/attestations', [400, { message: 'GET /images/{name:.*}/attestations requires minimum API version 1.55' }]),
  row('POST', '/images/load', '/images/load', 'unsupported'),
  row('POST', '/images/create?fromImage=busybox&tag=latest', '/images/create', 'unsupported'),
  row('POST', '/images/busybox/push', '/images/{name:.*}/push', 'unsupported'),
  row('POST', '/images/busybox/tag?repo=x', '/images/{name:.*}/tag', 'unsupported'),
  row('POST', '/images/prune', '/images/prune', [200, { ImagesDeleted: null, SpaceReclaimed: 0 }], '1.25'),
  row('DELETE', '/images/busybox', '/images/{name:.*}', 'unsupported'),
  // build and session
  row('POST', '/build', '/build', 'unsupported'),
  row('POST', '/build/prune', '/build/prune', [200, { CachesDeleted: null, SpaceReclaimed: 0 }], '1.31'),
  row('POST', '/build/cancel?id=b1', '/build/cancel', 'unsupported'),
  row('POST', '/session', '/session', 'unsupported'),
  // swarm
  row('POST', '/swarm/init', '/swarm/init', 'unsupported'),
  row('POST', '/swarm/join', '/swarm/join', 'unsupported'),
  row('POST', '/swarm/leave', '/swarm/leave', 'unsupported'),
  row('GET', '/swarm', '/swarm', noSwarm),
  row('GET', '/swarm/unlockkey', '/swarm/unlockkey', noSwarm),
  row('POST', '/swarm/update', '/swarm/update', 'unsupported'),
  row('POST', '/swarm/unlock', '/swarm/unlock', 'unsupported'),
  row('GET', '/services', '/services', noSwarm),
  row('GET', '/services/s1', '/services/{id}', noSwarm),
  row('POST', '/services/create', '/services/create', 'unsupported'),
  row('POST', '/services/s1/update', '/services/{id}/update', 'unsupported'),
  row('DELETE', '/services/s1', '/services/{id}', 'unsupported'),
  row('GET', '/services/s1/logs', '/services/{id}/logs', noSwarm),
  row('GET', '/nodes', '/nodes', noSwarm),
  row('GET', '/nodes/n1', '/nodes/{id}', noSwarm),
  row('DELETE', '/nodes/n1', '/nodes/{id}', 'unsupported'),
  row('POST', '/nodes/n1/update', '/nodes/{id}/update', 'unsupported'),
  row('GET', '/tasks', '/tasks', noSwarm),
  row('GET', '/tasks/t1', '/tasks/{id}', noSwarm),
  row('GET', '/tasks/t1/logs', '/tasks/{id}/logs', noSwarm),
  row('GET', '/secrets', '/secrets', noSwarm, '1.25'),
  row('POST', '/secrets/create', '/secrets/create', 'unsupported', '1.25'),
  row('DELETE', '/secrets/s1', '/secrets/{id}', 'unsupported', '1.25'),
  row('GET', '/secrets/s1', '/secrets/{id}', noSwarm, '1.25'),
  row('POST', '/secrets/s1/update', '/secrets/{id}/update', 'unsupported', '1.25'),
  row('GET', '/configs', '/configs', noSwarm, '1.30'),
  row('POST', '/configs/create', '/configs/create', 'unsupported', '1.30'),
  row('DELETE', '/configs/c1', '/configs/{id}', 'unsupported', '1.30'),
  row('GET', '/configs/c1', '/configs/{id}', noSwarm, '1.30'),
  row('POST', '/configs/c1/update', '/configs/{id}/update', 'unsupported', '1.30'),
  // distribution
  row('GET', '/distribution/busybox/json', '/distribution/{name:.*}/json', 'unsupported', '1.30'),
  // network
  row('GET', '/networks', '/networks', empty),
  row('GET', '/networks/', '/networks/', empty),
  row('GET', '/networks/bridge', '/networks/{id:.+}', notFound('network bridge not found')),
  row('POST', '/networks/create', '/networks/create', 'unsupported'),
  row('POST', '/networks/n1/connect', '/networks/{id:.*}/connect', 'unsupported'),
  row('POST', '/networks/n1/disconnect', '/networks/{id:.*}/disconnect', 'unsupported'),
  row('POST', '/networks/prune', '/networks/prune', [200, { NetworksDeleted: null }], '1.25'),
  row('DELETE', '/networks/n1', '/networks/{id:.*}', 'unsupported'),
  // debug and grpc
  ...['/debug/vars', '/debug/pprof/', '/debug/pprof/cmdline', '/debug/pprof/profile', '/debug/pprof/symbol', '/debug/pprof/trace', '/debug/pprof/heap'].map((path) =>
    row('GET', path, path === '/debug/pprof/heap' ? '/debug/pprof/{name}' : path, 'unsupported'),
  ),
  row('POST', '/grpc', '/grpc', 'unsupported'),
];

const versioned = (path: string, version: string): string => `/v${version}${path}`;

async function expectAnswer(method: string, path: string, [status, body]: Expect): Promise<void> {
  const res = await daemon.http({ method, path });
  expect([method, path, res.status, method === 'HEAD' ? undefined : res.json]).toEqual([method, path, status, body]);
  if (status !== 404 || method === 'HEAD' || (body as { message?: string }).message !== 'page not found') {
    // A route's answer, not the not-found handler's: the version headers are set.
    expect(res.headers['api-version'], `${method} ${path}`).toBe('1.51');
  }
}

describe("moby's routers outside berth's scope", () => {
  it('answer every route, bare and versioned, with what is true of a daemon without containers, images, networks or swarm', async () => {
    for (const [method, path, , , answer] of TABLE) {
      await expectAnswer(method, path, answer);
      await expectAnswer(method, versioned(path, '1.51'), answer);
    }
  });

  it('keep the minimum API version of their route, with moby’s text', async () => {
    for (const [method, path, pattern, minVersion] of TABLE) {
      if (minVersion === undefined || minVersion === '1.55') continue;
      const below = (Number(minVersion) - 0.01).toFixed(2);
      await expectAnswer(method, versioned(path, below), [400, { message: `${method} ${pattern} requires minimum API version ${minVersion}` }]);
    }
  });

  it('name the request in the 501 as the client sent it, and leave unknown paths and methods to page not found', async () => {
    expect((await daemon.http({ method: 'POST', path: '/v1.41/containers/my%20app/start?detachKeys=x' })).json).toEqual({
      message: 'berthd manages volumes and plugins only: POST /containers/my%20app/start is not supported',
    });
    for (const [method, path] of [
      ['GET', '/containers'],
      ['GET', '/images'],
      ['GET', '/v1.51/containers'],
      ['PATCH', '/containers/c1'],
      ['HEAD', '/containers/json'],
      ['GET', '/build'],
      ['PUT', '/networks/n1'],
      ['GET', '/system'],
      ['POST', '/system/df'],
      ['GET', '/v1.51/nothing/here'],
    ] as const) {
      const res = await daemon.http({ method, path });
      expect([method, path, res.status, method === 'HEAD' ? undefined : res.json]).toEqual([method, path, 404, method === 'HEAD' ? undefined : { message: 'page not found' }]);
    }
  });

  it('check the container list query as moby does before finding nothing', async () => {
    const list = (query: string) => daemon.http({ path: `/containers/json?${query}` });
    const f = (filters: Record<string, string[]>): string => `filters=${encodeURIComponent(JSON.stringify(filters))}`;
    const cases: Array<[string, number, unknown]> = [
      ['all=1&limit=-1&size=0&trunc_cmd=0&' + f({ label: ['com.docker.compose.project=p', 'com.docker.compose.oneoff=False'] }), 200, []],
      [f({ status: ['running', 'exited'], health: ['none'], 'is-task': ['true'], exited: ['0', '137'], publish: ['80/tcp', '8000-8080'] }), 200, []],
      ['limit=x', 400, { message: 'strconv.Atoi: parsing "x": invalid syntax' }],
      ['filters=%7B', 400, { message: 'invalid filter' }],
      [f({ colour: ['red'] }), 400, { message: "invalid filter 'colour'" }],
      [f({ exited: ['x'] }), 400, { message: `invalid filter 'exited=x': strconv.Atoi: parsing "x": invalid syntax` }],
      [f({ status: ['sleeping'] }), 400, { message: "invalid filter 'status=sleeping': invalid value for state (sleeping): must be one of created, running, paused, restarting, removing, exited, dead" }],
      [f({ health: ['ok'] }), 400, { message: "invalid filter 'health=ok': invalid value for health (ok): must be one of none, starting, healthy, unhealthy" }],
      [f({ 'is-task': ['maybe'] }), 400, { message: "invalid filter 'is-task=[maybe]'" }],
      [f({ before: ['web'] }), 404, { message: 'No such container: web' }],
      [f({ publish: ['80:80'] }), 400, { message: "filter for 'publish' should not contain ':': 80:80" }],
      [f({ expose: ['x/tcp'] }), 400, { message: "error while looking up for expose x/tcp: invalid start port 'x': invalid syntax" }],
      [f({ expose: ['70000'] }), 400, { message: "error while looking up for expose 70000: invalid start port '70000': value out of range" }],
      [f({ publish: ['90-80'] }), 400, { message: 'error while looking up for publish 90-80: invalid port range: 90-80' }],
      ['a=%zz', 400, { message: 'invalid URL escape "%zz"' }],
    ];
    for (const [query, status, body] of cases) {
      const res = await list(query);
      expect([query, res.status, res.json]).toEqual([query, status, body]);
    }
    expect((await daemon.http({ path: '/containers//json' })).json).toEqual({ message: 'invalid name or ID supplied: ""' });
    expect((await daemon.http({ path: '/containers/c1/logs' })).json).toEqual({ message: "must specify at least one of 'stdout' or 'stderr'" });
    expect((await daemon.http({ path: '/containers/c1/archive' })).json).toEqual({ message: 'bad parameter: path cannot be empty' });
  });

  it('check the image and network queries as moby does', async () => {
    const cases: Array<[string, number, unknown]> = [
      ['/images/json?all=1&' + `filters=${encodeURIComponent('{"dangling":{"true":true},"label":{"a=b":true}}')}`, 200, []],
      [`/images/json?filters=${encodeURIComponent('{"dangling":["maybe"]}')}`, 400, { message: "invalid filter 'dangling=[maybe]'" }],
      [`/images/json?filters=${encodeURIComponent('{"size":["1"]}')}`, 400, { message: "invalid filter 'size'" }],
      [`/images/json?filters=${encodeURIComponent('{"since":["alpine"]}')}`, 404, { message: 'No such image: alpine:latest' }],
      [`/images/${'a'.repeat(64)}/json`, 404, { message: `No such image: sha256:${'a'.repeat(64)}` }],
      [`/images/sha256:${'b'.repeat(64)}/json`, 404, { message: `No such image: sha256:${'b'.repeat(64)}` }],
      ['/images/Busybox/json', 400, { message: 'invalid reference format: repository name (library/Busybox) must be lowercase' }],
      ['/images/localhost:5000/team/app@sha256:' + 'c'.repeat(64) + '/json', 404, { message: `No such image: localhost:5000/team/app@sha256:${'c'.repeat(64)}` }],
      [`/networks?filters=${encodeURIComponent('{"type":["custom"],"driver":["bridge"],"dangling":["true"]}')}`, 200, []],
      [`/networks?filters=${encodeURIComponent('{"type":["weird"]}')}`, 400, { message: "invalid filter: 'type'='weird'" }],
      [`/networks?filters=${encodeURIComponent('{"dangling":["true","false"]}')}`, 400, { message: 'got more than one value for filter key "dangling"' }],
      [`/networks?filters=${encodeURIComponent('{"dangling":["x"]}')}`, 400, { message: `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")` }],
      [`/networks?filters=${encodeURIComponent('{"until":["1h"]}')}`, 400, { message: "invalid filter 'until'" }],
      ['/networks/n1?verbose=maybe', 400, { message: 'invalid value for verbose: maybe: strconv.ParseBool: parsing "maybe": invalid syntax' }],
      ['/networks/n1?verbose=true&scope=local', 404, { message: 'network n1 not found' }],
    ];
    for (const [path, status, body] of cases) {
      const res = await daemon.http({ path });
      expect([path, res.status, res.json]).toEqual([path, status, body]);
    }
    const prune = async (path: string, filters: string) => daemon.http({ method: 'POST', path: `${path}?filters=${encodeURIComponent(filters)}` });
    expect((await prune('/containers/prune', '{"until":["24h"],"label!":["keep"]}')).json).toEqual({ ContainersDeleted: null, SpaceReclaimed: 0 });
    expect((await prune('/containers/prune', '{"dangling":["true"]}')).json).toEqual({ message: "invalid filter 'dangling'" });
    expect((await prune('/images/prune', '{"reference":["x"]}')).json).toEqual({ message: "invalid filter 'reference'" });
    expect((await prune('/networks/prune', '{"until":["1h","2h"]}')).json).toEqual({ message: 'more than one until filter specified' });
    expect((await daemon.http({ method: 'POST', path: '/build/prune?reserved-space=lots' })).json).toEqual({
      message: 'reserved-space is in bytes and expects an integer, got lots: strconv.Atoi: parsing "lots": invalid syntax',
    });
    expect((await daemon.http({ method: 'POST', path: '/v1.47/build/prune?keep-storage=1024&reserved-space=lots' })).status).toBe(200);
  });
});

describe('PUT /volumes/{name}', () => {
  it('answers as moby on a node that is not a swarm manager: 503 from API 1.42 and on bare paths, 400 below', async () => {
    const unavailable = { message: 'volume update only valid for cluster volumes, but swarm is unavailable' };
    for (const path of ['/volumes/v1?version=1', '/v1.42/volumes/v1?version=1', '/v1.51/volumes/v1']) {
      const res = await daemon.http({ method: 'PUT', path, body: {} });
      expect([path, res.status, res.json]).toEqual([path, 503, unavailable]);
    }
    const old = await daemon.http({ method: 'PUT', path: '/v1.41/volumes/v1?version=1', body: {} });
    expect([old.status, old.json]).toEqual([400, { message: 'PUT /volumes/{name:.*} requires minimum API version 1.42' }]);
  });
});
