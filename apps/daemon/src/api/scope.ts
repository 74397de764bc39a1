import { BerthError, notFound, unavailable, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import type { RequestContext } from './context.js';
import { writeJson } from './respond.js';
import { route, type Route } from './router.js';

// berth has no containers, images, networks, builds or swarm. moby's routers for them are served
// anyway, so that clients get true answers instead of `page not found`: lists are empty, lookups
// answer moby's not-found texts, and whatever would create, change or run one is a 501 that says
// what berth is.

const VERSION_PREFIX = /^\/v[0-9.]+(?=\/)/;

/** The 501 of everything outside berth's scope, naming the request as the client sent it. */
export function outOfScope(ctx: RequestContext): BerthError {
  const url = ctx.req.url ?? '/';
  const query = url.indexOf('?');
  const path = (query < 0 ? url : url.slice(0, query)).replace(VERSION_PREFIX, '');
  return new BerthError('not-implemented', `berthd manages volumes and plugins only: ${ctx.req.method ?? 'GET'} ${path} is not supported`);
}

/** A route of moby's that berth answers with `outOfScope`. */
export function unsupported(method: string, path: string, options: { minVersion?: string } = {}): Route {
  return route(
    method,
    path,
    (ctx) => {
      throw outOfScope(ctx);
    },
    options,
  );
}

/** moby's answer on a node that is not part of a swarm (`errNoManager`), 503. */
export function noSwarm(): BerthError {
  return unavailable(
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.',
  );
}

/** `filters` of the query as moby's `filters.FromJSON` reads it (400 `invalid filter`). */
export function formFilters(ctx: RequestContext): Filters {
  return Filters.parse(ctx.form().get('filters'));
}

/** A list that is empty: the form and filters are checked first, as moby's handler does. */
export function emptyList(method: string, path: string, validate: (ctx: RequestContext) => void, options: { minVersion?: string } = {}): Route {
  return route(
    method,
    path,
    (ctx) => {
      validate(ctx);
      writeJson(ctx.res, 200, []);
    },
    options,
  );
}

/** A prune that finds nothing: moby's report with no deletions, once the filters are checked. */
export function emptyPrune(path: string, accepted: readonly string[], report: Record<string, unknown>, options: { minVersion?: string } = {}): Route {
  return route(
    'POST',
    path,
    (ctx) => {
      formFilters(ctx).validate(accepted);
      writeJson(ctx.res, 200, report);
    },
    options,
  );
}

/** moby's `objNotFoundError`: `No such container: x`, `No such exec instance: x` (404). */
export function noSuch(object: string, id: string): BerthError {
  return notFound(`No such ${object}: ${id}`);
}

/** Prefixes a 400's text, as moby's `errors.Wrapf` over an invalid-parameter error. */
export function invalidWithPrefix(err: unknown, prefix: string): BerthError {
  return wrap(err, prefix, 'invalid-parameter');
}
