import type { Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME } from '@berth/volume-drivers';
import type { MetadataStore } from './metadata-store.js';
import type { EmptyStart } from './sqlite-metadata-store.js';
import type { VolumeDriverRegistry } from './types.js';

/**
 * The reference a rebuilt record gives a volume its driver holds mounted: someone was using it, so
 * it stays in use (no remove, no prune) until that reference is unmounted.
 */
export const REBUILT_MOUNT_REFERENCE = 'berth-rebuilt-mount';

export interface RebuildDeps {
  metadata: MetadataStore;
  drivers: VolumeDriverRegistry;
  logger: Logger;
  /** The database, for the log. */
  path: string;
  signal?: AbortSignal | undefined;
}

/**
 * The one place where a metadata store that starts without records is given the volumes that are
 * already there, before the restore: when the database was missing or emptied while the `local`
 * driver holds volumes, each gets a record with what its directory keeps (driver options from
 * `opts.json`; the reference {@link REBUILT_MOUNT_REFERENCE} when it is mounted). Labels and the
 * references of volumes that are not mounted live only in the database: they are lost, and the log
 * says so. Volumes on plugins are not probed (moby's restore does not either): they are found again
 * through their plugin. A first start (no volumes) logs nothing.
 */
export async function rebuildRecords(found: EmptyStart, { metadata, drivers, logger, path, signal }: RebuildDeps): Promise<void> {
  let local;
  try {
    local = await drivers.getDriver(DEFAULT_DRIVER_NAME, { signal });
  } catch {
    return; // no local driver: nothing on disk to rebuild from
  }
  const volumes = await local.list({ signal });
  if (volumes.length === 0) return;
  await Promise.all(
    volumes.map((volume) =>
      metadata.put(
        { name: volume.name, driver: local.name, labels: null, options: volume.driverOptions?.() ?? null },
        volume.mounted === true ? [REBUILT_MOUNT_REFERENCE] : [],
      ),
    ),
  );
  const mounted = volumes.filter((v) => v.mounted === true).map((v) => v.name);
  logger.warn(
    `The volume metadata database ${path} was ${found.reason} while ${volumes.length} local volumes exist: ` +
      `rebuilt the records of ${volumes.length} volumes from their directories. Their labels and references are lost; ` +
      `the mounted ones hold the reference ${REBUILT_MOUNT_REFERENCE} until it is unmounted`,
    { path, copy: found.copy, mounted },
  );
}
