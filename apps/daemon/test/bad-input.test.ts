import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partialRequest, rawRequest, type BoundedRequest } from './bounded-http.js';
import { Berthd } from './harness.js';
import { call, diskMatchesApi, listVolumes, snapshotTree } from './state-check.js';

/**
 * Acceptance 5 of issue 2: bad input gets moby's 4xx and text, never a 500, never a crash (the
 * daemon answers `_ping` after every case) and never a path outside the data-root: names, URL
 * paths, bodies, content types, filters and a corrupt `opts.json`.
 */

let daemon: Berthd;
/** Unique per run: names built from it must never turn up on disk outside the volumes root. */
const token = `escape-${randomBytes(4).toString('hex')}`;
/** A directory beside the data-root that looks like a volume; no request may touch it. */
let sentinel: string;
let before: string[];

beforeAll(async () => {
  daemon = await Berthd.start();
  sentinel = join(daemon.dir, `outside-${token}`);
  await mkdir(join(sentinel, '_data'), { recursive: true });
  await writeFile(join(sentinel, '_data', 'keep'), 'keep');
  await writeFile(join(sentinel, 'opts.json'), '{}');
  // A volume whose data must survive every hostile path.
  expect((await call(daemon, { method: 'POST', path: '/volumes/create', body: { Name: 'keeper' } })).status).toBe(201);
  await writeFile(join(daemon.dataRoot, 'volumes', 'keeper', '_data', 'keep'), 'keep');
  before = await snapshotTree(daemon.dir, join(daemon.dataRoot, 'volumes'));
});

afterAll(async () => {
  await daemon.cleanup();
});

interface Case {
  name: string;
  req: BoundedRequest;
}
interface Answer {
  name: string;
  status: number;
  message: unknown;
}

/** Sends each case, checks the daemon is still up after it, and returns what it answered. */
async function answers(cases: Case[]): Promise<Answer[]> {
  const out: Answer[] = [];
  for (const c of cases) {
    const res = await call(daemon, { timeoutMs: 5_000, ...c.req });
    const json = res.json as { message?: unknown } | undefined;
    out.push({ name: c.name, status: res.status, message: res.status === 201 || res.status === 204 ? undefined : (json?.message ?? res.body) });
    const ping = await call(daemon, { path: '/_ping', timeoutMs: 2_000 });
    expect(ping.status, `the daemon must still answer after ${c.name}`).toBe(200);
  }
  return out;
}

const create = (body: unknown, headers?: Record<string, string>): BoundedRequest => ({
  method: 'POST',
  path: '/volumes/create',
  body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  headers: { 'Content-Type': 'application/json', ...headers },
});

const NAME_RULE = 'includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path';

