import { system } from '@berth/errdefs';
import type { PluginConfig } from './plugin-types.js';

/** One privilege a plugin asks for (moby `plugin.Privilege`): an entry of `GET /plugins/privileges`. */
export interface PluginPrivilege {
  Name: string;
  Description: string;
  Value: string[] | null;
}

/** The privileges a plugin's config asks for, in moby's order (`computePrivileges`). */
export function computePrivileges(config: PluginConfig): PluginPrivilege[] {
  const out: PluginPrivilege[] = [];
  const network = config.Network.Type;
  if (network !== '' && network !== 'null' && network !== 'bridge') {
    out.push({ Name: 'network', Description: 'permissions to access a network', Value: [network] });
  }
  if (config.IpcHost) {
    out.push({ Name: 'host ipc namespace', Description: 'allow access to host ipc namespace', Value: ['true'] });
  }
  if (config.PidHost) {
    out.push({ Name: 'host pid namespace', Description: 'allow access to host pid namespace', Value: ['true'] });
  }
  for (const mount of config.Mounts ?? []) {
    if (mount.Source !== null) out.push({ Name: 'mount', Description: 'host path to mount', Value: [mount.Source] });
  }
  for (const device of config.Linux.Devices ?? []) {
    if (device.Path !== null) out.push({ Name: 'device', Description: 'host device to access', Value: [device.Path] });
  }
  if (config.Linux.AllowAllDevices) {
    out.push({ Name: 'allow-all-devices', Description: "allow 'rwm' access to all devices", Value: ['true'] });
  }
  if ((config.Linux.Capabilities ?? []).length > 0) {
    out.push({
      Name: 'capabilities',
      Description: 'list of additional capabilities required',
      Value: [...(config.Linux.Capabilities ?? [])],
    });
  }
  return out;
}

/**
 * Refuses privileges that differ from the required ones (`incorrect privileges`): compared as
 * multisets of names with their values, order and descriptions ignored. For pull and upgrade,
 * where the client sends what the user accepted.
 */
export function validatePrivileges(required: readonly PluginPrivilege[], given: readonly PluginPrivilege[]): void {
  if (required.length !== given.length) throw system('incorrect privileges');
  const key = (p: PluginPrivilege): string => JSON.stringify([p.Name, [...(p.Value ?? [])].sort()]);
  const a = required.map(key).sort();
  const b = given.map(key).sort();
  // moby's loop starts at index 1 and so never compares the first privilege; every one counts here.
  if (a.some((k, i) => k !== b[i])) throw system('incorrect privileges');
}
