import { goBool, goPointer, goSlice, goString, goStringSlice, goStruct, goUint32, type GoType } from '@berth/gocompat';

// moby's plugin types (`api/types/plugin`) as Go's `encoding/json` sees them: the field names,
// Go type names and `omitempty` fields of `config.json` and of the Engine API `Plugin` object.
// Plugin authors write `config.json` for dockerd and rely on Go's decoding of it.

const MOUNT = goStruct('plugin.Mount', {
  Description: goString,
  Destination: goString,
  Name: goString,
  Options: goStringSlice,
  Settable: goStringSlice,
  Source: goPointer(goString),
  Type: goString,
});

const DEVICE = goStruct('plugin.Device', { Description: goString, Name: goString, Path: goPointer(goString), Settable: goStringSlice });

const ENV = goStruct('plugin.Env', { Description: goString, Name: goString, Settable: goStringSlice, Value: goPointer(goString) });

/** `plugin.Config`, a plugin's `config.json`. */
export const PLUGIN_CONFIG_TYPE: GoType = goStruct(
  'plugin.Config',
  {
    Args: goStruct('plugin.Args', { Description: goString, Name: goString, Settable: goStringSlice, Value: goStringSlice }),
    Description: goString,
    Documentation: goString,
    Entrypoint: goStringSlice,
    Env: goSlice('[]plugin.Env', ENV),
    Interface: goStruct(
      'plugin.Interface',
      { ProtocolScheme: goString, Socket: goString, Types: goSlice('[]plugin.CapabilityID', goString) },
      ['ProtocolScheme'],
    ),
    IpcHost: goBool,
    Linux: goStruct('plugin.LinuxConfig', {
      AllowAllDevices: goBool,
      Capabilities: goStringSlice,
      Devices: goSlice('[]plugin.Device', DEVICE),
    }),
    Mounts: goSlice('[]plugin.Mount', MOUNT),
    Network: goStruct('plugin.NetworkConfig', { Type: goString }),
    PidHost: goBool,
    PropagatedMount: goString,
    User: goPointer(goStruct('plugin.User', { GID: goUint32, UID: goUint32 }, ['GID', 'UID'])),
    WorkDir: goString,
    rootfs: goPointer(goStruct('plugin.RootFS', { diff_ids: goStringSlice, type: goString }, ['type'])),
  },
  ['User', 'rootfs'],
);

/** `plugin.Plugin`, the Engine API object (and what `config.json` under the plugin root keeps as `plugin`). */
export const PLUGIN_OBJECT_TYPE: GoType = goStruct(
  'plugin.Plugin',
  {
    Config: PLUGIN_CONFIG_TYPE,
    Enabled: goBool,
    Id: goString,
    Name: goString,
    PluginReference: goString,
    Settings: goStruct('plugin.Settings', {
      Args: goStringSlice,
      Devices: goSlice('[]plugin.Device', DEVICE),
      Env: goStringSlice,
      Mounts: goSlice('[]plugin.Mount', MOUNT),
    }),
  },
  ['Id', 'PluginReference'],
);
