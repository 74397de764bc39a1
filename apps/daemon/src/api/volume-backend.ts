import type { Filters } from '@berth/filters';
import { goAnyValue, goJsonText, goMap } from '@berth/gocompat';
import type { CallOptions } from '@berth/volume-drivers';
import type { PruneReport, VolumeInfo } from '@berth/volume-service';
import { jsonBody } from './respond.js';

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

/**
 * `volume ls` answers as the bytes sent: `{"Volumes":[...],"Warnings":...}` from each volume's own
 * encoding (`apiVolumeJson`). The last answer is kept with what it showed: a list of the very same
 * volumes (the frozen answers the service keeps until a volume changes, compared one by one, in
 * order) with the same warnings is the same bytes, sent again without encoding thousands of volumes.
 */
export class VolumeListEncoder {
  #last: { volumes: readonly VolumeInfo[]; warnings: string; body: Buffer } | undefined;

  encode(volumes: readonly VolumeInfo[], warnings: readonly string[]): Buffer {
    const warned = warnings.length > 0 ? goJsonText(warnings) : 'null';
    const last = this.#last;
    if (last !== undefined && last.warnings === warned && sameObjects(last.volumes, volumes)) return last.body;
    const body = jsonBody(`{"Volumes":[${volumes.map(apiVolumeJson).join(',')}],"Warnings":${warned}}`);
    // Only an answer made of kept (frozen) volumes can be shown again; a plugin's are made anew each time.
    this.#last = volumes.every((v) => Object.isFrozen(v)) ? { volumes, warnings: warned, body } : undefined;
    return body;
  }
}

function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
