import { performance } from 'node:perf_hooks';
import { BerthError, kindOf, notFound, system } from '@berth/errdefs';
import { abortable, KeyedLock } from '@berth/locker';
import { noopLogger, type Logger } from '@berth/logger';
import { goField, jsonTypeName } from '@berth/gocompat';
import { systemClock, type Clock } from './clock.js';
import {
  defaultLegacyDirs,
  findLegacyPlugin,
  isPlainName,
  scanLegacyPlugins,
  type LegacyDirs,
  type LegacyPluginSpec,
} from './discovery.js';
import { DirectoryWatch } from './discovery-wait.js';
import { notImplements } from './errors.js';
import { LegacyPlugin, type Manifest } from './legacy-plugin.js';
import { PluginClient, type PluginClientOptions } from './plugin-client.js';
import { UnreachableMemory, type ReachabilityGate } from './reachability.js';

/**
 * moby looks for a missing plugin for about 15 s (back-off 1 + 2 + 4 + 8 s) on every lookup; berth
 * waits that long only while the daemon starts, when plugins start beside it.
 */
export const DEFAULT_DISCOVERY_GRACE_MS = 15_000;
/** How often a waiting lookup looks again where the plugin directories cannot be watched. */
export const DEFAULT_DISCOVERY_POLL_MS = 250;
export const DEFAULT_UNREACHABLE_TTL_MS = 10_000;
/** moby has none; a handshake that takes this long is a hung plugin. */
export const DEFAULT_ACTIVATION_TIMEOUT_MS = 30_000;
/** How long `getAll` waits for plugins still activating before leaving them out of its answer. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

export type PluginHandler = (name: string, client: PluginClient) => void;

export interface LegacyRegistryOptions {
  /** Default: moby's directories (`defaultLegacyDirs()`). */
  dirs?: LegacyDirs | undefined;
  /**
   * The start-up window, from the registry's creation (the daemon's start): a lookup that misses
   * during it watches the directories until the plugin appears or the window ends; afterwards a
   * miss is answered at once. `0`: no window.
   */
  discoveryGraceMs?: number | undefined;
  /** Re-check interval of waiting lookups, only where the directories cannot be watched. */
  discoveryPollMs?: number | undefined;
  /** How long a plugin nobody answers for is not dialled again; `0` disables the memory. */
  unreachableTtlMs?: number | undefined;
  /** Deadline of each `Plugin.Activate` attempt. */
  activationTimeoutMs?: number | undefined;
  /** Default for `getAll`'s `probeTimeoutMs`. */
  probeTimeoutMs?: number | undefined;
  /** Settings of the clients built for legacy plugins. */
  client?: Pick<PluginClientOptions, 'timeoutMs' | 'dialTimeoutMs' | 'maxResponseBytes' | 'retry' | 'onCall'> | undefined;
  /** Drives back-off waits and the unreachable memory; the grace window runs on real time. */
  clock?: Clock | undefined;
  logger?: Logger | undefined;
}

export interface LookupOptions {
  signal?: AbortSignal | undefined;
  /**
   * `false`: a plugin that is not there is answered at once, even during the start-up window (the
   * volume restore, whose volumes come back with their plugin whenever it appears). Default `true`.
   */
  waitForPlugin?: boolean | undefined;
}

export interface GetAllOptions {
  signal?: AbortSignal | undefined;
  /**
   * How long to wait for plugins whose activation is in flight. Those not ready by then are left
   * out of this answer (and reported to `onLeftOut`) while their activation goes on, so a hung
   * plugin cannot stall a listing; plugins in back-off (nobody answering) are left out at once.
   */
  probeTimeoutMs?: number | undefined;
  /** Called for each plugin left out because its activation did not finish within `probeTimeoutMs`. */
  onLeftOut?: ((name: string, error: Error) => void) | undefined;
}

interface Entry {
  readonly spec: LegacyPluginSpec;
  readonly client: PluginClient;
  /** Set once an activation attempt failed to connect and is waiting to retry. */
  retrying: boolean;
  readonly activation: Promise<LegacyPlugin>;
  /** Handlers already run for this plugin: each runs once. */
  readonly handled: Set<PluginHandler>;
}

/**
 * Legacy (v1) plugins: discovery, the activation handshake, the cache of activated plugins and
 * the extension-point handlers (moby's `pkg/plugins`, as an instance instead of process globals).
 * Lookups of one name are serialised; other names are never blocked.
 */
