import { system } from '@berth/errdefs';
import type { PluginObject } from '@berth/plugin-store';

// `docker plugin set <plugin> name[.field][=value]…` (moby `v2/settable.go` and `Plugin.Set`). moby
// answers every one of these errors with 500; berth keeps the kind so the texts stay the same.

export const ALLOWED_SETTABLE_FIELDS = {
  env: ['value'],
  args: ['value'],
  devices: ['path'],
  mounts: ['source'],
} as const;

export const errMultipleFields = 'multiple fields are settable, one must be specified';
export const errInvalidFormat = 'invalid format, must be <name>[.<field>][=<value>]';

export interface Settable {
  name: string;
  field: string;
  value: string;
}

/** Parses `name[.field][=value]`: no `=` means an empty value; the field follows the last `.`. */
export function newSettable(arg: string): Settable {
  const eq = arg.indexOf('=');
  if (eq === 0) throw system(errInvalidFormat);
  const set: Settable = { name: eq < 0 ? arg : arg.slice(0, eq), field: '', value: eq < 0 ? '' : arg.slice(eq + 1) };
  const dot = set.name.lastIndexOf('.');
  if (dot > 0) {
    set.field = set.name.slice(dot + 1);
    set.name = set.name.slice(0, dot);
  }
  return set;
}

/** `name.field` when a field was given, else `name`. */
export function prettyName(set: Settable): string {
  return set.field === '' ? set.name : `${set.name}.${set.field}`;
}

/**
 * Whether the (possibly defaulted) field may be set: it must be allowed for the kind of setting and
 * listed in the item's `Settable`. No field and exactly one settable field picks that one (and
 * records it in `set`); more than one is an error.
 */
export function isSettable(set: Settable, allowed: readonly string[], settable: readonly string[] | null): boolean {
  const fields = settable ?? [];
  if (set.field === '') {
    if (fields.length === 1) set.field = fields[0] as string;
    else if (fields.length > 1) throw system(errMultipleFields);
  }
  return allowed.includes(set.field) && fields.includes(set.field);
}

/** Replaces `NAME=…` in place, or appends it. */
export function updateSettingsEnv(env: string[], set: Settable): void {
  const entry = `${set.name}=${set.value}`;
  const at = env.findIndex((e) => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e) === set.name);
  if (at >= 0) env[at] = entry;
  else env.push(entry);
}

/**
 * Applies `args` to a copy of the plugin's settings and returns the new `Settings` and `Config`;
 * nothing changes when one of them fails (moby applies those before the failing one).
 *
 * Lookup order is moby's: env, mounts, devices, args. A mount's source and a device's path are
 * written to both `Config` and `Settings`, which in moby alias each other until a restart.
 */
export function applySettings(object: PluginObject, args: readonly string[]): Pick<PluginObject, 'Settings' | 'Config'> {
  const sets = args.map(newSettable);
  const config = structuredClone(object.Config);
  const settings = structuredClone(object.Settings);
  next: for (const set of sets) {
    const notSettable = (): Error => system(`"${prettyName(set)}" is not settable`);
    for (const env of config.Env ?? []) {
      if (env.Name !== set.name) continue;
      if (!isSettable(set, ALLOWED_SETTABLE_FIELDS.env, env.Settable)) throw notSettable();
      settings.Env ??= [];
      updateSettingsEnv(settings.Env, set);
      continue next;
    }
    for (const mount of config.Mounts ?? []) {
      if (mount.Name !== set.name) continue;
      if (!isSettable(set, ALLOWED_SETTABLE_FIELDS.mounts, mount.Settable)) throw notSettable();
      if (mount.Source === null) throw system('plugin config has no mount source');
      mount.Source = set.value;
      for (const m of settings.Mounts ?? []) if (m.Name === set.name) m.Source = set.value;
      continue next;
    }
    for (const device of config.Linux.Devices ?? []) {
      if (device.Name !== set.name) continue;
      if (!isSettable(set, ALLOWED_SETTABLE_FIELDS.devices, device.Settable)) throw notSettable();
      if (device.Path === null) throw system('plugin config has no device path');
      device.Path = set.value;
      for (const d of settings.Devices ?? []) if (d.Name === set.name) d.Path = set.value;
      continue next;
    }
    if (config.Args.Name === set.name) {
      if (!isSettable(set, ALLOWED_SETTABLE_FIELDS.args, config.Args.Settable)) throw notSettable();
      settings.Args = set.value.split(' ');
      continue next;
    }
    throw system(`setting "${set.name}" not found in the plugin configuration`);
  }
  return { Settings: settings, Config: config };
}
