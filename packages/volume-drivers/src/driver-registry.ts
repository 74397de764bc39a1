import { BerthError, invalidParameter, notFound, wrap } from '@berth/errdefs';
import { KeyedLock } from '@berth/locker';
import { noopLogger, type Logger } from '@berth/logger';
import { createPluginAdapter } from './plugin-adapter.js';
import type {
  AdaptedPlugin,
  CallOptions,
  DriverLookupOptions,
  ListPluginsOptions,
  PluginDriverAdapter,
  PluginGetter,
  PluginRefMode,
  VolumeDriver,
} from './types.js';

/** The plugin capability of volume drivers (moby's `extName`). */
export const VOLUME_DRIVER_CAPABILITY = 'VolumeDriver';

export interface VolumeDriverRegistryOptions {
  /** Where drivers that are not registered are looked up (the plugin store). */
  pluginGetter?: PluginGetter | undefined;
  /** Default: `createPluginAdapter({ logger })` (moby's timeouts). */
  adapt?: PluginDriverAdapter | undefined;
  logger?: Logger | undefined;
}

/**
 * The volume drivers of the daemon (moby's `drivers.Store`): drivers registered in-process, such as
 * `local`, and drivers provided by plugins, looked up one name at a time so that a slow plugin
 * never holds up lookups of other names.
 */
export class VolumeDriverRegistry {
  readonly #drivers = new Map<string, VolumeDriver>();
  readonly #scopeChecked = new WeakSet<VolumeDriver>();
  readonly #lookups = new KeyedLock();
  readonly #pluginGetter: PluginGetter | undefined;
  readonly #adapt: PluginDriverAdapter;
  readonly #logger: Logger;

  constructor(options: VolumeDriverRegistryOptions = {}) {
    this.#pluginGetter = options.pluginGetter;
    this.#logger = options.logger ?? noopLogger;
    this.#adapt = options.adapt ?? createPluginAdapter({ logger: this.#logger });
  }

