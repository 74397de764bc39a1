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
  return build(v, createdAt, options);
}

/**
 * `toVolumeInfo` without a promise, for volumes whose creation time is known locally (the
 * store's, or the driver's `createdAtSync`); `undefined` for the others, which need `toVolumeInfo`.
 */
export function toVolumeInfoSync(v: StoredVolume, options: ToVolumeInfoOptions): VolumeInfo | undefined {
  if (v.createdAt !== undefined) return build(v, v.createdAt, options);
  if (v.volume.createdAtSync === undefined) return undefined;
  let createdAt: Date | undefined;
  try {
    createdAt = v.volume.createdAtSync();
  } catch {
    createdAt = undefined;
  }
  return build(v, createdAt, options);
}

function build(v: StoredVolume, createdAt: Date | undefined, options: ToVolumeInfoOptions): VolumeInfo {
  const info: VolumeInfo = {
    CreatedAt: formatRFC3339(createdAt),
    Driver: v.driverName,
    Labels: v.labels === null ? null : { ...v.labels },
    Mountpoint: options.mountpoint,
    Name: v.name,
    Options: v.options === null ? null : { ...v.options },
    Scope: v.scope,
  };
  if (options.status === true) {
    const status = v.volume.status();
    if (status !== undefined && Object.keys(status).length > 0) info.Status = status;
  }
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
