import type { Filters } from '@berth/filters';
import type { Logger } from '@berth/logger';
import { resolvePath } from './convert.js';
import type { DirectorySizer } from './directory-sizer.js';
import { pruneQuery } from './list-filters.js';
import type { PruneReport, VolumeEventSink } from './types.js';
import type { VolumeStore } from './volume-store.js';

export interface PruneDeps {
  store: VolumeStore;
  sizer: DirectorySizer;
  events?: VolumeEventSink | undefined;
  logger: Logger;
  signal?: AbortSignal | undefined;
}

/**
 * moby's `VolumesService.Prune` (without its single-flight guard, which belongs to the service):
 * measures and removes each candidate through the normal remove (so each emits `destroy`), skips
 * the ones that fail, then emits one `prune` event with actor `""` and the reclaimed bytes.
 * Cancelled midway, it returns what was pruned so far (and emits no `prune` event), as moby does.
 */
export async function pruneVolumes(filters: Filters, { store, sizer, events, logger, signal }: PruneDeps): Promise<PruneReport> {
  const query = pruneQuery(filters);
  const { volumes } = await store.find(query, { signal });
  const report: PruneReport = { VolumesDeleted: [], SpaceReclaimed: 0 };

  for (const v of volumes) {
    if (signal?.aborted) {
      if ((signal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError') throw signal.reason;
      return report;
    }
    let size = 0;
    try {
      const [measured] = await sizer.size([await resolvePath(v, signal)], { signal });
      if (measured !== undefined && 'size' in measured) size = measured.size;
      else logger.warn('could not determine size of volume', { volume: v.name, error: measured?.error });
    } catch (err) {
      // Cancelled: the check above ends the prune with what it did so far.
      if (signal?.aborted === true) continue;
      logger.warn('could not determine size of volume', { volume: v.name, error: String(err) });
    }
    try {
      await store.remove(v.name, { driver: v.driverName, signal });
    } catch (err) {
      logger.warn('Could not remove volume', { volume: v.name, error: String(err) });
      continue;
    }
    report.SpaceReclaimed += size;
    report.VolumesDeleted.push(v.name);
  }

  events?.logVolumeEvent('', 'prune', { reclaimed: String(report.SpaceReclaimed) });
  return report;
}
