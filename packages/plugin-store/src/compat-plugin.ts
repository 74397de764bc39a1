import type { PluginClient } from './plugin-client.js';

/** The protocol every plugin berth talks to speaks (moby's `plugins.ProtocolSchemeHTTPV1`). */
export const PROTOCOL_SCHEME_HTTP_V1 = 'moby.plugins.http/v1';

/**
 * What `PluginStore.get` returns for both plugin generations (moby's `plugingetter.CompatPlugin`):
 * a legacy (v1) plugin found through `/run/docker/plugins` or a spec file, or a managed plugin.
 */
export interface CompatPlugin {
  /** A legacy plugin's name, or a managed plugin's tagged reference (`sshfs:latest`). */
  readonly name: string;
  /** A client for the plugin's socket; throws for a managed plugin that is not running. */
  client(): PluginClient;
  /**
   * Maps a path the plugin reported (a mountpoint) to the host: unchanged for legacy plugins, under
   * the rootfs or propagated mount for managed ones.
   */
  scopedPath(path: string): string;
  isV1(): boolean;
  protocol(): string;
}

/** How `PluginStore.get` changes a managed plugin's reference count. */
export type RefMode = 'lookup' | 'acquire' | 'release';

export const REF_DELTA: Readonly<Record<RefMode, number>> = { lookup: 0, acquire: 1, release: -1 };
