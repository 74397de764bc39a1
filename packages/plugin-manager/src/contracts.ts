import type { Writable } from 'node:stream';
import type { PluginObject } from '@berth/plugin-store';
import type { OciSpec } from './spec.js';

// What the manager consumes, declared here and satisfied structurally: `@berth/plugin-store`'s
// `Plugin` and `PluginStore`, `@berth/plugin-executor-containerd`'s `ContainerdExecutor`, and the
// daemon's events service.

/** A managed plugin as the store holds it (`@berth/plugin-store`'s `Plugin` fits). */
export interface ManagedPlugin {
  /** The Engine API object; the manager mutates `Settings` and `Config` on `set` and persists it. */
  readonly object: PluginObject;
  readonly id: string;
  /** Always tagged: `sshfs:latest`. */
  readonly name: string;
  /** The user's intent, `object.Enabled`; the store's `setState` changes it. */
  readonly enabled: boolean;
  readonly rootfs: string;
  /** References held by volumes; disable and remove refuse without force while positive. */
  readonly refCount: number;
  /** Where the running plugin listens; `undefined` while it does not run. */
  setSocketPath(socketPath: string | undefined): void;
  /** Deadline of plugin calls that name none (`docker plugin enable --timeout`). */
  setTimeout(timeoutMs: number): void;
}

/** The part of `@berth/plugin-store`'s `PluginStore` the manager uses. */
export interface PluginStoreLike<P extends ManagedPlugin> {
  /** By full ID, name (implicit `:latest`) or unique ID prefix; throws moby's not-found / ambiguous errors. */
  getV2Plugin(refOrId: string): P;
  getAll(): ReadonlyMap<string, P>;
  setAll(plugins: ReadonlyMap<string, P>): void;
  add(plugin: P): void;
  remove(plugin: P): void;
  setState(plugin: P, enabled: boolean): void;
  /** Throws `plugin <name> already exists` (conflict) for a taken full name. */
  validateName(name: string): void;
  /** Runs the handlers registered for the plugin's interface types; called once it runs. */
  callHandler(plugin: P): void;
}

/** Builds the store's plugin object from what the manager loaded or created. */
export type CreatePlugin<P extends ManagedPlugin> = (init: { object: PluginObject; rootfs: string }) => P;

export interface ExecutorCallOptions {
  signal?: AbortSignal | undefined;
}

/**
 * Runs plugins (moby's `plugin.Executor`); `@berth/plugin-executor-containerd` provides one. The
 * streams passed to `create` and `restore` receive the plugin's output and are ended by the executor.
 */
export interface Executor {
  create(id: string, spec: OciSpec, stdout: Writable, stderr: Writable, options?: ExecutorCallOptions): Promise<void>;
  /** Re-attaches to a plugin left running by an earlier daemon: true when it is alive. */
  restore(id: string, stdout: Writable, stderr: Writable, options?: ExecutorCallOptions): Promise<boolean>;
  signal(id: string, signal: number | string, options?: ExecutorCallOptions): Promise<void>;
  /** Stops following plugins; running ones keep running. */
  close?(): Promise<void>;
}

/** What the executor calls when a plugin's process has exited; the manager is one. */
export interface ExitHandler {
  handleExitEvent(id: string): void | Promise<void>;
}

export type PluginEventAction = 'create' | 'enable' | 'disable' | 'remove' | 'pull';

/**
 * The daemon's events service: `type=plugin`, `Actor.ID = id`, attribute `name`. For `pull`
 * (install and upgrade) the actor is the remote reference in familiar form, as in moby.
 */
export interface PluginEvents {
  logPluginEvent(id: string, name: string, action: PluginEventAction): void;
}

/**
 * The content store of plugin images under `<root>/storage` (`@berth/plugin-registry`'s
 * `ContentStore` fits): the manager only collects garbage in it — blobs no plugin references —
 * after a remove, a failed install and an upgrade.
 */
export interface ContentStoreLike {
  /** Every committed blob's digest (`sha256:<hex>`). */
  list(): Promise<string[]>;
  delete(digest: string): Promise<void>;
  /** Clears what interrupted writes left; called once when the manager opens. */
  removeIngests?(): Promise<void>;
}

/** A plugin image as moby records it beside a plugin (`Config`, `Blobsums`, `Manifest` in `config.json`). */
export interface PluginImageRecord {
  /** Digest of the config blob (`application/vnd.docker.plugin.v1+json`). */
  readonly configDigest: string;
  /** Digest of the schema2 (or OCI) manifest. */
  readonly manifestDigest: string;
  /** Digests of the layers, in order. */
  readonly blobsums: readonly string[];
}
