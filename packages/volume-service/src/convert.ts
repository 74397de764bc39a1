import { formatRFC3339 } from '@berth/gocompat';
import type { StoredVolume } from './stored-volume.js';
import type { VolumeInfo } from './types.js';

export interface ToVolumeInfoOptions {
  mountpoint: string;
  /** Fill `Status` from the driver (`volume inspect`). */
  status?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** The Engine API `Volume` object, fields in Go's order; `Status` omitted when empty, as Go's omitempty. */
export async function toVolumeInfo(v: StoredVolume, options: ToVolumeInfoOptions): Promise<VolumeInfo> {
  const known = toVolumeInfoSync(v, options);
  if (known !== undefined) return known;
  let createdAt: Date | undefined;
  try {
    createdAt = await v.volume.createdAt({ signal: options.signal });
  } catch {
    createdAt = undefined;
  }
  return build(v, formatRFC3339(createdAt), options.mountpoint, statusOf(v, options));
}

/**
 * `toVolumeInfo` without a promise, for volumes whose creation time is known locally (kept by the
 * store, or `createdAtSync`); `undefined` for the others, which need `toVolumeInfo`.
 */
export function toVolumeInfoSync(v: StoredVolume, options: ToVolumeInfoOptions): VolumeInfo | undefined {
  const status = statusOf(v, options);
  if (v.createdAt !== undefined) {
    return status === undefined && options.mountpoint === v.volume.cachedPath() ? listedInfo(v) : build(v, createdAtText(v.createdAt), options.mountpoint, status);
  }
  if (v.volume.createdAtSync === undefined) return undefined;
  let createdAt: Date | undefined;
  try {
    createdAt = v.volume.createdAtSync();
  } catch {
    createdAt = undefined;
  }
  return build(v, formatRFC3339(createdAt), options.mountpoint, status);
}

/**
 * What `volume ls` shows of `v`: its cached mountpoint, no `Status`. Without a promise when the
 * creation time is known locally, and without any work but a lookup when the store keeps it.
 */
export function toListedVolumeInfo(v: StoredVolume, signal: AbortSignal | undefined): VolumeInfo | Promise<VolumeInfo> {
  if (v.createdAt !== undefined) return listedInfo(v);
  const options = { mountpoint: v.volume.cachedPath(), signal };
  return toVolumeInfoSync(v, options) ?? toVolumeInfo(v, options);
}

/**
 * What `volume ls` shows of a volume whose creation time the store keeps: made once per stored
 * volume (a `StoredVolume` of the store's cache is the same object until the volume, its driver
 * or scope change, and labels and options never change in place) and frozen, so that listing
 * thousands of volumes converts none again. Inspect shows the same object unless the driver has a
 * status for it.
 */
const listed = new WeakMap<StoredVolume, VolumeInfo>();

function listedInfo(v: StoredVolume): VolumeInfo {
  let info = listed.get(v);
  if (info === undefined) {
    info = Object.freeze(build(v, createdAtText(v.createdAt ?? Number.NaN), v.volume.cachedPath(), undefined));
    listed.set(v, info);
  }
  return info;
}

/**
 * `CreatedAt` of a time in ms, from the text of the last second formatted when it is the same
 * second: volumes are mostly created, and restored, in runs within one second, and formatting a
 * local time costs more than the rest of the conversion (the zone is the process's, fixed).
 */
let lastSecond: { second: number; text: string } | undefined;

function createdAtText(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (lastSecond?.second !== second) lastSecond = { second, text: formatRFC3339(new Date(ms)) };
  return lastSecond.text;
}

function statusOf(v: StoredVolume, options: ToVolumeInfoOptions): Record<string, unknown> | undefined {
  if (options.status !== true) return undefined;
  const status = v.volume.status();
  return status !== undefined && Object.keys(status).length > 0 ? status : undefined;
}

function build(v: StoredVolume, createdAt: string, mountpoint: string, status: Record<string, unknown> | undefined): VolumeInfo {
  const info: VolumeInfo = {
    CreatedAt: createdAt,
    Driver: v.driverName,
    Labels: v.labels === null ? null : { ...v.labels },
    Mountpoint: mountpoint,
    Name: v.name,
    Options: v.options === null ? null : { ...v.options },
    Scope: v.scope,
  };
  if (status !== undefined) info.Status = status;
  return info;
}

/** The mountpoint, asking the driver when needed (plugins: `VolumeDriver.Path`); the cached one if that fails. */
export async function resolvePath(v: StoredVolume, signal: AbortSignal | undefined): Promise<string> {
  try {
    return await v.volume.path({ signal });
  } catch {
    return v.volume.cachedPath();
  }
}
