import { BerthError, system, unavailable } from '@berth/errdefs';
import type { NamedReference, RegistryAuth } from '@berth/plugin-store';
import { parseChallenges, type AuthChallenge } from './challenge.js';
import { assertSha256Digest, sha256Digest } from './digest.js';
import { discard, send, type HttpResponse } from './http-transport.js';
import { DEFAULT_INSECURE_REGISTRIES, isInsecureRegistry } from './insecure.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { registryError } from './registry-errors.js';

/** How the daemon reaches registries (moby's registry service configuration). */
export interface RegistryOptions {
  /**
   * `host:port` names and CIDRs of registries that may be reached without verified TLS: HTTPS
   * without certificate checks first, then plain HTTP (moby's `insecure-registries`). Default:
   * loopback (`127.0.0.0/8`, `::1/128`), as in moby.
   */
  readonly insecureRegistries?: readonly string[] | undefined;
  /** Sent as `User-Agent`; default `berth`. */
  readonly userAgent?: string | undefined;
  /** Sent with every registry request (moby forwards the API call's `X-Meta-*` headers). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Time to wait for response headers, per request; default 60 s. */
  readonly headersTimeoutMs?: number | undefined;
  /** Longest silence while a body streams; default 60 s. */
  readonly bodyTimeoutMs?: number | undefined;
}

export interface RegistryClientOptions extends RegistryOptions {
  /** The repository (its tag or digest is ignored: each call names what it wants). */
  readonly ref: NamedReference;
  readonly auth?: RegistryAuth | undefined;
  /** Ask for push access too (`repository(plugin):<path>:pull,push`). */
  readonly push?: boolean | undefined;
  /** Token scopes to ask for instead of the plugin repository's (`[]` for a login check). */
  readonly scopes?: readonly string[] | undefined;
}

export interface RequestOptions {
  readonly signal?: AbortSignal | undefined;
}

export interface FetchedManifest {
  /** From `Content-Type`, or the document's own `mediaType` when the header is generic. */
  readonly mediaType: string;
  readonly bytes: Buffer;
  /** `sha256:` of `bytes`, checked against the digest asked for and the registry's header. */
  readonly digest: string;
}

export interface BlobStream {
  /** `Content-Length`, when the registry sent one. */
  readonly size: number | undefined;
  readonly body: AsyncIterable<Uint8Array>;
  /** Stops the download (call when not reading to the end). */
  cancel(): void;
}

export interface UploadOptions extends RequestOptions {
  /** Bytes sent so far. */
  readonly onProgress?: ((sent: number) => void) | undefined;
}

/** Manifests are small JSON documents; containerd refuses more than 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 << 20;
const MAX_ERROR_BODY = 64 << 10;
const MAX_REDIRECTS = 5;
const DEFAULT_TIMEOUT_MS = 60_000;

/** The auth scope moby asks for: plugin repositories are their own resource class. */
export function pluginScope(path: string, push: boolean): string {
  return `repository(plugin):${path}:${push ? 'pull,push' : 'pull'}`;
}

/** The host that serves a registry domain: Docker Hub's API is not at `docker.io`. */
export function registryHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

/**
 * A client of the distribution (registry v2) API for one repository, on `node:http`: manifests and
 * blobs by digest (streamed), blob existence, monolithic blob upload, manifest put.
 *
 * Authentication follows the registry's challenge on `GET /v2/`: `Basic` sends the credentials,
 * `Bearer` gets a token from the realm for `repository(plugin):<path>:pull[,push]` plus the plain
 * `repository:` scope (anonymous, with basic credentials, with an identity token as OAuth
 * refresh token, or a registry token used as is). A later 401 naming another scope gets one new
 * token and one retry. Every call takes an `AbortSignal`.
 */
export class RegistryClient {
  readonly ref: NamedReference;
  readonly host: string;
  readonly #auth: RegistryAuth;
  readonly #scopes: string[];
  readonly #options: RegistryOptions;
  #base: string | undefined;
  #authorization: string | undefined;
  #bearer: AuthChallenge | undefined;
  #preparing: Promise<void> | undefined;

  constructor(options: RegistryClientOptions) {
    this.ref = options.ref;
    this.host = registryHost(options.ref.domain);
    this.#auth = options.auth ?? {};
    const actions = options.push === true ? 'pull,push' : 'pull';
    this.#scopes = options.scopes !== undefined
      ? [...options.scopes]
      : [pluginScope(options.ref.path, options.push === true), `repository:${options.ref.path}:${actions}`];
    this.#options = options;
  }

