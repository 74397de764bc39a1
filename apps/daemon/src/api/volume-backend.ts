import type { Filters } from '@berth/filters';
import { goJsonLine } from './respond.js';

/** The Engine API `Volume` object as the volume service produces it. */
export interface VolumeInfo {
  CreatedAt?: string | undefined;
  Driver: string;
  Labels: Record<string, string> | null;
  Mountpoint: string;
  Name: string;
  Options: Record<string, string> | null;
  Scope: string;
  Status?: Record<string, unknown> | undefined;
  UsageData?: { RefCount: number; Size: number } | undefined;
}

export interface PruneReport {
  VolumesDeleted: string[];
  SpaceReclaimed: number;
}

export interface CreateVolumeOptions {
  name?: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

/**
 * What the volume routes need; `@berth/volume-service`'s `VolumesService` satisfies it, and route
 * tests use a fake.
 */
export interface VolumeBackend {
  create(options: CreateVolumeOptions, call?: CallOptions): Promise<VolumeInfo>;
  get(name: string, options?: { resolveStatus?: boolean; signal?: AbortSignal | undefined }): Promise<VolumeInfo>;
  list(filters: Filters, options?: CallOptions): Promise<{ volumes: VolumeInfo[]; warnings: string[] }>;
  remove(name: string, options?: { force?: boolean; signal?: AbortSignal | undefined }): Promise<void>;
  prune(filters: Filters, options?: CallOptions): Promise<PruneReport>;
  mount(name: string, ref: string, options?: CallOptions): Promise<string>;
  unmount(name: string, ref: string, options?: CallOptions): Promise<void>;
  getDriverList(): string[];
}

/** The volume in Go's field order, `Labels`/`Options` `null` when unset, empty optionals left out. */
export function apiVolume(v: VolumeInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (v.CreatedAt !== undefined && v.CreatedAt !== '') out.CreatedAt = v.CreatedAt;
  out.Driver = v.Driver;
  out.Labels = v.Labels ?? null;
  out.Mountpoint = v.Mountpoint;
  out.Name = v.Name;
  out.Options = v.Options ?? null;
  out.Scope = v.Scope;
  if (v.Status !== undefined && Object.keys(v.Status).length > 0) out.Status = v.Status;
  if (v.UsageData !== undefined) out.UsageData = v.UsageData;
  return out;
}

/**
 * `apiVolume` encoded as Go's JSON. Kept per volume the service hands out frozen (it answers with
 * the same object until that volume changes), so that `volume ls` of thousands of volumes encodes
 * none of them again; others are encoded each time.
 */
export function apiVolumeJson(v: VolumeInfo): string {
  let json = encoded.get(v);
  if (json === undefined) {
    json = goJsonLine(apiVolume(v));
    if (Object.isFrozen(v)) encoded.set(v, json);
  }
  return json;
}

const encoded = new WeakMap<VolumeInfo, string>();
