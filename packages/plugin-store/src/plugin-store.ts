import { invalidParameter, kindOf, system, wrap } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import { formatCapability, pluginType } from './capability.js';
import { REF_DELTA, type CompatPlugin, type RefMode } from './compat-plugin.js';
import { pluginAlreadyExists, pluginAmbiguous, pluginDisabled, pluginNotFound } from './errors.js';
import { LegacyRegistry, type LegacyRegistryOptions, type PluginHandler } from './legacy-registry.js';
import type { Plugin } from './plugin.js';
import { familiarString, parseNormalizedNamed, tagNameOnly } from './reference.js';

const FULL_ID = /^[a-f0-9]{64}$/;

export interface PluginStoreOptions {
  /**
   * The legacy (v1) plugin registry consulted after managed plugins: an instance, options for a
   * new one, or `false` for none (moby's `allowV1PluginsFallback`).
   */
  legacy?: LegacyRegistry | LegacyRegistryOptions | false | undefined;
  logger?: Logger | undefined;
}

export interface StoreCallOptions {
  signal?: AbortSignal | undefined;
}

export interface GetPluginOptions extends StoreCallOptions {
  /** See `LookupOptions.waitForPlugin` of the legacy registry. */
  waitForPlugin?: boolean | undefined;
}

export interface GetAllByCapOptions extends StoreCallOptions {
  /** See `GetAllOptions.probeTimeoutMs` of the legacy registry. */
  probeTimeoutMs?: number | undefined;
  /** See `GetAllOptions.onLeftOut` of the legacy registry. */
  onLeftOut?: ((name: string, error: Error) => void) | undefined;
}

/**
 * The daemon-wide inventory of plugins (moby's `plugin.Store`, its `plugingetter.PluginGetter`):
 * managed plugins by ID, resolved by ID, name or unique ID prefix, with reference counts; legacy
 * plugins through the `LegacyRegistry`.
 */
export class PluginStore {
  readonly legacy: LegacyRegistry | undefined;
  readonly #logger: Logger;
  #plugins = new Map<string, Plugin>();
  readonly #handlers = new Map<string, PluginHandler[]>();

