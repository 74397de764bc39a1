import { invalidParameter } from '@berth/errdefs';
import { CONFIG_SHAPE, decodeGo, GoJsonError } from './go-json.js';
import type { PluginConfig } from '@berth/plugin-store';

/**
 * A plugin's `config.json` as moby's `CreateFromContext` reads it: any JSON object decodes (Go's
 * rules: case-insensitive names, unknown fields ignored, `{"description":"foo plugin"}` is valid),
 * with every field present at its zero value. Anything else is `failed to parse config: …` — a
 * 400 here, the caller's mistake (moby: 500).
 */
export function parsePluginConfig(text: string): PluginConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidParameter(`failed to parse config: ${(err as Error).message}`, { cause: err });
  }
  try {
    return decodeGo(value, CONFIG_SHAPE) as PluginConfig;
  } catch (err) {
    if (err instanceof GoJsonError) throw invalidParameter(`failed to parse config: ${err.message}`, { cause: err });
    throw err;
  }
}
