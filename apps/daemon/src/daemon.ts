import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, wrap } from '@berth/errdefs';
import { PluginStore } from '@berth/plugin-store';
import { LocalDriver, VolumeDriverRegistry } from '@berth/volume-drivers';
import { VolumesService, type VolumeEventSink } from '@berth/volume-service';
import { ApiServer } from './api/api-server.js';
import { systemRoutes } from './api/system-routes.js';
import { volumeRoutes } from './api/volume-routes.js';
import type { DaemonConfig } from './config.js';
import { loadOrCreateEngineId } from './engine-id.js';
import { EventsService } from './events/events-service.js';
import { lookupGroup } from './group.js';
import { silentLogger, type Logger } from './logger.js';
import { PidFile } from './pidfile.js';

/** The steps of start and shutdown, in the order they run (see `DaemonOptions.trace`). */
export type DaemonStep =
  | 'create-roots'
  | 'pidfile'
  | 'plugin-store'
  | 'volume-drivers'
  | 'volumes'
  | 'events'
  | 'serve-api'
  | 'stop-api'
  | 'close-volumes'
  | 'close-events'
  | 'close-plugin-store'
  | 'remove-pidfile';

export interface DaemonOptions {
  logger?: Logger;
  /** Called as each step begins; tests pin moby's order with it. */
  trace?: (step: DaemonStep) => void;
}

export interface Daemon {
  readonly config: DaemonConfig;
  /** The sockets the API is served on. */
  readonly sockets: readonly string[];
  /** Stops in reverse order of start. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The composition root, in moby's `NewDaemon` order: roots and pidfile, (plugins,) volume drivers,
 * the volume service with its restore, the events service, and only then the API. A step that
 * fails undoes the ones before it.
 */
export async function createDaemon(config: DaemonConfig, options: DaemonOptions = {}): Promise<Daemon> {
  const logger = options.logger ?? silentLogger;
  const trace = options.trace ?? (() => {});
  let pidfile: PidFile | undefined;
  let pluginStore: PluginStore | undefined;
  let volumes: VolumesService | undefined;
  let events: EventsService | undefined;
  let api: ApiServer | undefined;

  const step = async (name: DaemonStep, action: () => Promise<void> | void): Promise<void> => {
    trace(name);
    try {
      await action();
    } catch (err) {
      logger.error(`shutdown step ${name} failed`, { error: err });
    }
  };
  const shutdown = async (): Promise<void> => {
    if (api !== undefined) await step('stop-api', () => api?.close());
    if (volumes !== undefined) await step('close-volumes', () => volumes?.close());
    // After the volume service, so its last events still reach subscribers being shut down.
    if (events !== undefined) await step('close-events', () => events?.close());
    if (pluginStore !== undefined) await step('close-plugin-store', () => pluginStore?.close());
    if (pidfile !== undefined) await step('remove-pidfile', () => pidfile?.release());
  };

  try {
    const gid = socketGroup(config.group);

    trace('create-roots');
    await createRoot(config.dataRoot);
    await createRoot(config.execRoot);

    trace('pidfile');
    pidfile = await PidFile.acquire(config.pidfile);

    // moby: "Plugin system initialization should happen before restore. Do not change order."
    trace('plugin-store');
    pluginStore = new PluginStore({
      legacy: config.pluginDirs === undefined ? {} : { dirs: config.pluginDirs },
      logger: logger.child({ component: 'plugin-store' }),
    });

    trace('volume-drivers');
    const drivers = new VolumeDriverRegistry({ pluginGetter: pluginStore, logger: logger.child({ component: 'volume-drivers' }) });
    const local = await LocalDriver.open({ root: join(config.dataRoot, 'volumes'), logger: logger.child({ component: 'local-driver' }) });
    drivers.register(local);

    trace('volumes');
    // moby creates its events service only after the volumes are restored, and nothing emits
    // events during the restore; the sink forwards once the service exists.
    const sink: VolumeEventSink = { logVolumeEvent: (name, action, attributes) => events?.logVolumeEvent(name, action, attributes) };
    volumes = await VolumesService.open({
      root: config.dataRoot,
      drivers,
      events: sink,
      logger: logger.child({ component: 'volume-service' }),
    });

    trace('events');
    events = new EventsService({ logger: logger.child({ component: 'events' }) });

    trace('serve-api');
    const service = volumes;
    const engineId = await loadOrCreateEngineId(config.dataRoot);
    const info = {
      dataRoot: config.dataRoot,
      debug: config.logLevel === 'debug',
      engineId,
      volumeDrivers: () => service.getDriverList(),
    };
    api = await ApiServer.listen(config.hosts, {
      routes: [...systemRoutes(info, events), ...volumeRoutes(service)],
      logger: logger.child({ component: 'api' }),
      gid,
    });
  } catch (err) {
    await shutdown();
    throw startupError(err);
  }

  let closing: Promise<void> | undefined;
  return { config, sockets: api.paths, close: () => (closing ??= shutdown()) };
}

/** dockerd's wording: every start failure reads `failed to start daemon...`. */
function startupError(err: unknown): BerthError {
  const cause = BerthError.from(err);
  return cause.message.startsWith('failed to start daemon') ? cause : wrap(cause, 'failed to start daemon');
}

/** Like dockerd's roots: 0711, so that mountpoints below stay reachable for other users. */
async function createRoot(path: string): Promise<void> {
  if ((await mkdir(path, { recursive: true, mode: 0o711 })) !== undefined) await chmod(path, 0o711);
}

/** The gid of the socket group; a group that does not exist is an error, as in dockerd. */
function socketGroup(group: string | undefined): number | undefined {
  if (group === undefined) return undefined;
  const gid = lookupGroup(group);
  if (gid === undefined) throw new Error(`group ${group} not found`);
  return gid;
}
