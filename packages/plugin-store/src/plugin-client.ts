import { readFile } from 'node:fs/promises';
import http, { STATUS_CODES } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { BerthError, system, unavailable } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import { goField } from '@berth/gocompat';
import { backoffMs, DEFAULT_RETRY_POLICY, shouldAbortRetry, type RetryPolicy } from './backoff.js';
import { systemClock, type Clock } from './clock.js';
import { parsePluginAddress, type PluginTarget } from './plugin-address.js';
import type { ReachabilityGate } from './reachability.js';

/** Sent as `Accept` on every call (moby's `transport.VersionMimetype`). */
export const VERSION_MIMETYPE = 'application/vnd.docker.plugins.v1.2+json';
/** The `Host` header of calls over unix sockets. */
export const UNIX_SOCKET_HOST = 'plugin.moby.localhost';
/** moby's VolumeDriver deadline for `Create` and `Mount`. */
export const PLUGIN_LONG_TIMEOUT_MS = 120_000;
/** moby's VolumeDriver deadline for every other call. */
export const PLUGIN_SHORT_TIMEOUT_MS = 60_000;
/** The deadline of a call that names none, on a client created without one. */
export const DEFAULT_CALL_TIMEOUT_MS = PLUGIN_SHORT_TIMEOUT_MS;
export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

// An error page quoted in full would make an unreadable message; the start says what went wrong.
const ERROR_TEXT_MAX = 4096;

/** TLS settings of a plugin named by a `.json` spec (go-connections `tlsconfig.Options`). */
export interface TlsConfig {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly insecureSkipVerify: boolean;
}

export interface PluginClientOptions {
  /** `unix:///path/x.sock`, `tcp://host:port`, `http://host:port` or `https://host:port`. */
  addr: string;
  /** Used for `https://` addresses only. */
  tls?: TlsConfig | undefined;
  /** Deadline of each attempt of a call that passes no `timeoutMs`; `0` means none. */
  timeoutMs?: number | undefined;
  /** How long connecting may take before it counts as a transport error. */
  dialTimeoutMs?: number | undefined;
  /** Answers larger than this fail and their connection is destroyed. */
  maxResponseBytes?: number | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  /** Consulted before dialling; see `UnreachableMemory`. */
  gate?: ReachabilityGate | undefined;
  /** The plugin's name, as `onCall` reports it. */
  name?: string | undefined;
  /** Told of every call when it ends, retries included (metrics). */
  onCall?: PluginCallObserver | undefined;
}

/**
 * How a call ended: answered (`ok`), failed (`error`: refused, a transport error, an error status
 * or an `Err` in the answer), past its deadline or its caller's (`timeout`), or abandoned by its
 * caller (`canceled`).
 */
export type PluginCallOutcome = 'ok' | 'error' | 'timeout' | 'canceled';

export type PluginCallObserver = (plugin: string, method: string, durationMs: number, outcome: PluginCallOutcome) => void;

export interface PluginCallOptions {
  signal?: AbortSignal | undefined;
  /**
   * Deadline of each attempt, from dialling to the last byte of the answer. Takes precedence over
   * the client's default (unlike moby, where the shorter of the two wins).
   */
  timeoutMs?: number | undefined;
  /** Retry transport errors with back-off (default true). */
  retry?: boolean | undefined;
  /** Told about each transport error that will be retried, and the wait before the retry. */
  onRetry?: ((error: BerthError, waitMs: number) => void) | undefined;
}

/** The HTTP status a plugin answered with, kept as the `cause` of the error it became. */
export interface PluginStatus {
  readonly serviceMethod: string;
  readonly statusCode: number;
}

const STATUS_BRAND = Symbol.for('@berth/plugin-store.PluginStatus');