  /**
   * Registers an in-process driver under `name`; false when the name is empty or taken. The scope
   * is checked on the first lookup (scopes are asynchronous): a driver whose scope is neither
   * `local` nor `global` is then dropped again.
   */
  register(driver: VolumeDriver, name: string = driver.name): boolean {
    if (name === '' || this.#drivers.has(name)) return false;
    this.#drivers.set(name, driver);
    return true;
  }

  /** The driver named `name`, without touching plugin reference counts. */
  getDriver(name: string, options?: DriverLookupOptions): Promise<VolumeDriver> {
    return this.#lookup(name, 'lookup', options);
  }

  /** The driver named `name`, acquiring one reference on its plugin (a volume now uses it). */
  createDriver(name: string, options?: DriverLookupOptions): Promise<VolumeDriver> {
    return this.#lookup(name, 'acquire', options);
  }

  /** The driver named `name`, releasing one reference on its plugin. */
  releaseDriver(name: string, options?: DriverLookupOptions): Promise<VolumeDriver> {
    return this.#lookup(name, 'release', options);
  }

  /**
   * The driver `name` if the registry has it at hand and its scope was checked (registered
   * in-process, or a legacy plugin's kept driver): what `getDriver`, `createDriver` and
   * `releaseDriver` would resolve with, without asking the plugin getter and so without touching
   * reference counts. `undefined` otherwise (then look it up).
   */
  peekDriver(name: string): VolumeDriver | undefined {
    const driver = this.#drivers.get(name);
    return driver !== undefined && this.#scopeChecked.has(driver) ? driver : undefined;
  }

  /** Sorted names of the registered (and cached plugin) drivers. */
  getDriverList(): string[] {
    return [...this.#drivers.keys()].sort();
  }

  /**
   * Every registered driver, plus one for every volume-driver plugin the getter knows
   * (`getAllByCap`), keeping those of legacy plugins for later lookups. A plugin that cannot be
   * adapted is logged and left out rather than failing the whole list; plugins the getter leaves
   * out because they are still starting are reported to `options.onLeftOut`.
   */
  async getAllDrivers(options?: ListPluginsOptions): Promise<VolumeDriver[]> {
    if (this.#pluginGetter === undefined) return [...this.#drivers.values()];
    let plugins: unknown[];
    try {
      plugins = await this.#pluginGetter.getAllByCap(VOLUME_DRIVER_CAPABILITY, options);
    } catch (err) {
      throw wrap(err, 'error listing plugins');
    }
    const drivers = [...this.#drivers.values()];
    const names = new Set(this.#drivers.keys());
    for (const plugin of plugins) {
      let adapted: AdaptedPlugin;
      try {
        adapted = await this.#adaptPlugin(plugin, options);
      } catch (err) {
        this.#logger.warn('Error making a volume driver of a plugin', { error: String(err) });
        continue;
      }
      const { driver, cache } = adapted;
      if (names.has(driver.name)) continue;
      names.add(driver.name);
      // A lookup of the same name may have cached its own adapter meanwhile: keep that one.
      if (cache && !this.#drivers.has(driver.name)) this.#drivers.set(driver.name, driver);
      drivers.push(this.#drivers.get(driver.name) ?? driver);
    }
    return drivers;
  }

  async #lookup(name: string, mode: PluginRefMode, options: DriverLookupOptions | undefined): Promise<VolumeDriver> {
    if (name === '') throw invalidParameter('driver name cannot be empty');
    const registered = this.#drivers.get(name);
    if (registered !== undefined) return this.#checkRegisteredScope(name, registered, options);
    const getter = this.#pluginGetter;
    if (getter === undefined) throw notFound(`error looking up volume plugin ${name}: plugin "${name}" not found`);

    const signal = options?.signal;
    return this.#lookups.with(
      name,
      async () => {
        signal?.throwIfAborted();
        const cached = this.#drivers.get(name);
        if (cached !== undefined) return cached;
        let plugin: unknown;
        try {
          plugin = await getter.get(name, VOLUME_DRIVER_CAPABILITY, mode, options);
        } catch (err) {
          throw wrap(err, `error looking up volume plugin ${name}`);
        }
        try {
          const { driver, cache } = await this.#adaptPlugin(plugin, options);
          await this.#checkScope(name, driver, options);
          if (cache) this.#drivers.set(name, driver);
          return driver;
        } catch (err) {
          await this.#undoAcquire(getter, name, mode);
          throw err;
        }
      },
      { signal },
    );
  }

  async #adaptPlugin(plugin: unknown, options: CallOptions | undefined): Promise<AdaptedPlugin> {
    try {
      return await this.#adapt(plugin, options ?? {});
    } catch (err) {
      throw wrap(err, 'error making plugin client');
    }
  }

  async #checkRegisteredScope(name: string, driver: VolumeDriver, options: CallOptions | undefined): Promise<VolumeDriver> {
    if (this.#scopeChecked.has(driver)) return driver;
    try {
      await this.#checkScope(name, driver, options);
    } catch (err) {
      if (this.#drivers.get(name) === driver) this.#drivers.delete(name);
      this.#logger.error('dropping a registered volume driver with an invalid scope', { driver: name, error: String(err) });
      throw err;
    }
    return driver;
  }

  async #checkScope(name: string, driver: VolumeDriver, options: CallOptions | undefined): Promise<void> {
    const scope: string = await driver.scope(options);
    if (scope !== 'local' && scope !== 'global') {
      throw new BerthError('system', `Driver "${name}" provided an invalid capability scope: ${scope}`);
    }
    this.#scopeChecked.add(driver);
  }

  /** A lookup that failed after acquiring must not leave the plugin referenced (moby undoes `+1` only). */
  async #undoAcquire(getter: PluginGetter, name: string, mode: PluginRefMode): Promise<void> {
    if (mode !== 'acquire') return;
    try {
      await getter.get(name, VOLUME_DRIVER_CAPABILITY, 'release');
    } catch (err) {
      this.#logger.error('error releasing reference to plugin', { plugin: name, action: 'validate-driver', error: String(err) });
    }
  }
}
