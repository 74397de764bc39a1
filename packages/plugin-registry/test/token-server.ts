import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RegistryTokenAuth, RegistryUser } from '../src/testing.js';

// A token server for distribution's token auth: ES256 JWTs whose `x5c` header carries a
// self-signed certificate the registry trusts. It grants only what was asked for in the plugin
// resource class (`repository(plugin):<name>:<actions>`), so a client that does not ask for the
// class gets a token that the registry refuses.

export function opensslUnavailable(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'openssl not found';
  }
}

export interface TokenServer {
  readonly auth: RegistryTokenAuth;
  /** The `scope` parameters of every token request. */
  readonly requests: string[][];
  close(): Promise<void>;
}

export async function startTokenServer(user: RegistryUser): Promise<TokenServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-token-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-subj', '/CN=berth-token', '-days', '2',
  ], { stdio: 'ignore' });
  const certificatePem = await readFile(path.join(dir, 'cert.pem'), 'utf8');
  const key = createPrivateKey(await readFile(path.join(dir, 'key.pem')));
  await rm(dir, { recursive: true, force: true });
  const x5c = new X509Certificate(certificatePem).raw.toString('base64');
  const service = 'berth-test-registry';
  const issuer = 'berth-test-issuer';
  const requests: string[][] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const expected = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const scopes = url.searchParams.getAll('scope');
    requests.push(scopes);
    const access = scopes.flatMap((scope) => {
      const match = /^repository\(plugin\):([^:]+):(.+)$/.exec(scope);
      return match === null ? [] : [{ type: 'repository', class: 'plugin', name: match[1], actions: (match[2] ?? '').split(',') }];
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: jwt(key, x5c, { iss: issuer, sub: user.username, aud: service, access }) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    auth: { realm: `http://127.0.0.1:${port}/token`, service, issuer, certificatePem },
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function jwt(key: KeyObject, x5c: string, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const head = b64({ typ: 'JWT', alg: 'ES256', x5c: [x5c] });
  const body = b64({ ...claims, iat: now, nbf: now - 10, exp: now + 300, jti: randomBytes(8).toString('hex') });
  const signature = sign('sha256', Buffer.from(`${head}.${body}`), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${head}.${body}.${signature}`;
}
