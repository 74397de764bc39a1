// The Engine API `Plugin` object (moby `api/types/plugin`), field names as on the wire. The plugin
// store declares the same shape; this copy is what the manager reads, writes and persists. Go emits
// nil slices as `null`, hence the `| null` on arrays.

export interface PluginMount {
  Description: string;
  Destination: string;
  Name: string;
  Options: string[] | null;
  Settable: string[] | null;
  Source: string | null;
  Type: string;
}

export interface PluginDevice {
  Description: string;
  Name: string;
  Path: string | null;
  Settable: string[] | null;
}

export interface PluginEnv {
  Description: string;
  Name: string;
  Settable: string[] | null;
  Value: string | null;
}

export interface PluginArgs {
  Description: string;
  Name: string;
  Settable: string[] | null;
  Value: string[] | null;
}

export interface PluginInterface {
  /** `""` or `moby.plugins.http/v1`; omitted when empty. */
  ProtocolScheme?: string;
  /** The socket file name the plugin listens on inside `/run/docker/plugins`. */
  Socket: string;
  /** Text-encoded capabilities, e.g. `docker.volumedriver/1.0`. */
  Types: string[] | null;
}

export interface PluginLinux {
  AllowAllDevices: boolean;
  Capabilities: string[] | null;
  Devices: PluginDevice[] | null;
}

export interface PluginUser {
  UID?: number;
  GID?: number;
}

export interface PluginRootfs {
  type?: string;
  diff_ids: string[] | null;
}

export interface PluginConfig {
  Args: PluginArgs;
  Description: string;
  Documentation: string;
  Entrypoint: string[] | null;
  Env: PluginEnv[] | null;
  Interface: PluginInterface;
  IpcHost: boolean;
  Linux: PluginLinux;
  Mounts: PluginMount[] | null;
  Network: { Type: string };
  PidHost: boolean;
  PropagatedMount: string;
  User?: PluginUser;
  WorkDir: string;
  rootfs?: PluginRootfs;
}

export interface PluginSettings {
  Mounts: PluginMount[] | null;
  Env: string[] | null;
  Args: string[] | null;
  Devices: PluginDevice[] | null;
}

export interface PluginObject {
  Id?: string;
  /** Always tagged: `sshfs:latest`. */
  Name: string;
  Enabled: boolean;
  PluginReference?: string;
  Settings: PluginSettings;
  Config: PluginConfig;
}

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
 * The capability of each `Config.Interface.Types` entry, lower-case as moby's filters see it:
 * `docker.volumedriver/1.0` ⇒ `{ prefix: 'docker', capability: 'volumedriver', version: '1.0' }`.
 */
export function interfaceTypes(config: PluginConfig): Array<{ prefix: string; capability: string; version: string }> {
  return (config.Interface.Types ?? []).map((text) => {
    const slash = text.indexOf('/');
    const qualified = slash < 0 ? text : text.slice(0, slash);
    const version = slash < 0 ? '' : text.slice(slash + 1);
    const dot = qualified.lastIndexOf('.');
    return dot < 0
      ? { prefix: '', capability: qualified, version }
      : { prefix: qualified.slice(0, dot), capability: qualified.slice(dot + 1), version };
  });
}
