import { BerthError } from '@berth/errdefs';
import { goField, isJsonObject, jsonTypeName, parseRFC3339 } from '@berth/gocompat';
import type { VolumePlugin } from './types.js';

/** moby's deadline of `VolumeDriver.Create` and `VolumeDriver.Mount`. */
export const VOLUME_DRIVER_LONG_TIMEOUT_MS = 120_000;
/** moby's deadline of every other VolumeDriver call. */
export const VOLUME_DRIVER_SHORT_TIMEOUT_MS = 60_000;

export interface VolumeDriverTimeouts {
  /** `Create` and `Mount`. */
  readonly longMs: number;
  /** `Remove`, `Path`, `Unmount`, `List`, `Get`, `Capabilities`. */
  readonly shortMs: number;
}

/** A volume as the plugin describes it (moby's `proxyVolume`); the mountpoint as the plugin reported it. */
export interface ProxyVolume {
  readonly mountpoint: string;
  readonly createdAt?: Date | undefined;
  readonly status?: Record<string, unknown> | undefined;
}

type Answer = Record<string, unknown>;

/**
 * The VolumeDriver protocol (moby's generated `volumeDriverProxy`): one method per endpoint, each
 * with its request body, its deadline and its answer checked. Answers are read as Go decodes them:
 * field names case-insensitive, missing fields and `null` are zero values, unknown fields ignored.
 *
 * Errors: a 200 carrying `{"Err": "<text>"}` rejects with exactly `<text>` (kind `system`), as moby;
 * the client's errors (non-200: `VolumeDriver.<M>: <Err>`, transport, deadline) pass through. An
 * answer that cannot be used (not JSON, wrong types, an invalid `CreatedAt`) is `unavailable`: it
 * says nothing about the volume, so the volume service must not read it as "no such volume" and
 * forget the volume, which it does for the plugin's own errors.
 */
export class VolumeDriverProxy {
  readonly #plugin: VolumePlugin;
  readonly #timeouts: VolumeDriverTimeouts;

  constructor(plugin: VolumePlugin, timeouts: VolumeDriverTimeouts) {
    this.#plugin = plugin;
    this.#timeouts = timeouts;
  }

  async create(name: string, opts: Readonly<Record<string, string>> | null, signal?: AbortSignal): Promise<void> {
    await this.#call('Create', { Name: name, Opts: opts }, this.#timeouts.longMs, signal);
  }

  async remove(name: string, signal?: AbortSignal): Promise<void> {
    await this.#call('Remove', { Name: name }, this.#timeouts.shortMs, signal);
  }

  async path(name: string, signal?: AbortSignal): Promise<string> {
    const answer = await this.#call('Path', { Name: name }, this.#timeouts.shortMs, signal);
    return stringField('Path', answer, 'Mountpoint');
  }

  async mount(name: string, id: string, signal?: AbortSignal): Promise<string> {
    const answer = await this.#call('Mount', { Name: name, ID: id }, this.#timeouts.longMs, signal);
    return stringField('Mount', answer, 'Mountpoint');
  }

  async unmount(name: string, id: string, signal?: AbortSignal): Promise<void> {
    await this.#call('Unmount', { Name: name, ID: id }, this.#timeouts.shortMs, signal);
  }

  /** Name and mountpoint of each volume; the rest of a `List` item is not used (moby). */
  async list(signal?: AbortSignal): Promise<Array<{ name: string; mountpoint: string }>> {
    const answer = await this.#call('List', {}, this.#timeouts.shortMs, signal);
    const volumes = goField(answer, 'Volumes');
    if (volumes === undefined || volumes === null) return [];
    if (!Array.isArray(volumes)) throw malformed('List', `Volumes is ${a(volumes)}, not an array`);
    const out: Array<{ name: string; mountpoint: string }> = [];
    for (const item of volumes as unknown[]) {
      if (item === null) continue;
      if (!isJsonObject(item)) throw malformed('List', `an item of Volumes is ${a(item)}, not an object`);
      const name = stringField('List', item, 'Name', 'Volumes[].');
      // A nameless item cannot be addressed by any later call.
      if (name !== '') out.push({ name, mountpoint: stringField('List', item, 'Mountpoint', 'Volumes[].') });
    }
    return out;
  }

