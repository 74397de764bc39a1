import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientHungUp, type BoundedResponse } from './bounded-http.js';
import { Berthd } from './harness.js';
import { call, diskMatchesApi, snapshotTree } from './state-check.js';

/**
 * Acceptance 5 of issue 2, property-based: random requests built from the real routes (methods,
 * `/v1.NN` prefixes, names, query strings, bodies, content types) never get a 5xx except where
 * moby answers one too, every 4xx is `{"message": string}`, the daemon stays up, and at the end
 * the disk and the API agree.
 *
 * 5xx answers that are moby's own, and so allowed:
 * - `PUT /volumes/{name}` (API >= 1.42): 503 `volume update only valid for cluster volumes, but swarm is unavailable`;
 * - `POST /volumes/create` with a `ClusterVolumeSpec` (API >= 1.42): 503, the node is not a swarm manager;
 * - `POST /volumes/{name}/mount` of a volume whose `type`/`device` mount(8) refuses: 500
 *   `mount <name>: failed to mount local volume: ...` (a driver error; moby's status too).
 * - what would create, change or run a container, image or network: berth's 501
 *   `berthd manages volumes and plugins only: ...` (berth's scope, not a failure).
 * Errors for API versions below 1.24 are plain text, as moby writes them.
 *
 * A tenth of the requests hang up after 0–6 ms, as clients that go away mid-request: the daemon
 * must stay up and the final state consistent whatever it did with them.
 *
 * Driver options are drawn from a fixed set whose mounts always fail (`type=nosuchfs-berth`), so a
 * random request can never mount anything (a random bind mount of `/` under the data-root would be
 * deleted through at cleanup).
 */

const NUM_RUNS = Number(process.env.BERTH_FUZZ_RUNS ?? 600);
/** On a loaded machine fewer runs happen, rather than the test timing out. */
const TIME_LIMIT_MS = Number(process.env.BERTH_FUZZ_TIME_LIMIT_MS ?? 20_000);
const SEED = process.env.BERTH_FUZZ_SEED === undefined ? undefined : Number(process.env.BERTH_FUZZ_SEED);

/** Names the runs share, so that creates, mounts, removes and prunes meet each other. */
const POOL = ['fz-a', 'fz-b', 'fz-c', 'fz.d_e-1'];

let daemon: Berthd;
beforeAll(async () => {
  daemon = await Berthd.start();
  for (const Name of POOL.slice(0, 2)) {
    expect((await call(daemon, { method: 'POST', path: '/volumes/create', body: { Name, Labels: { pool: 'yes' } } })).status).toBe(201);
  }
});
afterAll(async () => {
  await daemon.cleanup();
});

// ---- arbitraries -----------------------------------------------------------------------------

const versionPrefix = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  {
    weight: 4,
    arbitrary: fc.constantFrom('/v1.24', '/v1.25', '/v1.41', '/v1.42', '/v1.44', '/v1.50', '/v1.51'),
  },
  // Too old, too new, odd.
  {
    weight: 2,
    arbitrary: fc.constantFrom('/v1.0', '/v1.12', '/v1.23', '/v1.52', '/v2.0', '/v9.99', '/v1', '/v1.', '/v.1', '/v1.4.2', '/v01.44', '/v1..5'),
  },
  { weight: 1, arbitrary: fc.tuple(fc.nat(3), fc.nat(60)).map(([a, b]) => `/v${a}.${b}`) },
);

const pathish = fc
  .array(fc.constantFrom('..', '.', '', 'a', 'etc', 'passwd', 'x y', '%2F', '%00', 'ø', '_data', 'fz-a', '~'), { minLength: 1, maxLength: 5 })
  .map((parts) => parts.join('/'));

const volumeName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...POOL) },
  { weight: 3, arbitrary: fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,12}$/) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  { weight: 2, arbitrary: pathish },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(255), 'a'.repeat(256), 'x', '', '.', '..', 'vølume', 'a\u0000b', '/abs') },
);

