import type { IncomingMessage } from 'node:http';
import { isNotFound, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { decodeRegistryAuth } from '@berth/plugin-registry';
import {
  parseNormalizedNamed,
  pluginNameForPull,
  tagNameOnly,
  type JsonMessage,
  type NamedReference,
  type PluginObject,
  type PluginPrivilege,
  type RegistryAuth,
} from '@berth/plugin-store';
import { atoi, goString, goStringSlice, goStruct, type GoType } from '@berth/gocompat';
import type { RequestContext } from './context.js';
import { boolValue, type Form } from './form.js';
import { JsonMessageStream } from './json-stream.js';
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
  createFromContext(name: string, context: AsyncIterable<Uint8Array>, options: { signal?: AbortSignal }): Promise<unknown>;
  enable(name: string, options: { timeoutSeconds?: number; signal?: AbortSignal }): Promise<void>;
  disable(name: string, options: { force?: boolean; signal?: AbortSignal }): Promise<void>;
  remove(name: string, options: { force?: boolean; signal?: AbortSignal }): Promise<void>;
  set(name: string, args: readonly string[], options: { signal?: AbortSignal }): Promise<void>;
}

/** What a registry call gets from its request. */
export interface RegistryCallOptions {
  auth: RegistryAuth;
  headers: Record<string, string>;
  signal: AbortSignal;
  onProgress: (message: JsonMessage) => void;
}

/**
 * The registry side (moby's `Privileges`, `Pull`, `Upgrade`, `Push`); `@berth/plugin-manager`'s
 * `PluginManager` provides it too.
 */
export interface PluginRegistryBackend {
  remotePrivileges(ref: NamedReference, options: Omit<RegistryCallOptions, 'onProgress'>): Promise<PluginPrivilege[] | null>;
  pull(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RegistryCallOptions): Promise<void>;
  upgrade(ref: NamedReference, name: string, privileges: readonly PluginPrivilege[], options: RegistryCallOptions): Promise<void>;
  push(name: string, options: RegistryCallOptions): Promise<void>;
}

/** moby's `plugin.Privileges`, the body of pull and upgrade. */
const PRIVILEGES: GoType = {
  kind: 'slice',
  goName: 'plugin.Privileges',
  elem: goStruct('plugin.Privilege', { Name: goString, Description: goString, Value: goStringSlice }),
};

/** The longest wait for a plugin's socket a timer can express (2^31-1 ms); longer asks are clamped. */
const MAX_ENABLE_TIMEOUT_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

/**
 * The plugin router, in moby's order (`daemon/server/router/plugin/plugin.go`). Pull, upgrade
 * and push stream JSON messages; their errors before the first message are ordinary error
 * responses, after it moby's in-stream error line.
 */
export function pluginRoutes(backend: PluginBackend, registry: PluginRegistryBackend): Route[] {
  return [
    route('GET', '/plugins', (ctx) => {
      const filters = Filters.parse(ctx.form().get('filters'));
      writeJson(ctx.res, 200, backend.list(filters).map((p) => withRunning(backend, p)));
    }),
    route('GET', '/plugins/{name:.*}/json', (ctx) => {
      writeJson(ctx.res, 200, withRunning(backend, backend.inspect(name(ctx))));
    }),
    route('GET', '/plugins/privileges', async (ctx) => {
      const { ref } = parseRemoteRef(ctx.form().get('remote'));
      const privileges = await registry.remotePrivileges(ref, { ...registryHeaders(ctx.req), signal: ctx.signal });
      writeJson(ctx.res, 200, privileges);
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
      const privileges = await readPrivileges(ctx);
      const remote = form.get('remote');
      const { ref } = parseRemoteRef(remote);
      const local = pluginNameForPull(remote, form.get('name'));
      await streamed(ctx, { 'Docker-Plugin-Name': local }, (options) => registry.pull(ref, local, privileges, options));
    }),
    route('POST', '/plugins/{name:.*}/push', async (ctx) => {
      parseFormWrapped(ctx);
      await streamed(ctx, {}, (options) => registry.push(name(ctx), options));
    }),
    route(
      'POST',
      '/plugins/{name:.*}/upgrade',
      async (ctx) => {
        const form = parseFormWrapped(ctx);
        const privileges = await readPrivileges(ctx);
        const remote = form.get('remote');
        const { ref } = parseRemoteRef(remote);
        const local = pluginNameForPull(remote, name(ctx));
        await streamed(ctx, { 'Docker-Plugin-Name': local }, (options) => registry.upgrade(ref, local, privileges, options));
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

/** The body of pull and upgrade: the privileges the user accepted (`null` elements are zero values). */
async function readPrivileges(ctx: RequestContext): Promise<PluginPrivilege[]> {
  const body = (await readJson(ctx.req, PRIVILEGES)) as unknown;
  if (!Array.isArray(body)) return [];
  return body.map((p: unknown) => {
    const { Name, Description, Value } = (p ?? {}) as { Name?: string; Description?: string; Value?: string[] | null };
    return { Name: Name ?? '', Description: Description ?? '', Value: Array.isArray(Value) ? Value.map((v) => v ?? '') : null };
  });
}

/**
 * Runs a registry operation with its progress streamed as JSON messages (`Content-Type:
 * application/json`, `headers`), aborted when the client goes away.
 */
async function streamed(
  ctx: RequestContext,
  headers: Record<string, string>,
  operation: (options: RegistryCallOptions) => Promise<void>,
): Promise<void> {
  const stream = new JsonMessageStream(ctx.res, { ...headers, 'Content-Type': 'application/json' });
  try {
    await operation({ ...registryHeaders(ctx.req), signal: ctx.signal, onProgress: (message) => stream.write(message) });
  } catch (err) {
    if (!stream.flushed) throw err;
    if (!ctx.signal.aborted) ctx.logger.error(`${ctx.req.method ?? 'POST'} ${ctx.req.url ?? ''} failed after streaming began`, { error: err });
    stream.fail(err);
  }
  stream.end();
}

/**
 * moby's `parseHeaders`: the `X-Meta-*` headers, forwarded to the registry, and `X-Registry-Auth`,
 * whose decoding errors are ignored ("to increase compatibility with the existing API").
 */
function registryHeaders(req: IncomingMessage): { auth: RegistryAuth; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(req.headers)) {
    if (!key.startsWith('x-meta-') || value === undefined) continue;
    headers[canonicalHeader(key)] = Array.isArray(value) ? value.join(', ') : value;
  }
  let auth: RegistryAuth = {};
  try {
    const header = req.headers['x-registry-auth'];
    auth = decodeRegistryAuth(Array.isArray(header) ? header[0] : header);
  } catch {
    auth = {};
  }
  return { auth, headers };
}

/** Go's `CanonicalMIMEHeaderKey`: `x-meta-foo` ⇒ `X-Meta-Foo`. */
function canonicalHeader(key: string): string {
  return key.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
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
