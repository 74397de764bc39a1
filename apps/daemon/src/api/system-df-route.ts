import { invalidParameter } from '@berth/errdefs';
import { versionLessThan } from './api-version.js';
import { writeJson } from './respond.js';
import { route, type Route } from './router.js';
import type { CallOptions } from '@berth/volume-drivers';
import type { VolumeInfo } from '@berth/volume-service';
import { apiVolume } from './volume-backend.js';

/** What `GET /system/df` needs: every volume with its `UsageData` (`VolumesService.diskUsage`). */
export interface DiskUsageBackend {
  diskUsage(options?: CallOptions): Promise<VolumeInfo[]>;
}

const OBJECT_TYPES = ['container', 'image', 'volume', 'build-cache'] as const;

/**
 * `GET /system/df` in the shape of moby's answer below API 1.52 (berth serves up to 1.51):
 * `LayersSize`, `Images`, `Containers`, `Volumes`, `BuildCache`. berth has no images, containers
 * or build cache, so those are empty lists and `LayersSize` is 0; volumes carry `UsageData`. From
 * API 1.42 `type` (repeatable) picks the object types; the ones not asked for are `null`.
 */
export function systemDiskUsageRoute(backend: DiskUsageBackend): Route {
  return route('GET', '/system/df', async (ctx) => {
    const form = ctx.form();
    let wanted: Set<string>;
    if (versionLessThan(ctx.apiVersion, '1.42') || !form.has('type')) wanted = new Set(OBJECT_TYPES);
    else {
      wanted = new Set();
      for (const type of form.getAll('type')) {
        if (!(OBJECT_TYPES as readonly string[]).includes(type)) throw invalidParameter(`unknown object type: ${type}`);
        wanted.add(type);
      }
    }
    const volumes = wanted.has('volume') ? await backend.diskUsage({ signal: ctx.signal }) : undefined;
    writeJson(ctx.res, 200, {
      LayersSize: 0,
      Images: wanted.has('image') ? [] : null,
      Containers: wanted.has('container') ? [] : null,
      Volumes: volumes === undefined ? null : volumes.map(apiVolume),
      BuildCache: wanted.has('build-cache') ? [] : null,
    });
  });
}
