import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalidParameter } from '@berth/errdefs';
import type { Logger } from '../logger.js';
import { BERTH_VERSION, MAX_API_VERSION, MIN_API_VERSION } from '../version.js';
import type { ApiResponse } from './api-response.js';
import { versionGreaterThan, versionLessThan } from './api-version.js';
import type { RequestContext } from './context.js';
import { Form, unescapePath } from './form.js';
import { statusOf } from './http-status.js';
import { BodyTooLargeError } from './read-json.js';
import { writeJson, writeText } from './respond.js';
import { Router, type Route, type RouteMatch } from './router.js';

export interface RequestHandlerOptions {
  routes: readonly Route[];
  logger: Logger;
  /** Aborted when the daemon stops serving. */
  shutdown: AbortSignal;
  /** Told of every request once its response ends: the route's pattern (`unknown` when none matched), status and duration (metrics). */
  onRequest?: RequestObserver | undefined;
}

export type RequestObserver = (method: string, route: string, status: number, durationMs: number) => void;

export type RequestHandler = (req: IncomingMessage, res: ApiResponse) => Promise<void>;

/** moby's version middleware's headers, on every answer of a matched route. */
const VERSION_HEADERS: Readonly<Record<string, string>> = {
  Server: `Docker/${BERTH_VERSION} (linux)`,
  'Api-Version': MAX_API_VERSION,
  Ostype: 'linux',
};
/** And the experimental middleware's, once the version was accepted. */
const API_HEADERS: Readonly<Record<string, string>> = { ...VERSION_HEADERS, 'Docker-Experimental': 'false' };

/**
 * moby's API server around the routes: mux matching, the version middleware (headers, too
 * old / too new), per-route minimum versions, and errors written as `{"message": ...}` with the
 * status of their kind. Nothing a handler throws takes the daemon down: an unexpected error is a
 * 500 and is logged.
 */
export function createRequestHandler(options: RequestHandlerOptions): RequestHandler {
  const router = new Router(options.routes);
  const logger = options.logger;
  const { onRequest } = options;

  return async (req, res) => {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    let match: RouteMatch | undefined;
    if (onRequest !== undefined) {
      const started = performance.now();
      res.once('close', () => onRequest(method, match?.route.path ?? 'unknown', res.statusCode, performance.now() - started));
    }
    // moby's debug middleware line, so that a client's requests can be followed.
    logger.debug(`Calling ${method} ${rawUrl}`);
    const q = rawUrl.indexOf('?');
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    try {
      match = router.match(method, unescapePath(rawPath));
    } catch (err) {
      writeError(res, invalidParameter((err as Error).message), undefined);
      return;
    }
    if (match === undefined) {
      writeJson(res, 404, { message: 'page not found' });
      return;
    }

    const apiVersion = match.version ?? MAX_API_VERSION;
    const ctx = new Context(req, res, match.params, apiVersion, q < 0 ? '' : rawUrl.slice(q + 1), options.shutdown, logger);

    try {
      res.apiHeaders = VERSION_HEADERS;
      if (versionLessThan(apiVersion, MIN_API_VERSION)) {
        throw invalidParameter(
          `client version ${apiVersion} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
        );
      }
      if (versionGreaterThan(apiVersion, MAX_API_VERSION)) {
        throw invalidParameter(`client version ${apiVersion} is too new. Maximum supported API version is ${MAX_API_VERSION}`);
      }
      res.apiHeaders = API_HEADERS;
      const { route } = match;
      if (route.minVersion !== undefined && versionLessThan(apiVersion, route.minVersion)) {
        throw invalidParameter(`${route.method} ${route.path} requires minimum API version ${route.minVersion}`);
      }
      await route.handler(ctx);
    } catch (err) {
      const status = statusOf(err);
      if (status >= 500) logger.error(`Handler for ${method} ${rawPath} returned error`, { error: err });
      if (res.headersSent) {
        // A streaming response cannot carry an error status any more: cut it off.
        res.destroy();
        return;
      }
      // The unread rest of an oversized body must not be parsed as the next request.
      if (err instanceof BodyTooLargeError) res.setHeader('Connection', 'close');
      writeError(res, err, match.version);
    }
  };
}

/** One request's context: the query string is parsed and the signal made on first use. */
class Context implements RequestContext {
  readonly #rawQuery: string;
  #form: Form | undefined;
  #signal: AbortSignal | undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly params: Readonly<Record<string, string>>,
    readonly apiVersion: string,
    rawQuery: string,
    readonly shutdown: AbortSignal,
    readonly logger: Logger,
  ) {
    this.#rawQuery = rawQuery;
  }

  form(): Form {
    return (this.#form ??= Form.parse(this.#rawQuery));
  }

  /**
   * Aborts when the response closes before it is complete (the client went away). Made on first
   * use: an AbortSignal costs more than a whole `_ping`, and only requests that use one pay for it.
   */
  get signal(): AbortSignal {
    if (this.#signal !== undefined) return this.#signal;
    const controller = new AbortController();
    const res = this.res;
    if (res.closed) {
      if (!res.writableFinished) controller.abort(new Error('client disconnected'));
    } else {
      res.once('close', () => {
        if (!res.writableFinished) controller.abort(new Error('client disconnected'));
      });
    }
    return (this.#signal = controller.signal);
  }
}

/** API versions before 1.24 get errors in plain text, as moby still does for them. */
function writeError(res: ServerResponse, err: unknown, pathVersion: string | undefined): void {
  const message = err instanceof Error ? err.message : String(err);
  const status = statusOf(err);
  if (pathVersion !== undefined && versionLessThan(pathVersion, '1.24')) writeText(res, status, message);
  else writeJson(res, status, { message });
}
