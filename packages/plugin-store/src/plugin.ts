import path from 'node:path';
import { unavailable } from '@berth/errdefs';
import { interfaceTypes, type CapabilityID } from './capability.js';
import { PROTOCOL_SCHEME_HTTP_V1, REF_DELTA, type CompatPlugin } from './compat-plugin.js';
import { inadequateCapability } from './errors.js';
import { PluginClient, type PluginClientOptions } from './plugin-client.js';
import type { PluginObject } from './plugin-types.js';

/** moby's default for `docker plugin enable --timeout`: the deadline of calls that name none. */
export const DEFAULT_MANAGED_PLUGIN_TIMEOUT_MS = 30_000;

export interface PluginInit {
  /** The Engine API object, as kept in `<data-root>/plugins/<id>/config.json`. */
  object: PluginObject;
  /** `<data-root>/plugins/<id>/rootfs`; its sibling `propagated-mount` backs `PropagatedMount`. */
  rootfs: string;
  /** Settings for the client built by `client()` (tests shorten the back-off). */
  client?: Pick<PluginClientOptions, 'dialTimeoutMs' | 'maxResponseBytes' | 'retry' | 'clock' | 'logger' | 'onCall'> | undefined;
}

/**
 * A managed (v2) plugin: its Engine API object, its rootfs, an in-memory reference count, and —
 * while it runs — the unix socket it listens on (moby's `v2.Plugin`).
 */
export class Plugin implements CompatPlugin {
  readonly object: PluginObject;
  readonly rootfs: string;
  readonly #clientOptions: PluginInit['client'];
  #refCount = 0;
  #socketPath: string | undefined;
  #timeoutMs = DEFAULT_MANAGED_PLUGIN_TIMEOUT_MS;
  #client: PluginClient | undefined;

  constructor(init: PluginInit) {
    this.object = init.object;
    this.rootfs = init.rootfs;
    this.#clientOptions = init.client;
  }

  get id(): string {
    return this.object.Id ?? '';
  }

  get name(): string {
    return this.object.Name;
  }

  get enabled(): boolean {
    return this.object.Enabled;
  }

  /** References held by volumes (and other users); in memory only, rebuilt on start. */
  get refCount(): number {
    return this.#refCount;
  }

  addRefCount(delta: number): void {
    this.#refCount += delta;
  }

  acquire(): void {
    this.addRefCount(REF_DELTA.acquire);
  }

  release(): void {
    this.addRefCount(REF_DELTA.release);
  }

  /** `Config.Interface.Types`, parsed. */
  types(): CapabilityID[] {
    return interfaceTypes(this.object.Config);
  }

  /**
   * This plugin if it provides `capability` (compared lower-cased, under the `docker` prefix, any
   * version); else moby's `plugin does not provide "<cap>" capability`.
   */
  filterByCap(capability: string): this {
    const wanted = capability.toLowerCase();
    if (this.types().some((t) => t.capability === wanted && t.prefix === 'docker')) return this;
    throw inadequateCapability(wanted);
  }

  /**
   * The host path of a path the plugin reported: inside its propagated mount when the path lies
   * under `PropagatedMount`, else inside its rootfs. The path is first resolved as the plugin sees
   * it, from its own root, so `..` cannot climb out of either directory.
   */
  scopedPath(reported: string): string {
    const inside = path.posix.resolve('/', reported);
    const mount = this.object.Config.PropagatedMount;
    if (mount !== '') {
      const mountPoint = path.posix.resolve('/', mount);
      const relative = path.posix.relative(mountPoint, inside);
      if (relative === '' || (!relative.startsWith('..') && !path.posix.isAbsolute(relative))) {
        return path.join(path.dirname(this.rootfs), 'propagated-mount', relative);
      }
    }
    return path.join(this.rootfs, inside);
  }

  isV1(): boolean {
    return false;
  }

  protocol(): string {
    return this.object.Config.Interface.ProtocolScheme || PROTOCOL_SCHEME_HTTP_V1;
  }

  /** The socket the running plugin listens on; `undefined` while it is not running. */
  get socketPath(): string | undefined {
    return this.#socketPath;
  }

  /** Set by the manager once the plugin's socket answers, cleared when it stops. */
  setSocketPath(socketPath: string | undefined): void {
    if (socketPath !== this.#socketPath) this.#client = undefined;
    this.#socketPath = socketPath;
  }

  /** Deadline of calls that name none (`docker plugin enable --timeout`). */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  setTimeout(timeoutMs: number): void {
    if (timeoutMs !== this.#timeoutMs) this.#client = undefined;
    this.#timeoutMs = timeoutMs;
  }

  client(): PluginClient {
    if (this.#socketPath === undefined) throw unavailable(`plugin ${this.name} is not running`);
    this.#client ??= new PluginClient({
      ...this.#clientOptions,
      name: this.name,
      addr: `unix://${this.#socketPath}`,
      timeoutMs: this.#timeoutMs,
    });
    return this.#client;
  }

  toJSON(): PluginObject {
    return this.object;
  }
}
