import { invalidParameter } from '@berth/errdefs';
import { goQuote, parseGoUrl } from '@berth/gocompat';
import { ramInBytes } from './ram-in-bytes.js';

/** The options of a local volume as kept in `opts.json` (moby's `optsConfig`). */
export interface LocalVolumeOptions {
  /** `type=`: the file system type given to mount, e.g. `tmpfs`, `nfs`, `none`. */
  readonly mountType: string;
  /** `o=`: the mount options, e.g. `bind` or `addr=10.0.0.1,rw`. */
  readonly mountOpts: string;
  /** `device=`: what to mount. */
  readonly mountDevice: string;
  /** `size=` in bytes; 0 when no quota was asked for. */
  readonly quotaSize: number;
}

/** The driver options the local driver accepts (moby's `validOpts`). */
export const LOCAL_DRIVER_OPTIONS: readonly string[] = ['type', 'o', 'device', 'size'];

// Checked in this order so that the option reported missing is always the same one.
const REQUIRED_WITH: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['device', ['type']],
  ['type', ['device']],
  ['o', ['device', 'type']],
];

export interface ValidateLocalOptionsOptions {
  /** Whether the volumes root supports size quotas; without it any `size` above 0 is refused. */
  quotaSupported: boolean;
}

/**
 * Throws an `invalid-parameter` error with moby's text unless `opts` are valid options for a local
 * volume. moby checks, in order: unknown options, the CIFS device URL, `size`, mandatory pairs.
 */
export function validateLocalOptions(
  opts: Readonly<Record<string, string>> | undefined,
  { quotaSupported }: ValidateLocalOptionsOptions,
): void {
  if (opts === undefined) return;
  const keys = Object.keys(opts).sort();
  for (const key of keys) {
    if (!LOCAL_DRIVER_OPTIONS.includes(key)) throw invalidParameter(`invalid option: ${goQuote(key)}`);
  }
  const device = opts['device'] ?? '';
  if (opts['type'] === 'cifs' && device !== '') {
    let port: string;
    try {
      port = parseGoUrl(device).port;
    } catch (err) {
      throw invalidParameter(`error parsing mount device url: ${(err as Error).message}`, { cause: err });
    }
    if (port !== '') throw invalidParameter("port not allowed in CIFS device URL, include 'port' in 'o='");
  }
  if (opts['size'] !== undefined) {
    const size = parseSize(opts['size']);
    if (size > 0 && !quotaSupported) throw invalidParameter('quota size requested but no quota support');
  }
  for (const [key, required] of REQUIRED_WITH) {
    if (!Object.hasOwn(opts, key)) continue;
    for (const other of required) {
      if (!Object.hasOwn(opts, other)) throw invalidParameter(`missing required option: ${goQuote(other)}`);
    }
  }
}

/** The options to keep for validated driver options; `undefined` when there are none (no `opts.json`). */
export function toLocalVolumeOptions(opts: Readonly<Record<string, string>> | undefined): LocalVolumeOptions | undefined {
  if (opts === undefined || Object.keys(opts).length === 0) return undefined;
  return {
    mountType: opts['type'] ?? '',
    mountOpts: opts['o'] ?? '',
    mountDevice: opts['device'] ?? '',
    quotaSize: opts['size'] === undefined ? 0 : parseSize(opts['size']),
  };
}

/**
 * The driver options that give `options` (the inverse of {@link toLocalVolumeOptions}), for records
 * rebuilt from `opts.json`. A `size` of 0 reads as none: `opts.json` does not tell them apart.
 */
export function toDriverOptions(options: LocalVolumeOptions | undefined): Record<string, string> | undefined {
  if (options === undefined) return undefined;
  const opts: Record<string, string> = {};
  if (options.mountType !== '') opts['type'] = options.mountType;
  if (options.mountOpts !== '') opts['o'] = options.mountOpts;
  if (options.mountDevice !== '') opts['device'] = options.mountDevice;
  if (options.quotaSize > 0) opts['size'] = String(options.quotaSize);
  return Object.keys(opts).length === 0 ? undefined : opts;
}

/** Whether the mount options ask for a recursive bind (`rbind`): such a mount has sub-mounts to unmount with it. */
export function isRecursiveBind(options: LocalVolumeOptions | undefined): boolean {
  return options !== undefined && options.mountOpts.split(',').includes('rbind');
}

function parseSize(value: string): number {
  try {
    return ramInBytes(value);
  } catch (err) {
    throw invalidParameter((err as Error).message, { cause: err });
  }
}

/** Only volumes with a device or a type are mounted; `size` alone just sets a quota. */
export function needsMount(options: LocalVolumeOptions | undefined): boolean {
  return options !== undefined && (options.mountDevice !== '' || options.mountType !== '');
}

function isEmpty(options: LocalVolumeOptions): boolean {
  return options.mountType === '' && options.mountOpts === '' && options.mountDevice === '' && options.quotaSize === 0;
}

/** `opts.json` content as moby writes it (Go's `json.Marshal`, HTML characters escaped). */
export function encodeOptsJson(options: LocalVolumeOptions): string {
  const json = JSON.stringify({
    MountType: options.mountType,
    MountOpts: options.mountOpts,
    MountDevice: options.mountDevice,
    Quota: { Size: options.quotaSize },
  });
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Reads `opts.json` content with Go's decoding rules (field names case-insensitive, unknown fields
 * ignored, `null` leaves a field empty). `null` and all-empty content mean no options (`undefined`).
 * Throws an `Error` when the content is not valid JSON or a field has the wrong type.
 */
export function decodeOptsJson(text: string): LocalVolumeOptions | undefined {
  const decoded: unknown = JSON.parse(text);
  if (decoded === null) return undefined;
  if (!isObject(decoded)) throw new Error('options must be a JSON object');
  const fields = { mounttype: '', mountopts: '', mountdevice: '' };
  let quotaSize = 0;
  for (const [key, value] of Object.entries(decoded)) {
    const field = key.toLowerCase();
    if (field === 'quota') {
      if (value === null) continue;
      if (!isObject(value)) throw new Error('Quota must be a JSON object');
      for (const [quotaKey, size] of Object.entries(value)) {
        if (quotaKey.toLowerCase() !== 'size' || size === null) continue;
        if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
          throw new Error('Quota.Size must be a non-negative integer');
        }
        quotaSize = size;
      }
    } else if (Object.hasOwn(fields, field)) {
      if (value === null) continue;
      if (typeof value !== 'string') throw new Error(`${key} must be a string`);
      fields[field as keyof typeof fields] = value;
    }
  }
  const options = {
    mountType: fields.mounttype,
    mountOpts: fields.mountopts,
    mountDevice: fields.mountdevice,
    quotaSize,
  };
  return isEmpty(options) ? undefined : options;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
