import type { RequestContext } from './context.js';

export type Handler = (ctx: RequestContext) => Promise<void> | void;

export interface Route {
  readonly method: string;
  /** moby's mux pattern, e.g. `/volumes/{name:.*}`; it appears in the minimum-version error text. */
  readonly path: string;
  readonly handler: Handler;
  /** The lowest API version the route serves (moby's `WithMinimumAPIVersion`). */
  readonly minVersion?: string;
}

export interface RouteMatch {
  readonly route: Route;
  readonly params: Readonly<Record<string, string>>;
  /** The `{version}` of a `/v{version}/...` path; `undefined` for unversioned paths. */
  readonly version: string | undefined;
}

export function route(method: string, path: string, handler: Handler, options: { minVersion?: string } = {}): Route {
  return { method, path, handler, ...options };
}

const VERSIONED = /^\/v([0-9.]+)(\/.*)$/s;

/**
 * gorilla/mux as moby sets it up: every route answers with and without a `/v{version}` prefix,
 * routes are tried in order, and a route only matches its own method (a path known under another
 * method is still a 404 `page not found`).
 */
export class Router {
  readonly #routes: ReadonlyArray<{ route: Route; pattern: RegExp }>;

  constructor(routes: readonly Route[]) {
    this.#routes = routes.map((r) => ({ route: r, pattern: compile(r.path) }));
  }

  /** `path` is already percent-decoded, as Go's `URL.Path`. */
  match(method: string, path: string): RouteMatch | undefined {
    const versioned = VERSIONED.exec(path);
    for (const { route: r, pattern } of this.#routes) {
      if (r.method !== method) continue;
      if (versioned !== null) {
        const m = pattern.exec(versioned[2] as string);
        if (m !== null) return { route: r, params: { ...m.groups }, version: versioned[1] };
      }
      const m = pattern.exec(path);
      if (m !== null) return { route: r, params: { ...m.groups }, version: undefined };
    }
    return undefined;
  }
}

/** `{name}` is one path segment, `{name:regexp}` a custom pattern (moby only uses `.*`). */
function compile(path: string): RegExp {
  let source = '';
  let last = 0;
  for (const m of path.matchAll(/\{(\w+)(?::([^}]*))?\}/g)) {
    source += escapeRegExp(path.slice(last, m.index)) + `(?<${m[1]}>${m[2] ?? '[^/]+'})`;
    last = m.index + m[0].length;
  }
  return new RegExp(`^${source}${escapeRegExp(path.slice(last))}$`, 's');
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
