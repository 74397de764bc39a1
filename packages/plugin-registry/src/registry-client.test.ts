import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { parseNormalizedNamed } from '@berth/plugin-store';
import { sha256Digest } from './digest.js';
import { RegistryClient } from './registry-client.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function serve(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handler(req, res, Buffer.concat(chunks)));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] }));
const blob = Buffer.from('blob content');

interface TokenRequest {
  method: string;
  scopes: string[];
  account: string | null;
  authorization: string | undefined;
  form: URLSearchParams | undefined;
}

/** A registry with a token server: a token is good for the scopes it was issued for. */
async function tokenRegistry(options: { insufficientOnce?: string; redirectBlobTo?: string } = {}): Promise<{ host: string; tokens: TokenRequest[]; seen: IncomingMessage[] }> {
  const tokens: TokenRequest[] = [];
  const seen: IncomingMessage[] = [];
  const issued = new Map<string, string[]>();
  let insufficient = options.insufficientOnce;
  let host = '';
  const challenge = (scope?: string, error?: string): string =>
    `Bearer realm="http://${host}/token",service="fake"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;
  host = await serve((req, res, body) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (url.pathname === '/token') {
      const form = req.method === 'POST' ? new URLSearchParams(body.toString()) : undefined;
      const scopes = form ? (form.get('scope') ?? '').split(' ') : url.searchParams.getAll('scope');
      tokens.push({ method: req.method ?? '', scopes, account: url.searchParams.get('account'), authorization: req.headers.authorization, form });
      const token = `tok-${tokens.length}`;
      issued.set(token, scopes);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token }));
      return;
    }
    seen.push(req);
    const granted = issued.get((req.headers.authorization ?? '').replace(/^Bearer /, '')) ?? (req.headers.authorization === 'Bearer given' ? ['*'] : undefined);
    if (granted === undefined) {
      res.writeHead(401, { 'www-authenticate': challenge(url.pathname === '/v2/' ? undefined : 'repository:foo/bar:pull') });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (url.pathname === '/v2/') {
      res.end('{}');
      return;
    }
    if (insufficient !== undefined && !granted.includes(insufficient)) {
      const scope = insufficient;
      insufficient = undefined;
      res.writeHead(401, { 'www-authenticate': challenge(scope, 'insufficient_scope') });
      res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
      return;
    }
    if (url.pathname === '/v2/foo/bar/manifests/1') {
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json', 'docker-content-digest': sha256Digest(manifest) });
      res.end(manifest);
      return;
    }
    if (url.pathname === `/v2/foo/bar/blobs/${sha256Digest(blob)}`) {
      if (options.redirectBlobTo !== undefined) {
        res.writeHead(307, { location: `http://${options.redirectBlobTo}/storage/blob` });
        res.end();
        return;
      }
      res.end(blob);
      return;
    }
    res.writeHead(404);
    res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
  });
  return { host, tokens, seen };
}