  constructor(options: PluginStoreOptions = {}) {
    this.#logger = options.logger ?? noopLogger;
    const legacy = options.legacy ?? {};
    if (legacy === false) this.legacy = undefined;
    else if (legacy instanceof LegacyRegistry) this.legacy = legacy;
    else this.legacy = new LegacyRegistry({ logger: this.#logger, ...legacy });
  }

  /**
   * An enabled plugin named `name` that provides `capability` (`VolumeDriver`). Managed plugins come
   * first; their reference count changes by `mode` once the capability matched. A disabled managed
   * plugin is a `conflict` (legacy plugins are not consulted then). Otherwise the legacy registry
   * is asked; nothing there is `plugin "<name>" not found`, any other legacy failure is
   * `legacy plugin: <err>`.
   */
  async get(name: string, capability: string, mode: RefMode, options: GetPluginOptions = {}): Promise<CompatPlugin> {
    const { signal } = options;
    signal?.throwIfAborted();
    const delta = REF_DELTA[mode];
    if (delta === undefined) throw invalidParameter(`invalid plugin reference mode "${String(mode)}"`);
    const id = this.#resolve(name);
    const plugin = id === undefined ? undefined : this.#plugins.get(id);
    if (plugin !== undefined) {
      if (!plugin.enabled) throw pluginDisabled(name);
      plugin.filterByCap(capability).addRefCount(delta);
      return plugin;
    }
    if (this.legacy === undefined) throw pluginNotFound(name);
    let legacy: CompatPlugin | undefined;
    try {
      legacy = await this.legacy.find(name, capability, { signal, waitForPlugin: options.waitForPlugin });
    } catch (err) {
      throw this.#legacyError(err, signal);
    }
    if (legacy === undefined) throw pluginNotFound(name);
    return legacy;
  }

  /** Enabled managed plugins providing `capability`, then every legacy plugin implementing it. */
  async getAllByCap(capability: string, options: GetAllByCapOptions = {}): Promise<CompatPlugin[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const result: CompatPlugin[] = this.getAllManagedPluginsByCap(capability);
    if (this.legacy === undefined) return result;
    try {
      result.push(...(await this.legacy.getAll(capability, options)));
    } catch (err) {
      throw this.#legacyError(err, signal);
    }
    return result;
  }

  /** Enabled managed plugins providing `capability`. */
  getAllManagedPluginsByCap(capability: string): Plugin[] {
    return [...this.#plugins.values()].filter((p) => p.enabled && provides(p, capability));
  }

  /** A managed plugin by full ID, name (implicit `:latest`, familiar or not) or unique ID prefix. */
  getV2Plugin(refOrId: string): Plugin {
    const id = this.#resolve(refOrId);
    const plugin = id === undefined ? undefined : this.#plugins.get(id);
    if (plugin === undefined) throw pluginNotFound(refOrId);
    return plugin;
  }

  /** Every managed plugin by ID (a copy). */
  getAll(): Map<string, Plugin> {
    return new Map(this.#plugins);
  }

  /** Replaces every managed plugin (at start, from the plugin manager's reload). */
  setAll(plugins: ReadonlyMap<string, Plugin>): void {
    this.#plugins = new Map(plugins);
  }

  add(plugin: Plugin): void {
    const existing = this.#plugins.get(plugin.id);
    if (existing !== undefined) {
      throw system(`plugin "${plugin.name}" has the same ID ${plugin.id} as "${existing.name}"`);
    }
    this.#plugins.set(plugin.id, plugin);
  }

  remove(plugin: Plugin): void {
    this.#plugins.delete(plugin.id);
  }

  setState(plugin: Plugin, enabled: boolean): void {
    plugin.object.Enabled = enabled;
  }

  /** Rejects a full (tagged) name that a managed plugin already has. */
  validateName(name: string): void {
    for (const plugin of this.#plugins.values()) if (plugin.name === name) throw pluginAlreadyExists(name);
  }

  /**
   * Registers `callback` for plugins providing `capability`: managed plugins get it through
   * `callHandler` when enabled, legacy plugins when activated.
   */
  handle(capability: string, callback: PluginHandler): void {
    const type = pluginType(capability);
    this.#handlers.set(type, [...(this.#handlers.get(type) ?? []), callback]);
    this.legacy?.handle(capability, callback);
  }

  /** Runs the handlers registered for each of the plugin's interface types; called on enable. */
  callHandler(plugin: Plugin): void {
    for (const type of plugin.types()) {
      let key: string;
      try {
        key = formatCapability(type);
      } catch {
        continue;
      }
      for (const handler of this.#handlers.get(key) ?? []) handler(plugin.name, plugin.client());
    }
  }

  /** Stops legacy activations in flight. */
  close(): void {
    this.legacy?.close();
  }

  /** moby's `resolvePluginID`: the ID, `undefined` when nothing matches; ambiguity throws. */
  #resolve(idOrName: string): string | undefined {
    if (FULL_ID.test(idOrName)) return idOrName;
    let wanted: string;
    try {
      const ref = parseNormalizedNamed(idOrName);
      if (ref.digest !== undefined) {
        this.#logger.warn(`canonical references cannot be resolved: ${familiarString(ref)}`);
        return undefined;
      }
      wanted = familiarString(tagNameOnly(ref));
    } catch {
      return undefined;
    }
    for (const plugin of this.#plugins.values()) if (plugin.name === wanted) return plugin.id;
    let found: string | undefined;
    for (const id of this.#plugins.keys()) {
      if (!id.startsWith(idOrName)) continue;
      if (found !== undefined) throw pluginAmbiguous(idOrName);
      found = id;
    }
    return found;
  }

  #legacyError(err: unknown, signal: AbortSignal | undefined): unknown {
    if ((signal?.aborted === true && err === signal.reason) || kindOf(err) === 'canceled') return err;
    return wrap(err, 'legacy plugin', 'system');
  }
}

function provides(plugin: Plugin, capability: string): boolean {
  try {
    plugin.filterByCap(capability);
    return true;
  } catch {
    return false;
  }
}