  /** `undefined` when the plugin answers without a volume (`{}`, `{"Volume": null}`) and without `Err`. */
  async get(name: string, signal?: AbortSignal): Promise<ProxyVolume | undefined> {
    const answer = await this.#call('Get', { Name: name }, this.#timeouts.shortMs, signal);
    const volume = goField(answer, 'Volume');
    if (volume === undefined || volume === null) return undefined;
    if (!isJsonObject(volume)) throw malformed('Get', `Volume is ${a(volume)}, not an object`);
    return {
      mountpoint: stringField('Get', volume, 'Mountpoint', 'Volume.'),
      createdAt: createdAtField(volume),
      status: statusField(volume),
    };
  }

  /** The scope as the plugin wrote it (`''` when it gave none). */
  async capabilities(signal?: AbortSignal): Promise<{ scope: string }> {
    const answer = await this.#call('Capabilities', {}, this.#timeouts.shortMs, signal);
    const capabilities = goField(answer, 'Capabilities');
    if (capabilities === undefined || capabilities === null) return { scope: '' };
    if (!isJsonObject(capabilities)) throw malformed('Capabilities', `Capabilities is ${a(capabilities)}, not an object`);
    return { scope: stringField('Capabilities', capabilities, 'Scope', 'Capabilities.') };
  }

  async #call(method: string, args: Answer, timeoutMs: number, signal: AbortSignal | undefined): Promise<Answer> {
    let answer: unknown;
    try {
      answer = await this.#plugin.client().call(`VolumeDriver.${method}`, args, { signal, timeoutMs });
    } catch (err) {
      throw undecodedAsUnavailable(err);
    }
    if (!isJsonObject(answer)) throw malformed(method, `the answer is ${a(answer)}, not an object`);
    const err = goField(answer, 'Err');
    if (typeof err === 'string' && err !== '') throw new BerthError('system', err);
    if (err !== undefined && err !== null && typeof err !== 'string') throw malformed(method, `Err is ${a(err)}, not a string`);
    return answer;
  }
}

function stringField(method: string, object: Answer, field: string, prefix = ''): string {
  const value = goField(object, field);
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') throw malformed(method, `${prefix}${field} is ${a(value)}, not a string`);
  return value;
}

/** moby decodes `CreatedAt` into a `time.Time`: RFC 3339 or the whole `Get` fails. An empty string counts as none. */
function createdAtField(volume: Answer): Date | undefined {
  const value = goField(volume, 'CreatedAt');
  if (value === undefined || value === null || value === '') return undefined;
  const date = typeof value === 'string' ? parseRFC3339(value) : undefined;
  if (date === undefined) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : a(value);
    throw malformed('Get', `Volume.CreatedAt ${shown} is not an RFC 3339 time such as "2006-01-02T15:04:05Z"`);
  }
  return date;
}

function statusField(volume: Answer): Record<string, unknown> | undefined {
  const value = goField(volume, 'Status');
  if (value === undefined || value === null) return undefined;
  if (!isJsonObject(value)) throw malformed('Get', `Volume.Status is ${a(value)}, not an object`);
  return value;
}

function malformed(method: string, detail: string): BerthError {
  return new BerthError('unavailable', `VolumeDriver.${method}: the plugin's answer is malformed: ${detail}`);
}

const a = (value: unknown): string => {
  const type = jsonTypeName(value);
  return type === 'null' ? 'null' : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
};

/**
 * A `system` error without an HTTP status is a 200 the client could not decode (not JSON, too
 * large): see the class comment for why it becomes `unavailable`.
 */
function undecodedAsUnavailable(err: unknown): unknown {
  if (!BerthError.is(err) || err.kind !== 'system' || hasStatusCode(err)) return err;
  return new BerthError('unavailable', err.message, { cause: err });
}

function hasStatusCode(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 32 && typeof current === 'object' && current !== null; depth++) {
    if (typeof (current as { statusCode?: unknown }).statusCode === 'number') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
