import { BerthError, system } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import { PluginVolume } from './plugin-volume.js';
import type { AdaptedPlugin, CallOptions, PluginDriverAdapter, Volume, VolumeDriver, VolumePlugin, VolumeScope } from './types.js';
import {
  VOLUME_DRIVER_LONG_TIMEOUT_MS,
  VOLUME_DRIVER_SHORT_TIMEOUT_MS,
  VolumeDriverProxy,
  type VolumeDriverTimeouts,
} from './volume-driver-proxy.js';

export interface PluginAdapterOptions {
  /** Deadline of `Create` and `Mount` (default 2 min, moby's). */
  longTimeoutMs?: number | undefined;
  /** Deadline of the other calls (default 1 min, moby's). */
  shortTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
}

/**
 * The registry's `adapt`: turns a plugin from the plugin getter into a `PluginVolumeDriver` (moby's
 * `makePluginAdapter`). Drivers of legacy plugins may be cached, managed ones not. Refuses anything
 * that does not look like a `VolumePlugin`. Never calls the plugin.
 */
export function createPluginAdapter(options: PluginAdapterOptions = {}): PluginDriverAdapter {
  return (plugin: unknown): AdaptedPlugin => {
    if (!isVolumePlugin(plugin)) throw system(`got unknown plugin instance ${describe(plugin)}`);
    return { driver: new PluginVolumeDriver(plugin, options), cache: plugin.isV1() };
  };
}

function isVolumePlugin(value: unknown): value is VolumePlugin {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p['name'] === 'string' && typeof p['client'] === 'function' && typeof p['scopedPath'] === 'function' && typeof p['isV1'] === 'function';
}

function describe(value: unknown): string {
  if (typeof value !== 'object' || value === null) return typeof value;
  return value.constructor?.name ?? 'object';
}

// Kinds that mean the plugin could not be asked; any other failure is an answer.
const UNREACHED = new Set(['unavailable', 'deadline-exceeded', 'canceled']);

/**
 * A volume driver provided by a plugin over the VolumeDriver protocol (moby's
 * `volumeDriverAdapter`). The plugin's client is asked for on every call, so a managed plugin that
 * restarted is reached at its new socket.
 */
export class PluginVolumeDriver implements VolumeDriver {
  readonly name: string;
  readonly #plugin: VolumePlugin;
  readonly #proxy: VolumeDriverProxy;
  readonly #logger: Logger;
  #scope: VolumeScope | undefined;

  constructor(plugin: VolumePlugin, options: PluginAdapterOptions = {}) {
    this.name = plugin.name;
    this.#plugin = plugin;
    const timeouts: VolumeDriverTimeouts = {
      longMs: options.longTimeoutMs ?? VOLUME_DRIVER_LONG_TIMEOUT_MS,
      shortMs: options.shortTimeoutMs ?? VOLUME_DRIVER_SHORT_TIMEOUT_MS,
    };
    this.#proxy = new VolumeDriverProxy(plugin, timeouts);
    this.#logger = options.logger ?? noopLogger;
  }

  async create(name: string, options: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume> {
    // dockerd sends `"Opts": null` for a create without options; some plugins insist on it.
    await this.#proxy.create(name, options ?? null, call?.signal);
    return this.#volume(name);
  }

  async remove(volume: Volume, options?: CallOptions): Promise<void> {
    await this.#proxy.remove(volume.name, options?.signal);
  }

  async list(options?: CallOptions): Promise<Volume[]> {
    const volumes = await this.#proxy.list(options?.signal);
    return volumes.map((v) => this.#volume(v.name, { mountpoint: this.#scopedPath(v.mountpoint) }));
  }

  async get(name: string, options?: CallOptions): Promise<Volume | undefined> {
    const v = await this.#proxy.get(name, options?.signal);
    if (v === undefined) return undefined;
    // The requested name, not the answer's: loose plugins omit it. The mountpoint stays as the
    // plugin gave it, unscoped, as dockerd shows it in `volume inspect`; `Mount` and `Path` answers
    // are scoped into a managed plugin's rootfs.
    return this.#volume(name, { mountpoint: v.mountpoint, createdAt: v.createdAt, status: v.status });
  }

  /**
   * `local` or `global`, from `VolumeDriver.Capabilities` (moby's `getCapabilities`): asked once per
   * driver; lower-cased; empty, unknown or failed means `local`. A plugin that answered with an error
   * is not asked again (the endpoint is optional); one that could not be reached is, next time.
   */
  async scope(options?: CallOptions): Promise<VolumeScope> {
    if (this.#scope !== undefined) return this.#scope;
    let scope: string;
    try {
      scope = (await this.#proxy.capabilities(options?.signal)).scope.toLowerCase();
    } catch (err) {
      this.#logger.debug('Volume driver returned an error while trying to query its capabilities, using default capabilities', {
        driver: this.name,
        error: String(err),
      });
      if (!UNREACHED.has(BerthError.from(err).kind)) this.#scope = 'local';
      return 'local';
    }
    if (scope === '') scope = 'local';
    if (scope !== 'local' && scope !== 'global') {
      this.#logger.warn('Volume driver returned an invalid scope', { driver: this.name, scope });
      scope = 'local';
    }
    this.#scope = scope as VolumeScope;
    return this.#scope;
  }

  #volume(name: string, known: { mountpoint?: string; createdAt?: Date | undefined; status?: Record<string, unknown> | undefined } = {}): PluginVolume {
    return new PluginVolume({
      name,
      driverName: this.name,
      proxy: this.#proxy,
      scopedPath: (p) => this.#scopedPath(p),
      logger: this.#logger,
      ...known,
    });
  }

  /** `''` (unknown) stays `''`: a managed plugin would map it to its rootfs (moby does). */
  #scopedPath(path: string): string {
    return path === '' ? '' : this.#plugin.scopedPath(path);
  }
}
