import type { Filters } from '@berth/filters';
import { goAnyValue, goJsonText, goMap } from '@berth/gocompat';
import type { CallOptions } from '@berth/volume-drivers';
import type { PruneReport, VolumeInfo } from '@berth/volume-service';

export interface CreateVolumeOptions {
  name?: string;
  driver?: string;
  driverOpts?: Record<string, string>;
  labels?: Record<string, string>;
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

/**
 * The volume in Go's field order, `Labels`/`Options` `null` when unset, empty optionals left out,
 * and the keys of its maps in Go's order.
 */
export function apiVolume(v: VolumeInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (v.CreatedAt !== undefined && v.CreatedAt !== '') out.CreatedAt = v.CreatedAt;
  out.Driver = v.Driver;
  out.Labels = goMap(v.Labels ?? null);
  out.Mountpoint = v.Mountpoint;
  out.Name = v.Name;
  out.Options = goMap(v.Options ?? null);
  out.Scope = v.Scope;
  if (v.Status !== undefined && Object.keys(v.Status).length > 0) out.Status = goAnyValue(v.Status);
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
    json = goJsonText(apiVolume(v));
    if (Object.isFrozen(v)) encoded.set(v, json);
  }
  return json;
}

const encoded = new WeakMap<VolumeInfo, string>();
