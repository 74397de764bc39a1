import { system } from '@berth/errdefs';
import type { PluginConfig } from './plugin-types.js';

/**
 * One entry of a managed plugin's `Config.Interface.Types`, e.g. `docker.volumedriver/1.0`
 * (moby's `plugin.CapabilityID`).
 */
export interface CapabilityID {
  readonly prefix: string;
  readonly capability: string;
  readonly version: string;
}

/**
 * Parses the text form as moby does: the version after the first `/`, then prefix and capability
 * split on the last `.` (no `.` means no prefix). Never fails, like moby's `UnmarshalText`.
 */
export function parseCapability(text: string): CapabilityID {
  const slash = text.indexOf('/');
  const qualified = slash < 0 ? text : text.slice(0, slash);
  const version = slash < 0 ? '' : text.slice(slash + 1);
  const dot = qualified.lastIndexOf('.');
  if (dot < 0) return { prefix: '', capability: qualified, version };
  return { prefix: qualified.slice(0, dot), capability: qualified.slice(dot + 1), version };
}

/** `<prefix>.<capability>/<version>`; rejects what would not parse back to the same value. */
export function formatCapability(id: CapabilityID): string {
  if (id.capability.includes('.')) throw system(`capability "${id.capability}" cannot contain a dot`);
  if (id.prefix.includes('/')) throw system(`prefix "${id.prefix}" cannot contain a slash`);
  if (id.capability.includes('/')) throw system(`capability "${id.capability}" cannot contain a slash`);
  return `${id.prefix}.${id.capability}/${id.version}`;
}

/** The interface type a capability is registered under for managed plugins: `docker.<cap>/1.0`. */
export function pluginType(capability: string): string {
  return `docker.${capability.toLowerCase()}/1.0`;
}

/**
 * The capability of each `Config.Interface.Types` entry (moby's `CapabilityID`):
 * `docker.volumedriver/1.0` ⇒ `{ prefix: 'docker', capability: 'volumedriver', version: '1.0' }`.
 */
export function interfaceTypes(config: PluginConfig): CapabilityID[] {
  return (config.Interface.Types ?? []).map(parseCapability);
}
