import type { Logger } from '@berth/logger';
import type { Volume, VolumeDriver } from '@berth/volume-drivers';
import { withDeadline } from './deadline.js';
import { getFromDriver } from './lookup.js';
import { messageOf } from './op-error.js';
import type { VolumeDriverRegistry } from './types.js';

export interface AllDrivers {
  drivers: VolumeDriver[];
  /** Plugins left out because they were still starting (a plugin hung in its handshake). */
  leftOut: Array<{ name: string; error: Error }>;
  /** Set when the registry could not list its plugins in time: `drivers` are the ones it already knew. */
  warning?: string;
}

/**
 * Every driver, within `ms`. The registry's `getAllDrivers` asks the plugin store, which waits half
 * of `ms` for plugins still starting and leaves the others out (`leftOut`), so that the drivers'
 * own answers have time too; when it fails or is late anyway, the drivers the registry already
 * knows (registered ones, kept legacy plugins) are used instead, each also within `ms`.
 */
export async function allDrivers(
  registry: VolumeDriverRegistry,
  ms: number,
  signal: AbortSignal | undefined,
): Promise<AllDrivers> {
  const leftOut: AllDrivers['leftOut'] = [];
  try {
    const drivers = await withDeadline(ms, `volume drivers were not listed within ${ms}ms`, signal, (s) =>
      registry.getAllDrivers({
        signal: s,
        probeTimeoutMs: Math.floor(ms / 2),
        onLeftOut: (name, error) => leftOut.push({ name, error }),
      }),
    );
    return { drivers, leftOut };
  } catch (err) {
    signal?.throwIfAborted();
    const known = await Promise.all(
      registry.getDriverList().map((name) =>
        withDeadline(ms, `driver ${name} did not answer within ${ms}ms`, signal, (s) => registry.getDriver(name, { signal: s })).catch(() => undefined),
      ),
    );
    signal?.throwIfAborted();
    return { drivers: known.filter((d) => d !== undefined), leftOut: [], warning: messageOf(err) };
  }
}

/**
 * Asks every driver whether it has `name` (a name with no known driver). moby asks them one after
 * the other with no bound; berth asks them all at once, each within `ms`, so a hung plugin costs at
 * most `ms`. The first driver (in the registry's order) that has the volume wins; drivers that fail
 * or are late are skipped, as moby skips drivers that fail.
 */
export async function probeDrivers(
  registry: VolumeDriverRegistry,
  name: string,
  options: { ms: number; logger: Logger; signal: AbortSignal | undefined },
): Promise<{ driver: VolumeDriver; volume: Volume } | undefined> {
  const { ms, logger, signal } = options;
  logger.debug('Probing all drivers for volume', { volume: name });
  const { drivers } = await allDrivers(registry, ms, signal);
  const answers = await Promise.all(
    drivers.map((driver) => {
      // A driver that answers from memory (the local driver) needs no deadline, nor its timer.
      if (driver.getSync !== undefined) return getSyncQuietly(driver, name, logger);
      return withDeadline(ms, `driver did not answer within ${ms}ms`, signal, (s) => getFromDriver(driver, name, logger, s)).catch(
        (err: unknown) => {
          logger.debug('Skipping a volume driver that could not be asked', { driver: driver.name, volume: name, error: messageOf(err) });
          return undefined;
        },
      );
    }),
  );
  signal?.throwIfAborted();
  const index = answers.findIndex((v) => v !== undefined);
  return index === -1 ? undefined : { driver: drivers[index]!, volume: answers[index]! };
}

function getSyncQuietly(driver: VolumeDriver, name: string, logger: Logger): Volume | undefined {
  try {
    return driver.getSync?.(name);
  } catch (err) {
    logger.debug('Error while looking up volume', { error: String(err), driver: driver.name, volume: name });
    return undefined;
  }
}
