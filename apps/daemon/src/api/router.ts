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
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

interface CompiledRoute {
  readonly route: Route;
  readonly pattern: RegExp;
  /** The pattern's text before its first variable: a path without it cannot match. */
  readonly prefix: string;
}

/**
 * gorilla/mux as moby sets it up: every route answers with and without a `/v{version}` prefix,
 * routes are tried in order, and a route only matches its own method (a path known under another
 * method is still a 404 `page not found`). Routes are kept per method, and a route whose literal
 * start the path does not have is skipped without running its pattern: every request pays this.
 */
export class Router {
  readonly #byMethod = new Map<string, CompiledRoute[]>();

  constructor(routes: readonly Route[]) {
    for (const r of routes) {
      let list = this.#byMethod.get(r.method);
      if (list === undefined) this.#byMethod.set(r.method, (list = []));
      list.push({ route: r, pattern: compile(r.path), prefix: literalPrefix(r.path) });
    }
  }

  /** `path` is already percent-decoded, as Go's `URL.Path`. */
  match(method: string, path: string): RouteMatch | undefined {
    const routes = this.#byMethod.get(method);
    if (routes === undefined) return undefined;
    const versioned = path.startsWith('/v') ? VERSIONED.exec(path) : null;
    const unprefixed = versioned?.[2];
    for (const { route: r, pattern, prefix } of routes) {
      if (unprefixed !== undefined && unprefixed.startsWith(prefix)) {
        const m = pattern.exec(unprefixed);
        if (m !== null) return { route: r, params: m.groups ?? NO_PARAMS, version: versioned?.[1] };
      }
      if (path.startsWith(prefix)) {
        const m = pattern.exec(path);
        if (m !== null) return { route: r, params: m.groups ?? NO_PARAMS, version: undefined };
      }
    }
    return undefined;
  }
}

function literalPrefix(path: string): string {
  const brace = path.indexOf('{');
  return brace < 0 ? path : path.slice(0, brace);
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