export class LegacyRegistry {
  readonly dirs: LegacyDirs;
  /** When the start-up window ends (performance.now()). */
  readonly #windowEnd: number;
  readonly #watch: DirectoryWatch;
  readonly #activationTimeoutMs: number;
  readonly #probeTimeoutMs: number;
  readonly #clientOptions: LegacyRegistryOptions['client'];
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #memory: UnreachableMemory;
  readonly #entries = new Map<string, Entry>();
  readonly #handlers = new Map<string, PluginHandler[]>();
  readonly #locks = new KeyedLock();
  readonly #closing = new AbortController();

  constructor(options: LegacyRegistryOptions = {}) {
    this.dirs = options.dirs ?? defaultLegacyDirs();
    this.#windowEnd = performance.now() + (options.discoveryGraceMs ?? DEFAULT_DISCOVERY_GRACE_MS);
    this.#watch = new DirectoryWatch([...this.dirs.socketDirs, ...this.dirs.specDirs], {
      fallbackPollMs: options.discoveryPollMs ?? DEFAULT_DISCOVERY_POLL_MS,
    });
    this.#activationTimeoutMs = options.activationTimeoutMs ?? DEFAULT_ACTIVATION_TIMEOUT_MS;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.#clientOptions = options.client;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? noopLogger;
    this.#memory = new UnreachableMemory({
      ttlMs: options.unreachableTtlMs ?? DEFAULT_UNREACHABLE_TTL_MS,
      clock: this.#clock,
    });
  }

  /**
   * The activated plugin `name` if it implements `implementation` (e.g. `VolumeDriver`), or
   * `undefined` when no socket or spec file by that name exists (during the start-up window: none
   * appears before it ends). Rejects when the plugin cannot be activated or does not implement
   * `implementation`.
   */
  async find(name: string, implementation: string, options: LookupOptions = {}): Promise<LegacyPlugin | undefined> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (name === '') throw system('Unable to find plugin without name');
    // Such a name can never appear (`vieux/sshfs` is a managed plugin's): no grace window for it.
    if (!isPlainName(name)) return undefined;
    let entry = this.#entries.get(name);
    if (entry === undefined) {
      const lock = await this.#locks.acquire(name, { signal });
      try {
        entry = this.#entries.get(name);
        if (entry === undefined) {
          const deadline = options.waitForPlugin === false ? 0 : this.#windowEnd;
          const spec = await this.#watch.probeUntil(() => findLegacyPlugin(name, this.dirs), deadline, signal);
          if (spec === undefined) return undefined;
          entry = this.#entries.get(name) ?? this.#activate(spec, true);
        }
      } finally {
        lock.release();
      }
    }
    const plugin = await abortable(entry.activation, signal);
    this.#runHandlers(entry, plugin);
    if (!plugin.implements(implementation)) throw notImplements(name, implementation);
    return plugin;
  }

  /** Like `find`, but a missing plugin is moby's `plugin not found` error (kind `not-found`). */
  async get(name: string, implementation: string, options: LookupOptions = {}): Promise<LegacyPlugin> {
    const plugin = await this.find(name, implementation, options);
    if (plugin === undefined) throw notFound(`could not find plugin ${name} in v1 plugin registry: plugin not found`);
    return plugin;
  }

  /**
   * Every legacy plugin implementing `implementation`: the directories are scanned and each plugin
   * not yet known is activated once, without retries or grace window. Plugins that fail are
   * logged and left out.
   */
  async getAll(implementation: string, options: GetAllOptions = {}): Promise<LegacyPlugin[]> {
    const { signal } = options;
    const waitMs = options.probeTimeoutMs ?? this.#probeTimeoutMs;
    const names = await this.scan({ signal });
    const found = await Promise.all(names.map((name) => this.#probe(name, waitMs, options.onLeftOut, signal)));
    return found.filter((p): p is LegacyPlugin => p !== undefined && p.implements(implementation));
  }

  /** The names of every legacy plugin in the directories (moby's `Scan`). */
  async scan(options: LookupOptions = {}): Promise<string[]> {
    options.signal?.throwIfAborted();
    return scanLegacyPlugins(this.dirs, this.#logger);
  }

  /**
   * Registers `handler` for plugins implementing `iface`. It runs once per plugin: on activation,
   * or for a plugin already active, on its next lookup.
   */
  handle(iface: string, handler: PluginHandler): void {
    const list = this.#handlers.get(iface) ?? [];
    list.push(handler);
    this.#handlers.set(iface, list);
  }

  /** Whether `name` is currently remembered as unreachable (not dialled); for tests and metrics. */
  isUnreachable(name: string): boolean {
    return this.#memory.isMarked(name);
  }

  /** Stops activations in flight (their waiters get a `canceled` error). */
  close(): void {
    this.#closing.abort(new BerthError('canceled', 'the plugin registry is closed'));
  }

  #activate(spec: LegacyPluginSpec, retry: boolean): Entry {
    const files = spec.addr.startsWith('unix://') ? [spec.addr.slice('unix://'.length)] : [];
    if (spec.source !== files[0]) files.push(spec.source);
    const gate = this.#memory.gate(spec.name, files);
    const client = new PluginClient({
      ...this.#clientOptions,
      name: spec.name,
      addr: spec.addr,
      tls: spec.tls,
      gate,
      clock: this.#clock,
      logger: this.#logger,
    });
    const entry: Entry = {
      spec,
      client,
      retrying: false,
      activation: this.#handshake(spec, client, gate, retry, () => (entry.retrying = true)),
      handled: new Set(),
    };
    // Attached first, so these run before any waiter resumes; the second also keeps a failure
    // nobody waits for from being "unhandled".
    entry.activation.then(
      (plugin) => {
        entry.retrying = false;
        this.#runHandlers(entry, plugin);
      },
      () => {
        entry.retrying = false;
        if (this.#entries.get(spec.name) === entry) this.#entries.delete(spec.name);
      },
    );
    this.#entries.set(spec.name, entry);
    return entry;
  }

  async #handshake(
    spec: LegacyPluginSpec,
    client: PluginClient,
    gate: ReachabilityGate,
    retry: boolean,
    onRetry: () => void,
  ): Promise<LegacyPlugin> {
    try {
      const answer = await client.call('Plugin.Activate', undefined, {
        timeoutMs: this.#activationTimeoutMs,
        retry,
        signal: this.#closing.signal,
        onRetry,
      });
      return new LegacyPlugin(spec, client, decodeManifest(answer));
    } catch (err) {
      // A plugin that accepts connections but never completes the handshake is as unusable as one
      // nobody listens for.
      if (kindOf(err) === 'deadline-exceeded') {
        const reason = (err as Error).message.replace(/^Plugin\.Activate: /, '');
        gate.unreachable(await gate.beforeDial(), reason);
      }
      throw err;
    }
  }

  async #probe(
    name: string,
    waitMs: number,
    onLeftOut: GetAllOptions['onLeftOut'],
    signal: AbortSignal | undefined,
  ): Promise<LegacyPlugin | undefined> {
    try {
      let entry = this.#entries.get(name);
      if (entry === undefined) {
        const spec = await findLegacyPlugin(name, this.dirs);
        if (spec === undefined) return undefined;
        entry = this.#entries.get(name) ?? this.#activate(spec, false);
      }
      if (entry.retrying) {
        this.#logger.debug('legacy plugin is not answering yet; left out', { plugin: name });
        return undefined;
      }
      const plugin = await within(abortable(entry.activation, signal), waitMs);
      if (plugin === undefined) {
        this.#logger.warn('legacy plugin did not finish activating in time; left out', { plugin: name, waitMs });
        onLeftOut?.(name, new BerthError('deadline-exceeded', `Plugin.Activate: the plugin did not answer within ${waitMs}ms`));
        return undefined;
      }
      this.#runHandlers(entry, plugin);
      return plugin;
    } catch (err) {
      if (signal?.aborted === true) throw err;
      this.#logger.error('legacy plugin left out', { plugin: name, error: (err as Error).message });
      return undefined;
    }
  }

  #runHandlers(entry: Entry, plugin: LegacyPlugin): void {
    for (const iface of plugin.manifest.implements) {
      for (const handler of this.#handlers.get(iface) ?? []) {
        if (entry.handled.has(handler)) continue;
        entry.handled.add(handler);
        try {
          handler(plugin.name, plugin.client());
        } catch (err) {
          this.#logger.error('plugin handler failed', { plugin: plugin.name, iface, error: (err as Error).message });
        }
      }
    }
  }
}

function decodeManifest(answer: unknown): Manifest {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    throw system(
      `Plugin.Activate: json: cannot unmarshal ${jsonTypeName(answer)} into Go value of type plugins.Manifest`,
    );
  }
  const list = goField(answer, 'Implements');
  if (list === undefined || list === null) return { implements: [] };
  if (!Array.isArray(list) || !list.every((item): item is string => typeof item === 'string')) {
    const bad = Array.isArray(list) ? list.find((item) => typeof item !== 'string') : list;
    throw system(
      `Plugin.Activate: json: cannot unmarshal ${jsonTypeName(bad)} into Go struct field Manifest.Implements of type ${
        Array.isArray(list) ? 'string' : '[]string'
      }`,
    );
  }
  return { implements: list };
}

/** `promise`'s value, or `undefined` when it takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  if (!Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