  /**
   * Checks the credentials (moby's `loginV2`, behind `POST /auth`): `GET /v2/` with them must answer
   * 200, else `unauthorized` `login attempt to <url>/v2/ failed with status: 401 Unauthorized`.
   */
  async checkLogin(options: RequestOptions = {}): Promise<void> {
    await this.#prepare(options.signal);
    const url = `${this.#base ?? ''}/v2/`;
    const res = await this.#send('GET', url, { signal: options.signal });
    discard(res);
    if (res.statusCode === 200) return;
    throw new BerthError('unauthorized', `login attempt to ${url} failed with status: ${res.statusCode} ${statusText(res.statusCode)}`.trimEnd());
  }

  /** `GET /v2/<path>/manifests/<tag|digest>`, accepting schema2 and OCI manifests and indexes. */
  async getManifest(reference: string, options: RequestOptions = {}): Promise<FetchedManifest> {
    const res = await this.#call('GET', this.#repoPath(`manifests/${reference}`), {
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      signal: options.signal,
    });
    if (res.statusCode !== 200) throw await this.#fail('GET', res);
    const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES, `manifest ${reference}`);
    const digest = sha256Digest(bytes);
    if (reference.includes(':') && reference !== digest) {
      throw system(`manifest ${reference} from ${this.host} has digest ${digest}: digest mismatch`);
    }
    const announced = header(res.headers, 'docker-content-digest');
    if (announced !== undefined && announced.startsWith('sha256:') && announced !== digest) {
      throw system(`manifest ${reference} from ${this.host}: Docker-Content-Digest ${announced} does not match its content ${digest}`);
    }
    return { mediaType: manifestMediaType(header(res.headers, 'content-type'), bytes), bytes, digest };
  }

  /** `GET /v2/<path>/blobs/<digest>`, redirects followed (credentials stay with the registry). */
  async openBlob(digest: string, options: RequestOptions = {}): Promise<BlobStream> {
    const res = await this.#call('GET', this.#repoPath(`blobs/${assertSha256Digest(digest)}`), { signal: options.signal });
    if (res.statusCode !== 200) throw await this.#fail('GET', res);
    const length = header(res.headers, 'content-length');
    return {
      size: length === undefined ? undefined : Number(length),
      body: res.body,
      cancel: () => res.body.destroy(),
    };
  }

  /** The blob's size when the repository has it, undefined when not. */
  async headBlob(digest: string, options: RequestOptions = {}): Promise<number | undefined> {
    const blobPath = this.#repoPath(`blobs/${assertSha256Digest(digest)}`);
    const res = await this.#call('HEAD', blobPath, { signal: options.signal });
    discard(res);
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) {
      // A HEAD answer has no body: ask again with GET for the registry's own error text.
      const again = await this.#call('GET', blobPath, { signal: options.signal });
      if (again.statusCode === res.statusCode) throw await this.#fail('HEAD', again);
      again.body.destroy();
      throw registryError('HEAD', this.#url(blobPath), res.statusCode, statusText(res.statusCode), '');
    }
    const length = header(res.headers, 'content-length');
    return length === undefined ? 0 : Number(length);
  }

  /**
   * Uploads one blob monolithically: `POST /v2/<path>/blobs/uploads/`, then `PUT <location>?digest=`
   * with the whole content. `open` is called for each attempt (a retry after a new token needs the
   * bytes again).
   */
  async uploadBlob(
    blob: { digest: string; size: number },
    open: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: UploadOptions = {},
  ): Promise<void> {
    const digest = assertSha256Digest(blob.digest);
    const start = await this.#call('POST', this.#repoPath('blobs/uploads/'), {
      headers: { 'content-length': '0' },
      signal: options.signal,
    });
    if (start.statusCode !== 202) throw await this.#fail('POST', start);
    discard(start);
    const location = header(start.headers, 'location');
    if (location === undefined) throw system(`registry ${this.host} did not return an upload location`);
    const target = new URL(location, this.#url(this.#repoPath('blobs/uploads/')));
    target.searchParams.set('digest', digest);
    const put = await this.#call('PUT', target.toString(), {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: () => counted(open(), options.onProgress),
      signal: options.signal,
    });
    if (put.statusCode !== 201) throw await this.#fail('PUT', put);
    discard(put);
  }

  /** `PUT /v2/<path>/manifests/<tag>`; returns the digest the registry stored it under. */
  async putManifest(reference: string, mediaType: string, bytes: Uint8Array, options: RequestOptions = {}): Promise<string> {
    const res = await this.#call('PUT', this.#repoPath(`manifests/${reference}`), {
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => [bytes],
      signal: options.signal,
    });
    if (res.statusCode !== 201) throw await this.#fail('PUT', res);
    discard(res);
    const digest = sha256Digest(bytes);
    const stored = header(res.headers, 'docker-content-digest');
    if (stored !== undefined && stored !== digest) {
      throw system(`registry ${this.host} stored the manifest as ${stored}, expected ${digest}`);
    }
    return digest;
  }

  #repoPath(rest: string): string {
    return `/v2/${this.ref.path}/${rest}`;
  }

  #url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : `${this.#base ?? ''}${pathOrUrl}`;
  }

  /** One API call: endpoint and credentials settled first, redirects followed, one retry on a new scope. */
  async #call(
    method: string,
    pathOrUrl: string,
    init: { headers?: Record<string, string>; body?: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>; signal?: AbortSignal | undefined },
  ): Promise<HttpResponse> {
    await this.#prepare(init.signal);
    for (let attempt = 0; ; attempt++) {
      const res = await this.#follow(method, this.#url(pathOrUrl), init);
      if (res.statusCode === 401 && attempt === 0 && (await this.#reauthorize(res, init.signal))) {
        discard(res);
        continue;
      }
      return res;
    }
  }

  async #follow(
    method: string,
    start: string,
    init: { headers?: Record<string, string>; body?: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>; signal?: AbortSignal | undefined },
  ): Promise<HttpResponse> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const res = await this.#send(method, url, init);
      const location = header(res.headers, 'location');
      const redirect = [301, 302, 303, 307, 308].includes(res.statusCode) && (method === 'GET' || method === 'HEAD');
      if (!redirect || location === undefined || hop >= MAX_REDIRECTS) return res;
      discard(res);
      url = new URL(location, url).toString();
    }
  }

  async #send(
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>; signal?: AbortSignal | undefined },
    authorization: string | undefined = this.#authorization,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = {
      'user-agent': this.#options.userAgent ?? 'berth',
      ...this.#options.headers,
      ...init.headers,
    };
    if (authorization !== undefined && this.#base !== undefined && new URL(url).origin === new URL(this.#base).origin) {
      headers['authorization'] = authorization;
    }
    try {
      return await send(url, {
        method,
        headers,
        body: init.body?.(),
        signal: init.signal,
        insecureTls: this.#insecureTls,
        ...this.#timeouts(),
      });
    } catch (err) {
      throw connectionError(method, url, err, init.signal);
    }
  }

  #timeouts(): { headersTimeoutMs: number; bodyTimeoutMs: number } {
    return {
      headersTimeoutMs: this.#options.headersTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      bodyTimeoutMs: this.#options.bodyTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    };
  }

  #insecureTls = false;

  /** Picks the endpoint (`https`, or for insecure registries `https` then `http`) and settles credentials. */
  async #prepare(signal: AbortSignal | undefined): Promise<void> {
    this.#preparing ??= this.#ping(signal);
    try {
      await this.#preparing;
    } catch (err) {
      this.#preparing = undefined;
      throw err;
    }
  }

  async #ping(signal: AbortSignal | undefined): Promise<void> {
    const insecure = await isInsecureRegistry(this.host, this.#options.insecureRegistries ?? DEFAULT_INSECURE_REGISTRIES);
    this.#insecureTls = insecure;
    const bases = insecure ? [`https://${this.host}`, `http://${this.host}`] : [`https://${this.host}`];
    let last: unknown;
    for (const base of bases) {
      let res: HttpResponse;
      try {
        res = await this.#send('GET', `${base}/v2/`, { signal }, undefined);
      } catch (err) {
        signal?.throwIfAborted();
        last = err;
        continue;
      }
      discard(res);
      this.#base = base;
      if (res.statusCode === 401) await this.#authorize(parseChallenges(res.headers['www-authenticate']), [], signal);
      return;
    }
    throw last;
  }

  /** Sets the `Authorization` for later calls from the registry's challenges; no usable one leaves none. */
  async #authorize(challenges: AuthChallenge[], extraScopes: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    const auth = this.#auth;
    if (auth.registryToken !== undefined && auth.registryToken !== '') {
      this.#authorization = `Bearer ${auth.registryToken}`;
      return;
    }
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params['realm'] !== undefined);
    if (bearer !== undefined) {
      this.#bearer = bearer;
      for (const scope of extraScopes) if (!this.#scopes.includes(scope)) this.#scopes.push(scope);
      this.#authorization = `Bearer ${await this.#fetchToken(bearer, signal)}`;
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic') && (auth.username ?? '') !== '') {
      this.#authorization = basicAuth(auth.username ?? '', auth.password ?? '');
    }
  }

  /** After a 401: true when new credentials are worth one retry (a token for a scope not yet asked). */
  async #reauthorize(res: HttpResponse, signal: AbortSignal | undefined): Promise<boolean> {
    const challenges = parseChallenges(res.headers['www-authenticate']);
    if (this.#auth.registryToken !== undefined) return false;
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params['realm'] !== undefined);
    if (bearer === undefined) {
      // An open `/v2/` but a protected repository: credentials not sent yet are worth one try.
      const basic = basicAuth(this.#auth.username ?? '', this.#auth.password ?? '');
      if (!challenges.some((c) => c.scheme === 'basic') || (this.#auth.username ?? '') === '' || this.#authorization === basic) return false;
      this.#authorization = basic;
      return true;
    }
    const wanted = (bearer.params['scope'] ?? '').split(' ').filter((s) => s !== '' && !this.#scopes.includes(s));
    if (wanted.length === 0 && this.#bearer !== undefined) return false;
    await this.#authorize([bearer], wanted, signal);
    return true;
  }

  /** The token flow (distribution's token spec, containerd's authorizer). */
  async #fetchToken(challenge: AuthChallenge, signal: AbortSignal | undefined): Promise<string> {
    const realm = challenge.params['realm'] ?? '';
    const service = challenge.params['service'];
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw system(`invalid auth realm "${realm}" from registry ${this.host}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw system(`unsupported auth realm scheme "${url.protocol}"`);
    const { username = '', password = '', identityToken = '' } = this.#auth;
    let res: HttpResponse;
    const common = { signal, insecureTls: this.#insecureTls, ...this.#timeouts() };
    try {
      if (identityToken !== '') {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: identityToken, client_id: 'berth' });
        if (service !== undefined) form.set('service', service);
        form.set('scope', this.#scopes.join(' '));
        res = await send(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': this.#options.userAgent ?? 'berth' },
          body: form.toString(),
          ...common,
        });
      } else {
        if (service !== undefined) url.searchParams.set('service', service);
        for (const scope of this.#scopes) url.searchParams.append('scope', scope);
        const headers: Record<string, string> = { 'user-agent': this.#options.userAgent ?? 'berth' };
        if (username !== '') {
          url.searchParams.set('account', username);
          headers['authorization'] = basicAuth(username, password);
        }
        res = await send(url, { method: 'GET', headers, ...common });
      }
    } catch (err) {
      throw connectionError(identityToken === '' ? 'GET' : 'POST', url.toString(), err, signal);
    }
    const text = await readLimited(res.body, MAX_ERROR_BODY, 'token response').then((b) => b.toString('utf8'));
    if (res.statusCode !== 200) {
      throw registryError(identityToken === '' ? 'GET' : 'POST', `${url.origin}${url.pathname}`, res.statusCode, '', text);
    }
    let token: unknown;
    try {
      const body = JSON.parse(text) as { token?: unknown; access_token?: unknown };
      token = body.token ?? body.access_token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') throw system(`auth server ${url.origin} returned no token`);
    return token;
  }

  async #fail(method: string, res: HttpResponse): Promise<BerthError> {
    let text = '';
    try {
      text = (await readLimited(res.body, MAX_ERROR_BODY, 'error body')).toString('utf8');
    } catch {
      res.body.destroy();
    }
    return registryError(method, this.#url(this.#repoPath('')), res.statusCode, statusText(res.statusCode), text);
  }
}

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The manifest's type: the header, unless generic, then the document's `mediaType`. */
function manifestMediaType(contentType: string | undefined, bytes: Buffer): string {
  const fromHeader = (contentType ?? '').split(';')[0]?.trim() ?? '';
  if (fromHeader !== '' && fromHeader !== 'application/json' && fromHeader !== 'text/plain') return fromHeader;
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    if (typeof doc.mediaType === 'string') return doc.mediaType;
  } catch {
    // Not JSON: the caller refuses it by type.
  }
  return fromHeader;
}

async function readLimited(body: HttpResponse['body'], limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw system(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function* counted(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, onProgress: ((sent: number) => void) | undefined): AsyncIterable<Uint8Array> {
  let sent = 0;
  for await (const chunk of source) {
    yield chunk;
    sent += chunk.length;
    onProgress?.(sent);
  }
}

/** A failure below HTTP (refused, reset, timed out): `unavailable`, or the abort reason. */
function connectionError(method: string, url: string, err: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (BerthError.is(err)) return err;
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error && cause.message !== '' ? cause.message : (err as Error).message;
  const parsed = new URL(url);
  return unavailable(`${method} ${parsed.origin}${parsed.pathname}: ${detail}`, { cause: err });
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    405: 'Method Not Allowed',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
  };
  return texts[status] ?? '';
}