/** The HTTP status behind a plugin error anywhere in a cause chain, if it came from one. */
export function pluginStatusCode(err: unknown): number | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 32 && typeof current === 'object' && current !== null; depth++) {
    if ((current as Record<symbol, unknown>)[STATUS_BRAND] === true) return (current as PluginStatus).statusCode;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Whether the plugin answered 404: it does not serve that method (moby's `plugins.IsNotFound`). */
export function isPluginNotFound(err: unknown): boolean {
  return pluginStatusCode(err) === 404;
}

type Attempt =
  | { readonly ok: true; readonly statusCode: number; readonly body: Buffer }
  | {
      readonly ok: false;
      readonly error: BerthError;
      /** The error text without the method prefix. */
      readonly reason: string;
      readonly dial: boolean;
      readonly retryable: boolean;
    };

type TlsOptions = Pick<https.RequestOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'>;

/**
 * The client side of the plugin protocol: `POST /<Iface.Method>` with a JSON body, moby's
 * `Accept` type, errors from `{"Err": ...}` or the raw body, and retries with back-off on
 * transport errors only. One connection per call: a plugin restart never meets a stale pooled
 * connection, and "connection refused" always describes the plugin as it is now.
 */
export class PluginClient {
  readonly addr: string;
  readonly #tls: TlsConfig | undefined;
  readonly #timeoutMs: number;
  readonly #dialTimeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #retry: RetryPolicy;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #gate: ReachabilityGate | undefined;
  readonly #name: string;
  readonly #onCall: PluginCallObserver | undefined;
  #tlsOptions: Promise<TlsOptions> | undefined;

  constructor(options: PluginClientOptions) {
    this.addr = options.addr;
    this.#tls = options.tls;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#dialTimeoutMs = options.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? noopLogger;
    this.#gate = options.gate;
    this.#name = options.name ?? this.addr;
    this.#onCall = options.onCall;
  }

  /**
   * Calls `serviceMethod` (e.g. `VolumeDriver.Mount`) with `args` as the JSON body (`undefined`
   * or `null` send no body) and resolves with the decoded answer of a 200 (`{}` for an empty body
   * or `null`). A 200 carrying `{"Err": "..."}` is the caller's to interpret, as in moby.
   */
  async call(serviceMethod: string, args?: unknown, options: PluginCallOptions = {}): Promise<unknown> {
    if (this.#onCall === undefined) return this.#call(serviceMethod, args, options);
    const method = serviceMethod.replace(/^\/+/, '');
    const started = performance.now();
    let outcome: PluginCallOutcome = 'error';
    try {
      const answer = await this.#call(serviceMethod, args, options);
      const err = goField(answer, 'Err');
      outcome = typeof err === 'string' && err !== '' ? 'error' : 'ok';
      return answer;
    } catch (err) {
      outcome = callOutcome(err, options.signal);
      throw err;
    } finally {
      this.#onCall(this.#name, method, performance.now() - started, outcome);
    }
  }

  async #call(serviceMethod: string, args: unknown, options: PluginCallOptions): Promise<unknown> {
    const { signal } = options;
    signal?.throwIfAborted();
    const method = serviceMethod.replace(/^\/+/, '');
    const target = parsePluginAddress(this.addr);
    const body = encodeBody(method, args);
    const tls = target.kind === 'tcp' && target.https ? await this.#tlsRequestOptions() : {};
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const ticket = await this.#gate?.beforeDial();
    if (ticket?.refusal !== undefined) throw unavailable(`${method}: ${ticket.refusal}`);

    const start = this.#clock.now();
    for (let retries = 0; ; retries++) {
      signal?.throwIfAborted();
      const outcome = await attempt({
        target,
        method,
        body,
        tls,
        timeoutMs,
        dialTimeoutMs: this.#dialTimeoutMs,
        maxResponseBytes: this.#maxResponseBytes,
        signal,
      });
      if (outcome.ok) {
        this.#gate?.reachable();
        return decodeAnswer(method, outcome.statusCode, outcome.body);
      }
      const wait = backoffMs(retries, this.#retry);
      const giveUp = shouldAbortRetry(this.#clock.now() - start, wait, this.#retry);
      if (!outcome.retryable || options.retry === false || giveUp) {
        if (outcome.dial && ticket !== undefined) this.#gate?.unreachable(ticket, outcome.reason);
        throw outcome.error;
      }
      const where = `${describeTarget(target)}/${method}`;
      this.#logger.warn(`Unable to connect to plugin: ${where}: ${outcome.error.message}, retrying in ${wait / 1000}s`);
      options.onRetry?.(outcome.error, wait);
      await this.#clock.sleep(wait, signal);
    }
  }

  #tlsRequestOptions(): Promise<TlsOptions> {
    this.#tlsOptions ??= loadTls(this.#tls);
    // A failed read is not cached: the files may be fixed without restarting the daemon.
    this.#tlsOptions.catch(() => (this.#tlsOptions = undefined));
    return this.#tlsOptions;
  }
}

/** A deadline (the call's own, or the caller's `AbortSignal.timeout`) is a timeout; a caller leaving is a cancel. */
function callOutcome(err: unknown, signal: AbortSignal | undefined): PluginCallOutcome {
  const timedOut = (e: unknown): boolean =>
    (BerthError.is(e) && e.kind === 'deadline-exceeded') || (e as { name?: unknown } | null)?.name === 'TimeoutError';
  if (timedOut(err)) return 'timeout';
  if (signal?.aborted === true) return timedOut(signal.reason) ? 'timeout' : 'canceled';
  return 'error';
}

function encodeBody(method: string, args: unknown): Buffer | undefined {
  if (args === undefined || args === null) return undefined;
  let json: string | undefined;
  try {
    json = JSON.stringify(args);
  } catch (err) {
    throw system(`${method}: cannot encode the request: ${(err as Error).message}`, { cause: err });
  }
  return json === undefined ? undefined : Buffer.from(`${json}\n`);
}

async function loadTls(config: TlsConfig | undefined): Promise<TlsOptions> {
  if (config === undefined) return {};
  const options: TlsOptions = { rejectUnauthorized: !config.insecureSkipVerify };
  if (config.caFile !== undefined && config.caFile !== '') {
    try {
      options.ca = await readFile(config.caFile);
    } catch (err) {
      throw system(`could not read CA certificate "${config.caFile}": ${(err as Error).message}`, { cause: err });
    }
  }
  const { certFile = '', keyFile = '' } = config;
  if (certFile !== '' && keyFile !== '') {
    try {
      [options.cert, options.key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
    } catch (err) {
      throw system(`Could not load X509 key pair: ${(err as Error).message}`, { cause: err });
    }
  }
  return options;
}

function decodeAnswer(method: string, statusCode: number, body: Buffer): unknown {
  const text = body.toString('utf8').trim();
  if (statusCode === 200) {
    if (text === '') return {};
    try {
      return JSON.parse(text) ?? {};
    } catch {
      throw system(`${method}: the plugin's answer is not JSON: ${quote(text)}`);
    }
  }
  let message = text;
  try {
    const err = goField(JSON.parse(text), 'Err');
    if (typeof err === 'string' && err !== '') message = err;
  } catch {
    // Not JSON: plugins answer errors as plain text or HTML pages too.
  }
  if (message === '') message = `${statusCode} ${STATUS_CODES[statusCode] ?? ''}`.trim();
  const status: PluginStatus & { [STATUS_BRAND]: true } = { serviceMethod: method, statusCode, [STATUS_BRAND]: true };
  throw system(`${method}: ${quote(message)}`, { cause: status });
}

function quote(text: string): string {
  return text.length > ERROR_TEXT_MAX ? `${text.slice(0, ERROR_TEXT_MAX)}…` : text;
}

function describeTarget(target: PluginTarget): string {
  return target.kind === 'unix' ? target.socketPath : `${target.host}:${target.port}`;
}

// Dial errors that will not go away by waiting.
const PERMANENT_DIAL_ERRORS = new Set(['EACCES', 'EPERM', 'ENOTSOCK', 'ENAMETOOLONG', 'EINVAL']);
// Errors after connecting, before any byte of the answer: the plugin dropped the connection
// (moby retries these; its `TestFailOnce` relies on it).
const RETRYABLE_EXCHANGE_ERRORS = new Set(['ECONNRESET', 'EPIPE']);

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  ENOTSOCK: 'socket operation on non-socket',
  ETIMEDOUT: 'i/o timeout',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ECONNRESET: 'connection reset by peer',
};

interface AttemptRequest {
  readonly target: PluginTarget;
  readonly method: string;
  readonly body: Buffer | undefined;
  readonly tls: TlsOptions;
  readonly timeoutMs: number;
  readonly dialTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * One HTTP exchange. Resolves with the answer, or with a transport failure the caller may retry;
 * rejects for what must not be retried once the plugin may have acted (deadline, a broken or
 * oversized answer, abort).
 */
function attempt(req: AttemptRequest): Promise<Attempt> {
  const { target, method } = req;
  return new Promise<Attempt>((resolve, reject) => {
    let connected = false;
    let answered = false;
    let settled = false;
    let dialTimer: NodeJS.Timeout | undefined;
    let deadline: NodeJS.Timeout | undefined;

    const settle = (result: { value: Attempt } | { error: unknown }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(dialTimer);
      clearTimeout(deadline);
      req.signal?.removeEventListener('abort', onAbort);
      if ('error' in result) {
        // Destroying the request destroys its socket: nothing more is read from the plugin.
        request.destroy();
        reject(result.error);
      } else {
        if (!result.value.ok) request.destroy();
        resolve(result.value);
      }
    };
    const transportFailure = (reason: string, cause: unknown, dial: boolean, retryable: boolean): void => {
      const error = unavailable(`${method}: ${reason}`, cause === undefined ? undefined : { cause });
      settle({ value: { ok: false, error, reason, dial, retryable } });
    };
    const onAbort = (): void => settle({ error: req.signal?.reason });

    const headers: http.OutgoingHttpHeaders = {
      Accept: VERSION_MIMETYPE,
      'Content-Length': String(req.body?.length ?? 0),
    };
    const options: https.RequestOptions = { method: 'POST', path: `/${method}`, agent: false, headers, ...req.tls };
    if (target.kind === 'unix') {
      options.socketPath = target.socketPath;
      headers.Host = UNIX_SOCKET_HOST;
    } else {
      options.host = target.host;
      options.port = target.port;
    }
    const request = target.kind === 'tcp' && target.https ? https.request(options) : http.request(options);

    request.on('socket', (socket: Socket) => {
      const onConnect = (): void => {
        connected = true;
        clearTimeout(dialTimer);
      };
      if (!socket.connecting) {
        onConnect();
        return;
      }
      socket.once('connect', onConnect);
      const dialTimeout = (): void => transportFailure(dialText(target, 'i/o timeout'), undefined, true, true);
      dialTimer = setTimeout(dialTimeout, req.dialTimeoutMs);
    });

    request.on('error', (err: NodeJS.ErrnoException) => {
      if (answered) {
        settle({ error: brokenAnswer(method, err) });
      } else if (!connected) {
        const code = err.code ?? '';
        const retryable = !PERMANENT_DIAL_ERRORS.has(code);
        transportFailure(dialText(target, ERRNO_TEXT[code] ?? err.message), err, true, retryable);
      } else if (RETRYABLE_EXCHANGE_ERRORS.has(err.code ?? '')) {
        transportFailure(`the plugin closed the connection before answering (${err.message})`, err, false, true);
      } else {
        settle({ error: unavailable(`${method}: ${err.message}`, { cause: err }) });
      }
    });

    request.on('response', (response: http.IncomingMessage) => {
      answered = true;
      const tooLarge = (): void =>
        settle({ error: system(`${method}: the plugin's answer is larger than ${req.maxResponseBytes} bytes`) });
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > req.maxResponseBytes) {
        tooLarge();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxResponseBytes) tooLarge();
        else chunks.push(chunk);
      });
      response.on('end', () =>
        settle({ value: { ok: true, statusCode: response.statusCode ?? 0, body: Buffer.concat(chunks, size) } }),
      );
      response.on('error', (err) => settle({ error: brokenAnswer(method, err) }));
      response.on('close', () => {
        if (!response.complete) settle({ error: brokenAnswer(method) });
      });
    });

    if (req.timeoutMs > 0 && Number.isFinite(req.timeoutMs)) {
      const text = `${method}: the plugin did not answer within ${seconds(req.timeoutMs)}`;
      deadline = setTimeout(() => settle({ error: new BerthError('deadline-exceeded', text) }), req.timeoutMs);
    }
    req.signal?.addEventListener('abort', onAbort, { once: true });
    if (req.signal?.aborted === true) onAbort();
    else request.end(req.body);
  });
}

function brokenAnswer(method: string, cause?: unknown): BerthError {
  return unavailable(
    `${method}: the plugin closed the connection in the middle of its answer`,
    cause === undefined ? undefined : { cause },
  );
}

function dialText(target: PluginTarget, reason: string): string {
  return target.kind === 'unix'
    ? `dial unix ${target.socketPath}: connect: ${reason}`
    : `dial tcp ${target.host}:${target.port}: connect: ${reason}`;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${ms / 1000}s`;
}
