import { BerthError, conflict, invalidParameter, isNotFound, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import type { PluginObject, PluginPrivilege } from '@berth/plugin-manager';
import { familiarString, parseNormalizedNamed, tagNameOnly, type NamedReference } from '@berth/plugin-store';
import { goString, goStringSlice, goStruct, type GoType } from '../go-json/decode.js';
import { atoi } from '../go-strconv.js';
import type { RequestContext } from './context.js';
import { boolValue, type Form } from './form.js';
import { readJson } from './read-json.js';
import { writeEmpty, writeJson } from './respond.js';
import { route, type Route } from './router.js';

/**
 * What the plugin routes need (moby's `plugin.Backend`); `@berth/plugin-manager`'s
 * `PluginManager` provides it.
 */
export interface PluginBackend {
  list(filters: Filters): PluginObject[];
  inspect(name: string): PluginObject;
  /** berth: whether the plugin's process runs and answered (`Enabled` is the user's intent). */
  isRunning(name: string): boolean;
  privileges(name: string): PluginPrivilege[];
  createFromContext(name: string, context: AsyncIterable<Uint8Array>, options: { signal?: AbortSignal }): Promise<unknown>;
  enable(name: string, options: { timeoutSeconds?: number; signal?: AbortSignal }): Promise<void>;
  disable(name: string, options: { force?: boolean; signal?: AbortSignal }): Promise<void>;
  remove(name: string, options: { force?: boolean; signal?: AbortSignal }): Promise<void>;
  set(name: string, args: readonly string[], options: { signal?: AbortSignal }): Promise<void>;
}

/** moby's `plugin.Privileges`, the body of pull and upgrade. */
const PRIVILEGES: GoType = {
  kind: 'slice',
  goName: 'plugin.Privileges',
  elem: goStruct('plugin.Privilege', { Name: goString, Description: goString, Value: goStringSlice }),
};

/** The longest wait for a plugin's socket a timer can express (2^31-1 ms); longer asks are clamped. */
const MAX_ENABLE_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/** Said by every route that would need a registry (pull, upgrade, push, remote privileges). */
const NO_REGISTRY = 'berth cannot reach a registry yet; create plugins from a directory with "docker plugin create"';

/**
 * The plugin router, in moby's order (`daemon/server/router/plugin/plugin.go`). Pull, upgrade and
 * push check their input as moby does, then answer 501: berth has no registry client yet.
 */
export function pluginRoutes(backend: PluginBackend): Route[] {
  return [
    route('GET', '/plugins', (ctx) => {
      const filters = Filters.parse(ctx.form().get('filters'));
      writeJson(ctx.res, 200, backend.list(filters).map((p) => withRunning(backend, p)));
    }),
    route('GET', '/plugins/{name:.*}/json', (ctx) => {
      writeJson(ctx.res, 200, withRunning(backend, backend.inspect(name(ctx))));
    }),
    route('GET', '/plugins/privileges', (ctx) => {
      const { ref } = parseRemoteRef(ctx.form().get('remote'));
      const privileges = localPrivileges(backend, ref);
      // moby's nil slice when the plugin asks for nothing.
      writeJson(ctx.res, 200, privileges.length === 0 ? null : privileges);
    }),
    route('DELETE', '/plugins/{name:.*}', async (ctx) => {
      const force = boolValue(ctx.form(), 'force');
      await backend.remove(name(ctx), { force, signal: ctx.signal });
      writeEmpty(ctx.res, 200);
    }),
    route('POST', '/plugins/{name:.*}/enable', async (ctx) => {
      const timeout = atoi(ctx.form().get('timeout'));
      const timeoutSeconds = Math.min(Math.max(timeout, 0), MAX_ENABLE_TIMEOUT_SECONDS);
      await backend.enable(name(ctx), { timeoutSeconds, signal: ctx.signal });
      writeEmpty(ctx.res, 200);
    }),
    route('POST', '/plugins/{name:.*}/disable', async (ctx) => {
      const force = boolValue(ctx.form(), 'force');
      await backend.disable(name(ctx), { force, signal: ctx.signal });
      writeEmpty(ctx.res, 200);
    }),
    route('POST', '/plugins/pull', async (ctx) => {
      const form = parseFormWrapped(ctx);
      await readJson(ctx.req, PRIVILEGES);
      const { ref, tag } = parseRemoteRef(form.get('remote'));
      const local = pullName(ref, tag, form.get('name'));
      // moby's Pull refuses a taken name before it fetches anything.
      if (exists(backend, local)) throw invalidParameter(`plugin ${local} already exists`);
      throw notImplemented(`plugin pull is not supported yet: ${NO_REGISTRY}`);
    }),
    route('POST', '/plugins/{name:.*}/push', (ctx) => {
      parseFormWrapped(ctx);
      backend.inspect(name(ctx));
      throw notImplemented(`plugin push is not supported yet: ${NO_REGISTRY}`);
    }),
    route(
      'POST',
      '/plugins/{name:.*}/upgrade',
      async (ctx) => {
        const form = parseFormWrapped(ctx);
        await readJson(ctx.req, PRIVILEGES);
        const { ref, tag } = parseRemoteRef(form.get('remote'));
        const local = pullName(ref, tag, name(ctx));
        const plugin = backend.inspect(local);
        if (plugin.Enabled) throw conflict(`plugin must be disabled before upgrading: plugin ${plugin.Name} is enabled`);
        throw notImplemented(`plugin upgrade is not supported yet: ${NO_REGISTRY}`);
      },
      { minVersion: '1.26' },
    ),
    route('POST', '/plugins/{name:.*}/set', async (ctx) => {
      const body = (await readJson(ctx.req, goStringSlice)) as unknown;
      // `null` elements decode to Go's zero value.
      const args = Array.isArray(body) ? body.map((a: unknown) => (typeof a === 'string' ? a : '')) : [];
      await backend.set(name(ctx), args, { signal: ctx.signal });
      writeEmpty(ctx.res, 204);
    }),
    route('POST', '/plugins/create', async (ctx) => {
      const repoName = ctx.form().get('name');
      // The build context is streamed to disk as it arrives: no size limit, never held whole. The
      // manager stops reading at the first refused entry; it gets an iterator that cannot destroy
      // the request (that would cut the connection before the error is answered), and the rest of
      // the body is then read and discarded so that the client gets its answer.
      try {
        await backend.createFromContext(repoName, ctx.req.iterator({ destroyOnReturn: false }), { signal: ctx.signal });
      } finally {
        if (!ctx.req.readableEnded) ctx.req.resume();
      }
      writeEmpty(ctx.res, 204);
    }),
  ];
}

function name(ctx: RequestContext): string {
  return ctx.params.name ?? '';
}

function notImplemented(message: string): BerthError {
  return new BerthError('not-implemented', message);
}

/** moby's pull/upgrade/push: `errors.Wrap(err, "failed to parse form")`. */
function parseFormWrapped(ctx: RequestContext): Form {
  try {
    return ctx.form();
  } catch (err) {
    throw wrap(err, 'failed to parse form');
  }
}

/**
 * `Enabled` is the user's intent (moby's field); berth adds `Running`: whether the plugin's
 * process runs now and answered (false while a crashed plugin waits for its restart).
 */
function withRunning(backend: PluginBackend, plugin: PluginObject): Record<string, unknown> {
  const { Config, Enabled, ...rest } = plugin;
  let running = false;
  try {
    running = plugin.Id !== undefined && plugin.Id !== '' && backend.isRunning(plugin.Id);
  } catch (err) {
    // Removed meanwhile: it is not running.
    if (!isNotFound(err)) throw err;
  }
  return { Config, Enabled, Running: running, ...rest };
}

/**
 * moby's `parseRemoteRef`: a normalized reference; a digest reference keeps its tag aside, a bare
 * name gets `:latest`. Bad references are 400s (moby answers 500 for some).
 */
function parseRemoteRef(remote: string): { ref: NamedReference; tag: string | undefined } {
  const ref = parseNormalizedNamed(remote);
  if (ref.digest !== undefined && ref.tag !== undefined) {
    const { tag, ...withoutTag } = ref;
    return { ref: withoutTag, tag };
  }
  return { ref: tagNameOnly(ref), tag: undefined };
}

/** moby's `getName`: the local name of a pulled (or upgraded) plugin. */
function pullName(ref: NamedReference, tag: string | undefined, name: string): string {
  if (name === '') {
    if (ref.digest !== undefined) {
      const { domain, path } = ref;
      return familiarString({ domain, path, tag: tag ?? 'latest' });
    }
    return familiarString(ref);
  }
  const local = parseNormalizedNamed(name);
  if (local.digest !== undefined) throw invalidParameter('cannot use digest in plugin tag');
  return local.tag === undefined ? familiarString(tagNameOnly(local)) : name;
}

function exists(backend: PluginBackend, name: string): boolean {
  try {
    return backend.inspect(name).Name === name;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * `GET /plugins/privileges?remote=`: moby fetches the plugin's config from the registry; berth has
 * no registry client yet and answers for a plugin installed under that name, else 501.
 */
function localPrivileges(backend: PluginBackend, ref: NamedReference): PluginPrivilege[] {
  const local = familiarString(ref);
  if (ref.digest === undefined) {
    try {
      if (backend.inspect(local).Name === local) return backend.privileges(local);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  throw notImplemented(`cannot fetch the privileges of ${local}: ${NO_REGISTRY}`);
}
