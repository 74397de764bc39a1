import { BerthError } from '@berth/errdefs';
import type { Logger } from '@berth/logger';
import type { CallOptions, Volume } from './types.js';
import type { VolumeDriverProxy } from './volume-driver-proxy.js';

export interface PluginVolumeInit {
  readonly name: string;
  readonly driverName: string;
  readonly proxy: VolumeDriverProxy;
  /** Maps a mountpoint the plugin reported to the host; must keep `''` (unknown) as `''`. */
  readonly scopedPath: (path: string) => string;
  readonly logger: Logger;
  /** The host mountpoint already known (from `Get` or `List`). */
  readonly mountpoint?: string | undefined;
  readonly createdAt?: Date | undefined;
  readonly status?: Record<string, unknown> | undefined;
}

/**
 * A volume on a plugin driver (moby's `volumeAdapter`). It caches the mountpoint the plugin last
 * reported, so that listing never calls `VolumeDriver.Path`.
 */
export class PluginVolume implements Volume {
  readonly name: string;
  readonly driverName: string;
  readonly #proxy: VolumeDriverProxy;
  readonly #scopedPath: (path: string) => string;
  readonly #logger: Logger;
  readonly #createdAt: Date | undefined;
  readonly #status: Record<string, unknown> | undefined;
  #mountpoint: string;

  constructor(init: PluginVolumeInit) {
    this.name = init.name;
    this.driverName = init.driverName;
    this.#proxy = init.proxy;
    this.#scopedPath = init.scopedPath;
    this.#logger = init.logger;
    this.#mountpoint = init.mountpoint ?? '';
    this.#createdAt = init.createdAt;
    this.#status = init.status;
  }

  cachedPath(): string {
    return this.#mountpoint;
  }

  /** Asks `VolumeDriver.Path` only while no mountpoint is known; errors leave it unknown (`''`), as moby. */
  async path(options?: CallOptions): Promise<string> {
    if (this.#mountpoint !== '') return this.#mountpoint;
    try {
      this.#mountpoint = this.#scopedPath(await this.#proxy.path(this.name, options?.signal));
    } catch (err) {
      this.#logger.debug('Volume driver could not give the path of a volume', {
        driver: this.driverName,
        volume: this.name,
        error: String(err),
      });
    }
    return this.#mountpoint;
  }

  async mount(id: string, options?: CallOptions): Promise<string> {
    const signal = options?.signal;
    const mountpoint = this.#scopedPath(await this.#proxy.mount(this.name, id, signal));
    if (mountpoint === '') {
      // The plugin did mount; undo it, since the caller gets an error and will never unmount.
      await this.#proxy.unmount(this.name, id, signal).catch(() => undefined);
      throw new BerthError('system', `VolumeDriver.Mount: the plugin answered no Mountpoint for volume "${this.name}"`);
    }
    this.#mountpoint = mountpoint;
    return mountpoint;
  }

  async unmount(id: string, options?: CallOptions): Promise<void> {
    await this.#proxy.unmount(this.name, id, options?.signal);
    // Unmounted: the mountpoint may not exist any more (moby clears it too).
    this.#mountpoint = '';
  }

  async createdAt(): Promise<Date | undefined> {
    return this.#createdAt;
  }

  /** What the plugin reported when it listed or answered `Get` for the volume; no plugin call. */
  createdAtSync(): Date | undefined {
    return this.#createdAt;
  }

  status(): Record<string, unknown> | undefined {
    return this.#status === undefined ? undefined : { ...this.#status };
  }
}
