import { parseCapability, type CapabilityID, type PluginConfig, type PluginSettings } from '@berth/plugin-store';

// The Engine API `Plugin` object types (moby `api/types/plugin`) are the plugin store's; what the
// manager adds to them lives here.

/** One entry of `GET /plugins/privileges` (moby `plugin.Privilege`). */
export interface PluginPrivilege {
  Name: string;
  Description: string;
  Value: string[] | null;
}

/** moby's `InitEmptySettings`: what the config offers, copied into the user's settings. */
export function initEmptySettings(config: PluginConfig): PluginSettings {
  return {
    Mounts: (config.Mounts ?? []).map((m) => structuredClone(m)),
    Env: (config.Env ?? []).filter((e) => e.Value !== null).map((e) => `${e.Name}=${e.Value ?? ''}`),
    Args: [...(config.Args.Value ?? [])],
    Devices: (config.Linux.Devices ?? []).map((d) => structuredClone(d)),
  };
}

/**
 * The capability of each `Config.Interface.Types` entry (moby's `CapabilityID`):
 * `docker.volumedriver/1.0` ⇒ `{ prefix: 'docker', capability: 'volumedriver', version: '1.0' }`.
 */
export function interfaceTypes(config: PluginConfig): CapabilityID[] {
  return (config.Interface.Types ?? []).map(parseCapability);
}
