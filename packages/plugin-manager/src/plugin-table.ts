import { KeyedLock } from '@berth/locker';
import type { PluginObject } from '@berth/plugin-store';
import type { RestartPolicy } from './backoff.js';
import type { CreatePlugin, ManagedPlugin, PluginStoreLike } from './contracts.js';
import { Controller } from './controller.js';
import { pluginNotFound } from './errors.js';
import { rootfsDir, savePluginFile, type PersistedExtras } from './plugin-dir.js';

export interface PluginTableOptions<P extends ManagedPlugin> {
  /** `<data-root>/plugins`. */
  readonly root: string;
  readonly store: PluginStoreLike<P>;
  readonly createPlugin: CreatePlugin<P>;
  readonly restartPolicy: RestartPolicy;
}

/**
 * The plugins the manager controls: the store's plugin objects, the controller of each, the
 * per-plugin lock (held across its start and stop, never across another plugin's) and the per-name
 * lock (around the last step of a create), and their `config.json` files.
 */
export class PluginTable<P extends ManagedPlugin> {
  readonly root: string;
  readonly store: PluginStoreLike<P>;
  readonly #createPlugin: CreatePlugin<P>;
  readonly #restartPolicy: RestartPolicy;
  readonly #controllers = new Map<string, Controller>();
  readonly #locks = new KeyedLock();
  readonly #names = new KeyedLock();

  constructor(options: PluginTableOptions<P>) {
    this.root = options.root;
    this.store = options.store;
    this.#createPlugin = options.createPlugin;
    this.#restartPolicy = options.restartPolicy;
  }

  /** The store's plugin object for what the manager created or loaded, with a new controller. */
  track(object: PluginObject, extras: PersistedExtras = {}): P {
    const id = object.Id ?? '';
    const plugin = this.#createPlugin({ object, rootfs: rootfsDir(this.root, id) });
    this.#controllers.set(id, new Controller(this.#restartPolicy, extras));
    return plugin;
  }

  /** Forgets a plugin that is gone from disk: out of the store, no controller. */
  forget(plugin: P): void {
    this.store.remove(plugin);
    this.#controllers.delete(plugin.id);
  }

  controller(id: string): Controller | undefined {
    return this.#controllers.get(id);
  }

  controllers(): IterableIterator<Controller> {
    return this.#controllers.values();
  }

  /**
   * Runs `fn` with the lock of the plugin `name` names held, once it is known to be still there
   * (it may have been removed while the lock was awaited): moby's not-found otherwise.
   */
  async withPlugin<T>(name: string, signal: AbortSignal | undefined, fn: (plugin: P, c: Controller) => Promise<T>): Promise<T> {
    const plugin = this.store.getV2Plugin(name);
    return this.#locks.with(
      plugin.id,
      () => {
        const c = this.#controllers.get(plugin.id);
        if (c === undefined || this.store.getAll().get(plugin.id) !== plugin) throw pluginNotFound(name);
        return fn(plugin, c);
      },
      { signal },
    );
  }

  /** Runs `fn` with the plugin's lock held, whatever happened to it meanwhile. */
  withLock<T>(plugin: P, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return this.#locks.with(plugin.id, fn, { signal });
  }

  /** Runs `fn` with the lock of a full name held: the last step of a create or an install. */
  withName<T>(fullName: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    return this.#names.with(fullName, fn, { signal });
  }

  /** Writes the plugin's `config.json` (the object and its controller's extras). */
  save(plugin: P, c: Controller): Promise<void> {
    return savePluginFile(this.root, plugin.object, c.extras);
  }
}
