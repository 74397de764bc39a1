import { emptyPluginConfig, Plugin, type PluginObject } from '../src/index.js';
import { fakeClock } from './fake-plugin.js';

export interface ManagedFields extends Partial<PluginObject> {
  types?: string[];
  propagatedMount?: string;
}

/** A managed plugin record as the plugin manager would build it (default: `test:latest`, disabled). */
export function managed(fields: ManagedFields = {}): Plugin {
  const { types = ['docker.volumedriver/1.0'], propagatedMount = '', ...object } = fields;
  const config = emptyPluginConfig();
  config.Interface = { Socket: 'plugins.sock', Types: types };
  config.PropagatedMount = propagatedMount;
  return new Plugin({
    object: {
      Id: 'a'.repeat(64),
      Name: 'test:latest',
      Enabled: false,
      Settings: { Mounts: [], Env: [], Args: [], Devices: [] },
      Config: config,
      ...object,
    },
    rootfs: '/var/lib/berth/plugins/aaaa/rootfs',
    client: { clock: fakeClock() },
  });
}
