import type { Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME, type Volume, type VolumeDriver, type VolumeScope } from '@berth/volume-drivers';
import { isCommunicationError, wrapError } from './op-error.js';
import type { VolumeDriverRegistry } from './types.js';

/**
 * Asks a driver for a volume. Only failures to reach the driver are errors; any other error the
 * driver answers with is read as "no such volume", as moby's `lookupVolume` does (plugins commonly
 * answer a missing volume with `{"Err": "..."}`).
 */
export async function getFromDriver(
  driver: VolumeDriver,
  name: string,
  logger: Logger,
  signal: AbortSignal | undefined,
): Promise<Volume | undefined> {
  try {
    return await driver.get(name, { signal });
  } catch (err) {
    // The caller gave up: whatever the driver call rejected with says nothing about the volume.
    signal?.throwIfAborted();
    if (isCommunicationError(err)) throw err;
    logger.debug('Error while looking up volume', { error: String(err), driver: driver.name, volume: name });
    return undefined;
  }
}

/** moby's `lookupVolume`: the volume in the named driver, `undefined` when the driver does not have it. */
export async function lookupVolume(
  drivers: VolumeDriverRegistry,
  driverName: string,
  name: string,
  logger: Logger,
  signal: AbortSignal | undefined,
): Promise<Volume | undefined> {
  const driver = driverName === '' ? DEFAULT_DRIVER_NAME : driverName;
  const prefix = `error while checking if volume "${name}" exists in driver "${driver}"`;
  let vd: VolumeDriver;
  try {
    vd = await drivers.getDriver(driver, { signal });
  } catch (err) {
    throw wrapError(err, prefix);
  }
  try {
    return await getFromDriver(vd, name, logger, signal);
  } catch (err) {
    throw wrapError(err, prefix);
  }
}

/** A driver's scope; `local` when the driver cannot say (the API field must be one of the two). */
export async function scopeOf(driver: VolumeDriver, signal: AbortSignal | undefined): Promise<VolumeScope> {
  try {
    return await driver.scope({ signal });
  } catch {
    return 'local';
  }
}
