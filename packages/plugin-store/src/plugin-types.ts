// The Engine API `Plugin` object (moby `api/types/plugin`), field names as on the wire. Go emits
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
  /** `""` or `moby.plugins.http/v1`. */
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
  /** Where, inside the plugin, the mounts it creates appear; re-scoped to the host by `scopedPath`. */
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
  /** Always tagged: `sshfs:latest`, `vieux/sshfs:1.2`. */
  Name: string;
  Enabled: boolean;
  PluginReference?: string;
  Settings: PluginSettings;
  Config: PluginConfig;
}

/** A `PluginConfig` with every field at its zero value, to build configs from. */
export function emptyPluginConfig(): PluginConfig {
  return {
    Args: { Description: '', Name: '', Settable: null, Value: null },
    Description: '',
    Documentation: '',
    Entrypoint: null,
    Env: null,
    Interface: { Socket: '', Types: null },
    IpcHost: false,
    Linux: { AllowAllDevices: false, Capabilities: null, Devices: null },
    Mounts: null,
    Network: { Type: '' },
    PidHost: false,
    PropagatedMount: '',
    WorkDir: '',
  };
}