/** How the name is put into the path: as a component, with its slashes kept, raw, or with a broken escape. */
const nameInPath = fc.tuple(volumeName, fc.constantFrom('component', 'slashes', 'raw', 'broken')).map(([name, how]) => {
  const component = encodeURIComponent(name);
  switch (how) {
    case 'slashes':
      return name.split('/').map(encodeURIComponent).join('/');
    case 'raw':
      return /^[\x21-\x7e]*$/.test(name) && !/[?#%]/.test(name) ? name : component;
    case 'broken':
      return `${component}%z`;
    default:
      return component;
  }
});

const filterKey = fc.constantFrom('dangling', 'name', 'driver', 'label', 'label!', 'all', 'foo', 'DANGLING', '');
const filterValue = fc.oneof(fc.constantFrom('true', 'false', '1', '0', 'maybe', 'fz-a', 'pool', 'pool=yes', 'local', '[', '(?', '.*'), fc.string({ maxLength: 6 }));
const filtersJson = fc.oneof(
  // The current form: {"key": {"value": true}}.
  fc.dictionary(filterKey, fc.dictionary(filterValue, fc.oneof(fc.constant(true), fc.constant(false), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 2 }), { maxKeys: 3 }).map((o) => JSON.stringify(o)),
  // The legacy form: {"key": ["value"]}.
  fc.dictionary(filterKey, fc.array(filterValue, { maxLength: 2 }), { maxKeys: 3 }).map((o) => JSON.stringify(o)),
  fc.constantFrom('{', '[]', '"x"', 'null', '{"dangling":"x"}', '{"dangling":[1]}', '', '{}', '{"all":["1","0"]}'),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 10 }),
);
const queryPart = fc.oneof(
  { weight: 4, arbitrary: filtersJson.map((f) => `filters=${encodeURIComponent(f)}`) },
  { weight: 3, arbitrary: fc.constantFrom('', '1', '0', 'true', 'false', 'no', 'none', ' TRUE ', 'x').map((v) => `force=${encodeURIComponent(v)}`) },
  { weight: 1, arbitrary: fc.constantFrom('%zz', 'a;b', 'filters=%7B', '=', '&&', 'force', 'filters', 'x=%', 'version=abc') },
  { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`) },
);
const query = fc.array(queryPart, { maxLength: 3 }).map((parts) => (parts.length === 0 ? '' : `?${parts.join('&')}`));

/** A past `until` (so that the stream ends), optionally a `since` and filters. */
const eventsQuery = fc
  .tuple(fc.integer({ min: 1, max: 3600 }), fc.option(fc.integer({ min: 0, max: 7200 }), { nil: undefined }), fc.option(filtersJson, { nil: undefined }), fc.boolean())
  .map(([ago, since, filters, oddUntil]) => {
    const now = Date.now() / 1000;
    let q = `?until=${oddUntil ? '1' : (now - ago).toFixed(3)}`;
    if (since !== undefined) q += `&since=${(now - since).toFixed(0)}`;
    if (filters !== undefined) q += `&filters=${encodeURIComponent(filters)}`;
    return q;
  });

const route = fc.oneof(
  fc.constant('/volumes'),
  fc.constant('/volumes/create'),
  fc.constant('/volumes/prune'),
  nameInPath.map((n) => `/volumes/${n}`),
  nameInPath.map((n) => `/volumes/${n}/mount`),
  nameInPath.map((n) => `/volumes/${n}/unmount`),
  fc.constantFrom('/_ping', '/info', '/version', '/volumes/', '/volume', '/containers/json', '/', '/volumes//x', '/plugins'),
  fc.constantFrom('/system/df', '/images/json', '/networks', '/containers/x/json', '/images/x/json', '/networks/x', '/containers/x', '/images/prune', '/containers/prune'),
);

/** Driver options that can never mount anything for real (see the header). */
const driverOpts = fc.oneof(
  fc.constantFrom<Record<string, string>>(
    {},
    { size: '0' },
    { size: '1m' },
    { size: 'lots' },
    { type: 'nosuchfs-berth', device: 'nodev-berth' },
    { type: 'nosuchfs-berth', device: 'nodev-berth', o: 'ro' },
    { device: 'nodev-berth' },
    { type: 'tmpfs' },
    { o: 'size=1m' },
    { type: 'cifs', device: '//127.0.0.1:445/share' },
    { bogus: 'x' },
  ),
  fc.dictionary(
    fc.string({ maxLength: 6 }).filter((k) => !['type', 'device', 'o'].includes(k.toLowerCase())),
    fc.string({ maxLength: 6 }),
    { maxKeys: 3 },
  ),
);

const labels = fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 8 }), { maxKeys: 3 }), fc.constant(null));

/** A driver nobody has, whose name could be a plugin's. */
const UNKNOWN_DRIVER = 'nope-berth-fuzz';

const createBody = fc
  .record({
    Name: fc.option(fc.oneof(volumeName, fc.constant('')), { nil: undefined, freq: 8 }),
    // A name that could be a plugin file waits for the plugin until the end of berthd's start-up
    // window (15 s from its start, as dockerd's retries), so it is rare.
    Driver: fc.option(
      fc.oneof(
        { weight: 40, arbitrary: fc.constantFrom('', 'local') },
        { weight: 10, arbitrary: fc.constantFrom('../../x', 'a/b:latest', '/abs', 'a\u0000b') },
        { weight: 1, arbitrary: fc.constant(UNKNOWN_DRIVER) },
      ),
      { nil: undefined, freq: 2 },
    ),
    DriverOpts: fc.option(driverOpts, { nil: undefined, freq: 2 }),
    Labels: fc.option(labels, { nil: undefined, freq: 3 }),
    ClusterVolumeSpec: fc.oneof({ weight: 19, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant({}) }),
  })
  .map((o) => JSON.stringify(o));

/** Keys that would reach the local driver's mount options are renamed, so that random JSON stays harmless. */
function defuse(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(defuse);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [/^(type|device|o)$/i.test(k) ? `x-${k}` : k, defuse(v)]));
  }
  return value;
}

const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: createBody },
  { weight: 2, arbitrary: fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('job-1', 'job-2', '')).map((ID) => JSON.stringify({ ID })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(defuse(v)) ?? 'null') },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '{', '{"Name": "fz-a"} x', '{"Name": "fz-a"}]', 'null', '[]') },
);

const contentType = fc.oneof(
  { weight: 4, arbitrary: fc.constant('application/json') },
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/json; charset', 'APPLICATION/JSON', ';', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded'),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[\x20-\x7e]{0,20}$/) },
);

const method = fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'HEAD');

interface FuzzRequest {
  method: string;
  path: string;
  body: string | Buffer | undefined;
  contentType: string | undefined;
  /** The client goes away after this many ms (a tenth of the requests). */
  hangUpAfterMs: number | undefined;
}

const hangUp = fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 6 }) });

const validPrefix = fc.constantFrom('', '', '/v1.41', '/v1.44', '/v1.51');
const poolPath = fc.constantFrom(...POOL).map(encodeURIComponent);
const refBody = fc.constantFrom('job-1', 'job-2', 'job-3').map((ID) => JSON.stringify({ ID }));

/** Requests a client would plausibly send, so that creates, mounts, removes and prunes do happen. */
const plausible = fc.oneof(
  fc.record({ method: fc.constant('POST'), prefix: validPrefix, route: fc.constant('/volumes/create'), query: fc.constant(''), body: createBody, contentType: fc.constant('application/json') }),
  fc.record({ method: fc.constant('POST'), prefix: validPrefix, route: poolPath.map((n) => `/volumes/${n}/mount`), query: fc.constant(''), body: refBody, contentType: fc.constant('application/json') }),
  fc.record({ method: fc.constant('POST'), prefix: validPrefix, route: poolPath.map((n) => `/volumes/${n}/unmount`), query: fc.constant(''), body: refBody, contentType: fc.constant('application/json') }),
  fc.record({ method: fc.constant('DELETE'), prefix: validPrefix, route: poolPath.map((n) => `/volumes/${n}`), query, body: fc.constant(undefined), contentType: fc.constant(undefined) }),
  fc.record({ method: fc.constant('GET'), prefix: validPrefix, route: fc.oneof(fc.constant('/volumes'), poolPath.map((n) => `/volumes/${n}`)), query, body: fc.constant(undefined), contentType: fc.constant(undefined) }),
  fc.record({ method: fc.constant('POST'), prefix: validPrefix, route: fc.constant('/volumes/prune'), query, body: fc.constant(undefined), contentType: fc.constant(undefined) }),
);

const shaped = fc.oneof(
  { weight: 6, arbitrary: fc.record({ method, prefix: versionPrefix, route, query, body, contentType }) },
  { weight: 4, arbitrary: plausible },
  { weight: 1, arbitrary: fc.record({ method: fc.constant('GET'), prefix: versionPrefix, route: fc.constant('/events'), query: eventsQuery, body: fc.constant(undefined), contentType: fc.constant(undefined) }) },
)
const request: fc.Arbitrary<FuzzRequest> = fc
  .tuple(shaped, hangUp)
  .map(([r, hangUpAfterMs]) => ({ method: r.method, path: `${r.prefix}${r.route}${r.query}`, body: r.body, contentType: r.contentType, hangUpAfterMs }));

// ---- the property --------------------------------------------------------------------------

/** The API version a path asks for; `undefined` without a prefix. */
function pathVersion(path: string): string | undefined {
  return /^\/v([0-9.]+)\//.exec(path)?.[1];
}

function below124(version: string | undefined): boolean {
  if (version === undefined) return false;
  const [major = 0, minor = 0] = version.split('.').map((p) => Number(p === '' ? 0 : p));
  return major < 1 || (major === 1 && minor < 24);
}

/** moby's own 5xx answers (see the header); anything else 5xx is a bug. */
function allowedServerError(req: FuzzRequest, res: BoundedResponse): string | undefined {
  const message = (res.json as { message?: unknown } | undefined)?.message;
  const route = req.path.replace(/^\/v[0-9.]+(?=\/)/, '').replace(/\?.*$/, '');
  if (res.status === 503 && req.method === 'PUT' && message === 'volume update only valid for cluster volumes, but swarm is unavailable') return 'PUT 503 no swarm';
  if (res.status === 501 && typeof message === 'string' && message.startsWith('berthd manages volumes and plugins only: ')) return "501 outside berth's scope";
  if (res.status === 503 && route === '/volumes/create' && typeof message === 'string' && message.startsWith('This node is not a swarm manager.')) return 'ClusterVolumeSpec 503';
  if (res.status === 500 && req.method === 'POST' && route.endsWith('/mount') && typeof message === 'string' && /^mount .+: failed to mount local volume: /s.test(message)) {
    return 'mount of an unmountable volume 500';
  }
  return undefined;
}

/** Problems with one answer; empty when it is fine. */
function check(req: FuzzRequest, res: BoundedResponse): string[] {
  const problems: string[] = [];
  if (res.status >= 500 && allowedServerError(req, res) === undefined) problems.push(`status ${res.status}`);
  if (res.status < 100 || res.status >= 600) problems.push(`status ${res.status}`);
  if (res.status >= 400 && res.status < 500 && req.method !== 'HEAD') {
    if (below124(pathVersion(req.path)) && res.json === undefined) {
      // moby answers clients older than 1.24 in plain text.
      if (res.body.trim() === '') problems.push('an empty plain-text error');
    } else {
      const json = res.json as Record<string, unknown> | undefined;
      const ok = json !== null && typeof json === 'object' && !Array.isArray(json) && Object.keys(json).length === 1 && typeof json.message === 'string';
      if (!ok) problems.push(`4xx body is not {"message": string}`);
      if (res.headers['content-type'] !== 'application/json') problems.push(`4xx content type ${String(res.headers['content-type'])}`);
    }
  }
  return problems;
}

describe('random requests (fast-check)', () => {
  it(`up to ${NUM_RUNS} random requests: no unexpected 5xx, 4xx as {"message"}, the daemon stays up and consistent`, async () => {
    const seen = new Map<string, number>();
    const count = (key: string): void => void seen.set(key, (seen.get(key) ?? 0) + 1);
    let first: string | undefined;
    let slowest = { ms: 0, req: '' };

    const property = fc.asyncProperty(request, async (req) => {
      const describe = (extra: string): string => `${req.method} ${req.path} content-type=${JSON.stringify(req.contentType)} body=${JSON.stringify(Buffer.isBuffer(req.body) ? req.body.toString('hex') : req.body)}: ${extra}`;
      let res: BoundedResponse;
      const t0 = Date.now();
      try {
        res = await call(daemon, {
          method: req.method,
          path: req.path,
          ...(req.body === undefined ? {} : { body: req.body }),
          headers: req.contentType === undefined ? {} : { 'Content-Type': req.contentType },
          // An unknown plugin is waited for during the daemon's first 15 s (see `createBody`).
          timeoutMs: typeof req.body === 'string' && req.body.includes(UNKNOWN_DRIVER) ? 20_000 : 5_000,
          ...(req.hangUpAfterMs === undefined ? {} : { hangUpAfterMs: req.hangUpAfterMs }),
        });
      } catch (err) {
        if (err instanceof ClientHungUp) {
          // Whatever the daemon did with it, it must still be up (checked below) and consistent (at the end).
          count('client hung up');
          const ping = await call(daemon, { path: '/_ping', timeoutMs: 2_000 }).catch((e: unknown) => ({ status: String(e) }));
          if (ping.status === 200) return;
          first ??= describe(`_ping after the client hung up answered ${ping.status}\n${daemon.stderr.slice(-2000)}`);
          throw new Error(first);
        }
        first ??= describe(`no answer: ${String(err)}; daemon ${daemon.running ? 'running' : 'exited'}\n${daemon.stderr.slice(-2000)}`);
        throw err;
      }
      if (Date.now() - t0 > slowest.ms) slowest = { ms: Date.now() - t0, req: describe(`${res.status} ${res.body.slice(0, 200)}`) };
      count(`${res.status}`);
      const allowed = res.status >= 500 ? allowedServerError(req, res) : undefined;
      if (allowed !== undefined) count(`allowed: ${allowed}`);
      const problems = check(req, res);
      const ping = await call(daemon, { path: '/_ping', timeoutMs: 2_000 }).catch((err: unknown) => ({ status: String(err) }));
      if (ping.status !== 200) problems.push(`_ping afterwards answered ${ping.status}; daemon ${daemon.running ? 'running' : 'exited'}\n${daemon.stderr.slice(-2000)}`);
      if (problems.length > 0) {
        const text = describe(`${problems.join('; ')} — answered ${res.status} ${res.body.slice(0, 500)}`);
        first ??= text;
        throw new Error(text);
      }
    });

    const outside = await snapshotTree(daemon.dir, join(daemon.dataRoot, 'volumes'));
    const started = Date.now();
    // No shrinking: the daemon keeps state between runs, so a shrunk case would not mean much;
    // the failing request itself is reported, with the seed to replay the sequence.
    const details = await fc.check(property, {
      numRuns: NUM_RUNS,
      endOnFailure: true,
      interruptAfterTimeLimit: TIME_LIMIT_MS,
      markInterruptAsFailure: false,
      ...(SEED === undefined ? {} : { seed: SEED }),
    });
    const summary = [...seen].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}: ${n}`).join(', ');
    console.info(`fuzz: ${details.numRuns} runs${details.interrupted ? ` (cut short at ${TIME_LIMIT_MS} ms)` : ''} in ${Date.now() - started} ms, seed ${details.seed}; answers ${summary}; slowest ${slowest.ms} ms: ${slowest.req}`);
    expect(details.failed, `seed ${details.seed} (replay with BERTH_FUZZ_SEED=${details.seed})\n${first ?? ''}\n${fc.defaultReportMessage(details) ?? ''}`).toBe(false);

    // The state the runs left: the disk and the API agree, and every listed volume can be inspected
    // (after a moment for what clients hung up on to finish).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { problems } = await diskMatchesApi(daemon);
    expect(problems, `seed ${details.seed}`).toEqual([]);
    // Nothing was created or deleted beside the volumes root.
    expect(await snapshotTree(daemon.dir, join(daemon.dataRoot, 'volumes')), `seed ${details.seed}`).toEqual(outside);
    expect(daemon.running).toBe(true);
  }, 60_000);
});