describe('volume names', () => {
  it('refuses names with path syntax, NUL, unicode, and too short or too long, with moby\'s texts', async () => {
    const long = 'a'.repeat(300);
    const cases: Array<[string, string]> = [
      ['..', `create ..: ".." ${NAME_RULE}`],
      ['../x', `create ../x: "../x" ${NAME_RULE}`],
      [`../../${token}`, `create ../../${token}: "../../${token}" ${NAME_RULE}`],
      [`../../../../../../../tmp/${token}`, `create ../../../../../../../tmp/${token}: "../../../../../../../tmp/${token}" ${NAME_RULE}`],
      ['/abs', `create /abs: "/abs" ${NAME_RULE}`],
      [`/tmp/${token}`, `create /tmp/${token}: "/tmp/${token}" ${NAME_RULE}`],
      ['a/b', `create a/b: "a/b" ${NAME_RULE}`],
      ['a\u0000b', `create a\u0000b: "a\\x00b" ${NAME_RULE}`],
      ['ab\n', `create ab\n: "ab\\n" ${NAME_RULE}`],
      ['vølume', `create vølume: "vølume" ${NAME_RULE}`],
      ['.hidden', `create .hidden: ".hidden" ${NAME_RULE}`],
      ['-dash', `create -dash: "-dash" ${NAME_RULE}`],
      ['a b', `create a b: "a b" ${NAME_RULE}`],
      ['x', 'create x: volume name is too short, names should be at least two alphanumeric characters'],
      ['.', 'create .: volume name is too short, names should be at least two alphanumeric characters'],
      [long, `create ${long}: volume name is too long, names should be at most 255 characters`],
      ['a'.repeat(256), `create ${'a'.repeat(256)}: volume name is too long, names should be at most 255 characters`],
    ];
    const got = await answers(cases.map(([name]) => ({ name: JSON.stringify(name), req: create({ Name: name }) })));
    expect(got).toEqual(cases.map(([name, message]) => ({ name: JSON.stringify(name), status: 400, message })));

    // The longest valid name works, and goes away again.
    const longest = 'a'.repeat(255);
    expect((await call(daemon, create({ Name: longest }))).status).toBe(201);
    expect((await call(daemon, { method: 'DELETE', path: `/volumes/${longest}` })).status).toBe(204);
  });

  it('treats names in URL paths as names, never as paths', async () => {
    const missing = (name: string): string => `get ${name}: no such volume`;
    const cases: Array<[string, string, number, string | undefined]> = [
      ['GET', `/volumes/..%2F..%2Foutside-${token}`, 404, missing(`../../outside-${token}`)],
      ['GET', `/volumes/../../outside-${token}`, 404, missing(`../../outside-${token}`)],
      ['GET', '/volumes/..', 404, missing('..')],
      ['GET', '/volumes/.', 404, missing('.')],
      ['GET', '/volumes/a%00b', 404, missing('a\u0000b')],
      ['GET', '/volumes/%2Fetc%2Fpasswd', 404, missing('/etc/passwd')],
      ['GET', '/volumes/v%C3%B8lume', 404, missing('vølume')],
      ['GET', '/volumes/keeper%2F_data', 404, missing('keeper/_data')],
      ['GET', `/volumes/${'a'.repeat(300)}`, 404, missing('a'.repeat(300))],
      ['GET', '/volumes/%zz', 400, 'invalid URL escape "%zz"'],
      ['DELETE', `/volumes/..%2F..%2Foutside-${token}`, 404, missing(`../../outside-${token}`)],
      ['DELETE', `/volumes/..%2F..%2Foutside-${token}?force=1`, 204, undefined],
      ['DELETE', `/volumes/../../outside-${token}?force=true`, 204, undefined],
      ['DELETE', '/volumes/..?force=1', 204, undefined],
      ['DELETE', '/volumes/.?force=1', 204, undefined],
      ['DELETE', '/volumes/..%2Fvolumes?force=1', 204, undefined],
      ['DELETE', '/volumes/keeper%2F_data?force=1', 204, undefined],
      ['DELETE', '/volumes/keeper%2F..?force=1', 204, undefined],
      ['DELETE', '/volumes/a%00b', 404, missing('a\u0000b')],
      ['DELETE', '/volumes/%2Ftmp?force=1', 204, undefined],
      ['POST', `/volumes/..%2F..%2Foutside-${token}/mount`, 404, missing(`../../outside-${token}`)],
      ['POST', `/volumes/..%2F..%2Foutside-${token}/unmount`, 404, missing(`../../outside-${token}`)],
    ];
    const got = await answers(
      cases.map(([method, path]) => ({ name: `${method} ${path}`, req: { method, path, ...(method === 'POST' ? { body: { ID: 'intruder' } } : {}) } })),
    );
    expect(got).toEqual(cases.map(([method, path, status, message]) => ({ name: `${method} ${path}`, status, message })));
    expect(await readFile(join(sentinel, '_data', 'keep'), 'utf8')).toBe('keep');
    expect(await readFile(join(daemon.dataRoot, 'volumes', 'keeper', '_data', 'keep'), 'utf8')).toBe('keep');
  });

  it('answers request lines Node\'s client would not send without a 500 or a crash', async () => {
    const lines = [
      'GET /volumes/v\u00f8lume HTTP/1.1', // raw UTF-8 in the path
      'GET /volumes/a\u0000b HTTP/1.1', // a literal NUL
      'DELETE /volumes/../../../../tmp HTTP/1.1',
      'GET /volumes/%ff%fe HTTP/1.1', // not UTF-8 once decoded
      `GET /${'v'.repeat(20_000)} HTTP/1.1`,
    ];
    for (const line of lines) {
      const res = await rawRequest(daemon.socket, Buffer.from(`${line}\r\nHost: berth\r\nConnection: close\r\n\r\n`, 'utf8'));
      expect(res.status, `${JSON.stringify(line.slice(0, 60))}: ${res.raw.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
      expect(res.status, JSON.stringify(line.slice(0, 60))).toBeLessThan(500);
      expect((await call(daemon, { path: '/_ping' })).status).toBe(200);
    }
  });
});

describe('request bodies', () => {
  it('refuses a huge body with a 4xx and does not leave the connection hanging', async () => {
    const size = 5 * 1024 * 1024;
    const limit = 'request body is larger than the limit of 1048576 bytes';
    const head = (framing: string): string =>
      ['POST /volumes/create HTTP/1.1', 'Host: berth', 'Content-Type: application/json', framing, '', ''].join('\r\n');
    const chunk = (data: Buffer): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
    const cases: Array<[string, string, Buffer, number]> = [
      // Announced as 5 MiB: refused from the headers, before any of the body is sent.
      ['Content-Length', head(`Content-Length: ${size + 12}`), Buffer.from(`{"Name": "${'a'.repeat(64 * 1024)}`), 500],
      // Chunked, no length: refused once more than the limit has arrived, here with its last bytes
      // (10 + 16 * 64 KiB); the rest never comes.
      ['chunked', head('Transfer-Encoding: chunked'), Buffer.concat([chunk(Buffer.from('{"Name": "')), ...Array.from({ length: 16 }, () => chunk(Buffer.alloc(64 * 1024, 'a')))]), 0],
    ];
    for (const [framing, h, body, bodyDelayMs] of cases) {
      // The client stops sending: the server must answer and hang up, not wait for the rest.
      const res = await partialRequest(daemon.socket, h, body, { timeoutMs: 10_000, bodyDelayMs });
      expect({ status: res.status, json: res.json, connection: res.headers.connection }, framing).toEqual({
        status: 400,
        json: { message: limit },
        connection: 'close',
      });
      expect((await call(daemon, { path: '/_ping' })).status).toBe(200);
    }
    // Node's own client, which writes the whole body before reading, gets the answer or a clean
    // error when the server hangs up first; never a hang.
    const viaNode = await call(daemon, { ...create(`{"Name": "${'a'.repeat(size)}"}`), timeoutMs: 10_000 }).then(
      (r) => r.status,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(['EPIPE', 'ECONNRESET', 400]).toContain(viaNode);
    expect((await call(daemon, { path: '/_ping' })).status).toBe(200);
  });

  it('answers truncated, non-JSON and wrongly typed bodies with Go\'s texts', async () => {
    const cases: Array<[string, string | Buffer, number, string | undefined]> = [
      ['truncated object', '{"Name": "abc"', 400, 'invalid JSON: unexpected EOF'],
      ['truncated after colon', '{"Name": ', 400, 'invalid JSON: unexpected EOF'],
      ['only whitespace', '   ', 400, 'invalid JSON: got EOF while reading request body'],
      ['not JSON', 'hello', 400, "invalid JSON: invalid character 'h' looking for beginning of value"],
      ['a form', 'Name=x', 400, "invalid JSON: invalid character 'N' looking for beginning of value"],
      ['random bytes', Buffer.from([0xff, 0x00, 0x13, 0x37]), 400, "invalid JSON: invalid character 'ÿ' looking for beginning of value"],
      ['Name is a number', '{"Name": 1}', 400, 'invalid JSON: json: cannot unmarshal number into Go struct field CreateOptions.Name of type string'],
      ['Labels is an array', '{"Labels": []}', 400, 'invalid JSON: json: cannot unmarshal array into Go struct field CreateOptions.Labels of type map[string]string'],
      ['Labels is a string', '{"Labels": "x"}', 400, 'invalid JSON: json: cannot unmarshal string into Go struct field CreateOptions.Labels of type map[string]string'],
      ['an option is a number', '{"DriverOpts": {"a": 1}}', 400, 'invalid JSON: json: cannot unmarshal number into Go struct field CreateOptions.DriverOpts of type string'],
      ['Driver is an object', '{"Driver": {}}', 400, 'invalid JSON: json: cannot unmarshal object into Go struct field CreateOptions.Driver of type string'],
      ['an array', '[]', 400, 'invalid JSON: json: cannot unmarshal array into Go value of type volume.CreateOptions'],
      ['a string', '"x"', 400, 'invalid JSON: json: cannot unmarshal string into Go value of type volume.CreateOptions'],
      ['a number', '1', 400, 'invalid JSON: json: cannot unmarshal number into Go value of type volume.CreateOptions'],
      ['a bool', 'true', 400, 'invalid JSON: json: cannot unmarshal bool into Go value of type volume.CreateOptions'],
      ['trailing content', '{"Name": "trail"} x', 400, 'unexpected content after JSON'],
      ['two objects', '{"Name": "two"} {"Name": "objects"}', 400, 'unexpected content after JSON'],
      ['mount without ID', '{}', 400, undefined],
    ];
    const got = await answers(
      cases.map(([name, body]) => ({ name, req: name.startsWith('mount') ? { ...create(body), path: '/volumes/keeper/mount' } : create(body) })),
    );
    const want = cases.map(([name, , status, message]) => ({ name, status, message: message ?? expect.any(String) }));
    expect(got).toEqual(want);
  });

  it('reads a null body as no options, as Go does', async () => {
    // moby decodes `null` into the zero CreateOptions: an anonymous volume, not an error.
    const res = await call(daemon, create('null'));
    expect(res.status).toBe(201);
    const created = res.json as { Name: string; Labels: Record<string, string> };
    expect(created.Labels).toEqual({ 'com.docker.volume.anonymous': '' });
    expect((await call(daemon, { method: 'DELETE', path: `/volumes/${created.Name}` })).status).toBe(204);
  });

  it('reads a null label value as the empty string, as Go does', async () => {
    // Go's decoder stores the element's zero value for `null` in a map[string]string.
    const res = await call(daemon, create('{"Name": "null-label", "Labels": {"a": null, "b": "x"}}'));
    const inspected = await call(daemon, { path: '/volumes/null-label' });
    await call(daemon, { method: 'DELETE', path: '/volumes/null-label' });
    expect({ status: res.status, created: (res.json as { Labels: unknown }).Labels, inspected: (inspected.json as { Labels: unknown }).Labels }).toEqual({
      status: 201,
      created: { a: '', b: 'x' },
      inspected: { a: '', b: 'x' },
    });
  });

  it('checks the Content-Type as moby does', async () => {
    const body = '{"Name": "ct-check"}';
    const cases: Array<[string, Record<string, string>, number, string | undefined]> = [
      ['text/plain', { 'Content-Type': 'text/plain' }, 400, "unsupported Content-Type header (text/plain): must be 'application/json'"],
      ['form', { 'Content-Type': 'application/x-www-form-urlencoded' }, 400, "unsupported Content-Type header (application/x-www-form-urlencoded): must be 'application/json'"],
      ['bad parameter', { 'Content-Type': 'application/json; charset' }, 400, 'malformed Content-Type header (application/json; charset): mime: invalid media parameter'],
      ['no media type', { 'Content-Type': ';charset=utf-8' }, 400, 'malformed Content-Type header (;charset=utf-8): mime: no media type'],
      ['missing', {}, 400, 'malformed Content-Type header (): mime: no media type'],
      ['with charset', { 'Content-Type': 'application/json; charset=utf-8' }, 201, undefined],
      ['upper case', { 'Content-Type': 'APPLICATION/JSON' }, 201, undefined],
    ];
    const got = await answers(cases.map(([name, headers]) => ({ name, req: { method: 'POST', path: '/volumes/create', body, headers } })));
    expect(got).toEqual(cases.map(([name, , status, message]) => ({ name, status, message })));
    expect((await call(daemon, { method: 'DELETE', path: '/volumes/ct-check' })).status).toBe(204);
  });
});

describe('filters', () => {
  it('refuses bad filter JSON, unknown keys and bad values on list and prune', async () => {
    const q = (path: string, raw: string): string => `${path}?filters=${encodeURIComponent(raw)}`;
    const cases: Array<[string, string, number, string]> = [
      ['GET', q('/volumes', '{'), 400, 'error reading volume filters: invalid filter'],
      ['GET', q('/volumes', '[]'), 400, 'error reading volume filters: invalid filter'],
      ['GET', q('/volumes', '"x"'), 400, 'error reading volume filters: invalid filter'],
      ['GET', q('/volumes', '{"dangling":"x"}'), 400, 'error reading volume filters: invalid filter'],
      ['GET', q('/volumes', '{"dangling":[1]}'), 400, 'error reading volume filters: invalid filter'],
      ['GET', q('/volumes', '{"foo":["bar"]}'), 400, "invalid filter 'foo'"],
      ['GET', q('/volumes', '{"dangling":["maybe"]}'), 400, "invalid filter 'dangling=[maybe]'"],
      ['GET', '/volumes?filters=%zz', 400, 'invalid URL escape "%zz"'],
      ['POST', q('/volumes/prune', '{'), 400, 'invalid filter'],
      ['POST', q('/volumes/prune', '[]'), 400, 'invalid filter'],
      ['POST', q('/volumes/prune', '{"dangling":"x"}'), 400, 'invalid filter'],
      ['POST', q('/volumes/prune', '{"dangling":["true"]}'), 400, "invalid filter 'dangling'"],
      ['POST', q('/volumes/prune', '{"label":["a"],"name":["x"]}'), 400, "invalid filter 'name'"],
      ['POST', q('/volumes/prune', '{"all":["1","0"]}'), 400, "invalid filter 'all=[1 0]': only one value is expected"],
      ['POST', q('/volumes/prune', '{"all":["maybe"]}'), 400, 'invalid filter \'all\': strconv.ParseBool: parsing "maybe": invalid syntax'],
    ];
    const label = (method: string, path: string): string => `${method} ${path.replace(/filters=(.*)$/, (_, f: string) => `filters=${f.includes('%zz') ? f : decodeURIComponent(f)}`)}`;
    const got = await answers(cases.map(([method, path]) => ({ name: label(method, path), req: { method, path } })));
    expect(got).toEqual(cases.map(([method, path, status, message]) => ({ name: label(method, path), status, message })));
    // None of that pruned anything.
    expect((await listVolumes(daemon)).map((v) => v.Name)).toContain('keeper');
  });
});

describe('nothing outside the data-root', () => {
  it('left the disk as it was outside the volumes root, and consistent inside it', async () => {
    for (const path of [`/${token}`, `/tmp/${token}`, join(daemon.dir, token), resolve(daemon.dataRoot, 'volumes', `../../../../../../../tmp/${token}`)]) {
      expect(existsSync(path), path).toBe(false);
    }
    expect(await readFile(join(sentinel, '_data', 'keep'), 'utf8')).toBe('keep');
    expect(await readFile(join(sentinel, 'opts.json'), 'utf8')).toBe('{}');
    expect(await snapshotTree(daemon.dir, join(daemon.dataRoot, 'volumes'))).toEqual(before);
    const { problems, volumes } = await diskMatchesApi(daemon);
    expect(problems).toEqual([]);
    expect(volumes.map((v) => v.Name)).toEqual(['keeper']);
    expect((await stat(join(daemon.dataRoot, 'volumes', 'keeper', '_data', 'keep'))).isFile()).toBe(true);
  });
});

describe('a corrupt opts.json', () => {
  it('does not stop the daemon: the volume stays listed and removable (berth differs from moby here on purpose)', async () => {
    let own = await Berthd.start();
    try {
      const garbage: Record<string, string | Buffer> = {
        'corrupt-truncated': '{"MountType": "tmpfs", ',
        'corrupt-binary': randomBytes(64),
        'corrupt-array': '[]',
        'corrupt-types': '{"MountType": 5, "Quota": "x"}',
        'corrupt-empty': '',
      };
      for (const name of Object.keys(garbage)) {
        const res = await call(own, create({ Name: name, DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } }));
        expect(res.status, res.body).toBe(201);
      }
      await own.stop();
      for (const [name, content] of Object.entries(garbage)) await writeFile(join(own.dataRoot, 'volumes', name, 'opts.json'), content);
      own = await Berthd.start({ dir: own.dir });

      expect(own.running).toBe(true);
      for (const name of Object.keys(garbage)) expect(own.stderr).toContain(`error while unmarshaling volume options for volume: ${name}`);
      expect((await listVolumes(own)).map((v) => v.Name).sort()).toEqual(Object.keys(garbage).sort());
      for (const [name, content] of Object.entries(garbage)) {
        expect((await call(own, { path: `/volumes/${name}` })).status, name).toBe(200);
        // The file is left as it was, for the user to repair.
        expect(await readFile(join(own.dataRoot, 'volumes', name, 'opts.json')), name).toEqual(Buffer.from(content));
      }
      for (const name of Object.keys(garbage)) {
        const res = await call(own, { method: 'DELETE', path: `/volumes/${name}` });
        expect({ name, status: res.status, body: res.body }).toEqual({ name, status: 204, body: '' });
        expect(existsSync(join(own.dataRoot, 'volumes', name)), name).toBe(false);
      }
      expect((await call(own, { path: '/_ping' })).status).toBe(200);
    } finally {
      await own.cleanup();
    }
  });
});
