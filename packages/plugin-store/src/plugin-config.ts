import { invalidParameter, system } from '@berth/errdefs';
import { decodeGo, GoJsonError, unmarshalValue, type JsonValue } from '@berth/gocompat';
import { PLUGIN_CONFIG_TYPE, PLUGIN_OBJECT_TYPE } from './plugin-json.js';
import type { PluginConfig, PluginObject, PluginSettings } from './plugin-types.js';

/** Largest `config.json` accepted from a build context or a registry; real ones are a few KiB. */
export const DEFAULT_MAX_CONFIG_BYTES = 1 << 20;

/**
 * A plugin's `config.json` as moby's `CreateFromContext` reads it: any JSON object decodes (Go's
 * rules: case-insensitive names, unknown fields ignored, `{"description":"foo plugin"}` is valid),
 * with every field present at its zero value. Anything else is `failed to parse config: …` — a
 * 400 here, the caller's mistake (moby: 500).
 */
export function parsePluginConfig(text: string): PluginConfig {
  try {
    return decodeGo(unmarshalValue(Buffer.from(text)), PLUGIN_CONFIG_TYPE, { complete: true }) as PluginConfig;
  } catch (err) {
    if (err instanceof GoJsonError) throw invalidParameter(`failed to parse config: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * The Engine API object as `<data-root>/plugins/<id>/config.json` keeps it under `plugin`, decoded
 * with Go's rules (every field present at its zero value). A value of the wrong shape is a
 * `system` error with Go's text (`json: cannot unmarshal …`).
 */
export function decodePluginObject(value: JsonValue): PluginObject {
  try {
    return decodeGo(value, PLUGIN_OBJECT_TYPE, { complete: true }) as PluginObject;
  } catch (err) {
    if (err instanceof GoJsonError) throw system(err.message, { cause: err });
    throw err;
  }
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