const client = (host: string, extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient =>
  new RegistryClient({ ref: parseNormalizedNamed(`${host}/foo/bar:1`), ...extra });

describe('RegistryClient token auth', () => {
  it('asks for the plugin resource class, with basic credentials, once', async () => {
    const registry = await tokenRegistry();
    const c = client(registry.host, { auth: { username: 'u', password: 'p' } });
    const got = await c.getManifest('1');
    expect(got.digest).toBe(sha256Digest(manifest));
    expect(got.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    await c.getManifest('1');
    expect(registry.tokens).toHaveLength(1);
    expect(registry.tokens[0]).toMatchObject({
      method: 'GET',
      scopes: ['repository(plugin):foo/bar:pull', 'repository:foo/bar:pull'],
      account: 'u',
      authorization: `Basic ${Buffer.from('u:p').toString('base64')}`,
    });
  });

  it('asks for push access when pushing, anonymously without credentials', async () => {
    const registry = await tokenRegistry();
    await client(registry.host, { push: true }).getManifest('1');
    expect(registry.tokens[0]).toMatchObject({
      scopes: ['repository(plugin):foo/bar:pull,push', 'repository:foo/bar:pull,push'],
      account: null,
      authorization: undefined,
    });
  });

  it('trades an identity token as an OAuth refresh token, and sends a registry token as is', async () => {
    const registry = await tokenRegistry();
    await client(registry.host, { auth: { identityToken: 'refresh-me' } }).getManifest('1');
    expect(registry.tokens[0]?.method).toBe('POST');
    expect(Object.fromEntries(registry.tokens[0]?.form ?? [])).toMatchObject({
      grant_type: 'refresh_token',
      refresh_token: 'refresh-me',
      service: 'fake',
      scope: 'repository(plugin):foo/bar:pull repository:foo/bar:pull',
    });
    const other = await tokenRegistry();
    await client(other.host, { auth: { registryToken: 'given' } }).getManifest('1');
    expect(other.tokens).toEqual([]);
  });

  it('gets one new token for a scope the registry asks for, then retries', async () => {
    const registry = await tokenRegistry({ insufficientOnce: 'repository:foo/bar:pull,extra' });
    await client(registry.host).getManifest('1');
    expect(registry.tokens.map((t) => t.scopes)).toEqual([
      ['repository(plugin):foo/bar:pull', 'repository:foo/bar:pull'],
      ['repository(plugin):foo/bar:pull', 'repository:foo/bar:pull', 'repository:foo/bar:pull,extra'],
    ]);
  });

  it('follows a blob redirect without sending the registry\'s credentials elsewhere', async () => {
    const storage: IncomingMessage[] = [];
    const storageHost = await serve((req, res) => {
      storage.push(req);
      res.end(blob);
    });
    const registry = await tokenRegistry({ redirectBlobTo: storageHost });
    const stream = await client(registry.host).openBlob(sha256Digest(blob));
    const chunks: Buffer[] = [];
    for await (const chunk of stream.body) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks).toString()).toBe('blob content');
    expect(storage[0]?.headers.authorization).toBeUndefined();
    expect(registry.seen.at(-1)?.headers.authorization).toMatch(/^Bearer tok-/);
  });

  it('reports the registry\'s error text and kind', async () => {
    const registry = await tokenRegistry();
    const c = client(registry.host);
    const err = await c.getManifest(sha256Digest('x')).catch((e: unknown) => e);
    expect(kindOf(err)).toBe('not-found');
    expect((err as Error).message).toBe('blob unknown: blob unknown to registry');
    expect(await c.headBlob(sha256Digest('nothing'))).toBeUndefined();
  });

  it('refuses a manifest whose content does not match the digest asked for', async () => {
    const host = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' });
      res.end(req.url === '/v2/' ? '{}' : manifest);
    });
    const wanted = sha256Digest('something else');
    await expect(client(host).getManifest(wanted)).rejects.toThrow(`has digest ${sha256Digest(manifest)}: digest mismatch`);
  });

  it('stops a transfer when the signal aborts', async () => {
    const host = await serve((req, res) => {
      if (req.url === '/v2/') {
        res.end('{}');
        return;
      }
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(1000));
      // …and nothing more.
    });
    const controller = new AbortController();
    const stream = await client(host).openBlob(sha256Digest(blob), { signal: controller.signal });
    const reading = (async () => {
      for await (const _chunk of stream.body) controller.abort();
    })();
    await expect(reading).rejects.toThrow();
    expect(controller.signal.aborted).toBe(true);
  });
});

describe('RegistryClient basic auth', () => {
  it('sends credentials when a repository asks although /v2/ did not', async () => {
    const expected = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const seen: (string | undefined)[] = [];
    const host = await serve((req, res) => {
      seen.push(req.headers.authorization);
      if (req.url === '/v2/') {
        res.end('{}');
        return;
      }
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' });
      res.end(manifest);
    });
    await client(host, { auth: { username: 'u', password: 'p' } }).getManifest('1');
    expect(seen).toEqual([undefined, undefined, expected]);
    const err = await client(host, { auth: { username: 'u', password: 'bad' } }).getManifest('1').catch((e: unknown) => e);
    expect((err as Error).message).toBe('unauthorized: authentication required');
  });
});
