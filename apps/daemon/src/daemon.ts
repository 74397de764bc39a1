import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError, wrap } from '@berth/errdefs';
import { Filters } from '@berth/filters';
import { ContainerdSupervisor, LazyContainerdExecutor } from '@berth/plugin-executor-containerd/lazy';
import { PluginManager } from '@berth/plugin-manager';
import { ContentStore, loginRegistry, PluginDistribution } from '@berth/plugin-registry';
import { Plugin, PluginStore } from '@berth/plugin-store';
import type { EtcdClusterStore } from '@berth/volume-cluster-etcd';
import { LocalDriver, VolumeDriverRegistry } from '@berth/volume-drivers';
import { adoptDockerMetadata, RESERVED_VOLUME_NAMES, VolumesService, type VolumeEventSink } from '@berth/volume-service';
import { ApiServer } from './api/api-server.js';
import { authRoute } from './api/auth-route.js';
import { buildRoutes, distributionDebugRoutes, swarmRoutes } from './api/build-swarm-routes.js';
import { containerRoutes } from './api/container-routes.js';
import { imageRoutes } from './api/image-routes.js';
import { networkRoutes } from './api/network-routes.js';
import { pluginRoutes } from './api/plugin-routes.js';
import { systemDiskUsageRoute } from './api/system-df-route.js';
import { systemRoutes } from './api/system-routes.js';
import { volumeRoutes } from './api/volume-routes.js';
import type { ClusterConfig } from './cluster-config.js';
import type { DaemonConfig } from './config.js';
import { DataRootLock } from './data-root-lock.js';
import { loadOrCreateEngineId } from './engine-id.js';
import { createMetrics, type DaemonMetrics } from './metrics/metrics.js';
import { MetricsServer } from './metrics/metrics-server.js';
import { EventsService } from './events/events-service.js';
import { lookupGroup } from './group.js';
import { silentLogger, type Logger } from './logger.js';
import { PidFile } from './pidfile.js';
import { BERTH_VERSION } from './version.js';

/** The steps of start and shutdown, in the order they run (see `DaemonOptions.trace`). */
export type DaemonStep =
  | 'lock-data-root'
  | 'create-roots'
  | 'pidfile'
  | 'adopt-docker-volumes'
  | 'metrics'
  | 'plugin-store'
  | 'containerd'
  | 'plugin-manager'
  | 'volume-drivers'
  | 'cluster-store'
  | 'volumes'
  | 'events'
  | 'serve-api'
  | 'stop-api'
  | 'stop-metrics'
  | 'close-volumes'
  | 'close-cluster-store'
  | 'shutdown-plugins'
  | 'close-containerd'
  | 'close-events'
  | 'close-plugin-store'
  | 'remove-pidfile'
  | 'unlock-data-root';

export interface DaemonOptions {
  logger?: Logger;
  /** Called as each step begins; tests pin moby's order with it. */
  trace?: (step: DaemonStep) => void;
}

export interface Daemon {
  readonly config: DaemonConfig;
  /** The sockets the API is served on. */
  readonly sockets: readonly string[];
  /** Where Prometheus scrapes (`--metrics-addr`; its port once bound); `undefined` when not served. */
  readonly metricsUrl: string | undefined;
  /** Stops in reverse order of start. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The composition root, in moby's `NewDaemon` order: roots and pidfile, the plugin store, the
 * plugin manager (its reload starts or re-attaches enabled plugins), the volume drivers, the
 * volume service with its restore, the events service, and only then the API. A step that fails
 * undoes the ones before it.
 */
export async function createDaemon(config: DaemonConfig, options: DaemonOptions = {}): Promise<Daemon> {
  const logger = options.logger ?? silentLogger;
  const trace = options.trace ?? (() => {});
  let lock: DataRootLock | undefined;
  let pidfile: PidFile | undefined;
  let pluginStore: PluginStore | undefined;
  let containerd: ContainerdSupervisor | undefined;
  let plugins: PluginManager<Plugin> | undefined;
  let cluster: EtcdClusterStore | undefined;
  let volumes: VolumesService | undefined;
  let events: EventsService | undefined;
  let api: ApiServer | undefined;
  let metrics: DaemonMetrics | undefined;
  let metricsServer: MetricsServer | undefined;
  let metricsUrl: string | undefined;

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
    if (metricsServer !== undefined) await step('stop-metrics', () => metricsServer?.close());
    if (volumes !== undefined) await step('close-volumes', () => volumes?.close());
    if (cluster !== undefined) await step('close-cluster-store', () => cluster?.close());
    // moby: after the volumes (and containers) are done with them. Stops plugins unless live-restore.
    if (plugins !== undefined) await step('shutdown-plugins', () => plugins?.shutdown());
    // With live-restore, berthd's own containerd keeps running the plugins for the next berthd.
    if (containerd !== undefined) await step('close-containerd', () => containerd?.close({ keepRunning: config.liveRestore }));
    // After the volume service and the plugins, so their last events still reach subscribers being shut down.
    if (events !== undefined) await step('close-events', () => events?.close());
    if (pluginStore !== undefined) await step('close-plugin-store', () => pluginStore?.close());
    if (pidfile !== undefined) await step('remove-pidfile', () => pidfile?.release());
    if (lock !== undefined) await step('unlock-data-root', () => lock?.release());
  };

  try {
    const gid = socketGroup(config.group);

    // Before anything else touches the data-root: a second berthd on it must not sweep what the
    // running one has in flight, start its plugins again or take its containerd over.
    trace('lock-data-root');
    await createRoot(config.dataRoot);
    lock = DataRootLock.acquire(config.dataRoot);

    trace('create-roots');
    await createRoot(config.execRoot);

    trace('pidfile');
    pidfile = await PidFile.acquire(config.pidfile);

    // A dockerd data-root brings its volume records (labels, options, drivers) once, before
    // anything else touches the data-root (a damaged metadata.db then changes nothing) and before
    // the volume restore sees them. Its metadata.db is only read.
    trace('adopt-docker-volumes');
    await adoptDockerMetadata({ root: config.dataRoot, logger: logger.child({ component: 'volume-service' }) });

    // Served before plugins and volumes are restored: an address in use fails the start before anything runs.
    if (config.metricsAddress !== undefined) {
      trace('metrics');
      metrics = await createMetrics();
      metricsServer = await MetricsServer.listen(config.metricsAddress, metrics, logger.child({ component: 'metrics' }));
      metricsUrl = `http://${formatHostPort(metricsServer.address)}/metrics`;
    }
    const onPluginCall = metrics?.pluginCall;

    // moby: "Plugin system initialization should happen before restore. Do not change order."
    trace('plugin-store');
    pluginStore = new PluginStore({
      legacy: { ...(config.pluginDirs === undefined ? {} : { dirs: config.pluginDirs }), client: { onCall: onPluginCall } },
      logger: logger.child({ component: 'plugin-store' }),
    });

    // Nothing starts here: containerd is dialled (or berthd's own started) when a plugin first runs.
    trace('containerd');
    const supervisor = new ContainerdSupervisor({
      address: config.containerd,
      dir: join(config.execRoot, 'containerd'),
      logger: logger.child({ component: 'containerd' }),
    });
    containerd = supervisor;

    trace('plugin-manager');
    // Like moby's, the manager emits no events during its reload; the events service is created
    // after the volume restore, as in moby, and the sink forwards once it exists.
    const pluginExecRoot = join(config.execRoot, 'plugins');
    const pluginRoot = join(config.dataRoot, 'plugins');
    // moby's layout: the content store of plugin images at `<data-root>/plugins/storage`.
    const registry = { insecureRegistries: config.insecureRegistries, userAgent: `berth/${BERTH_VERSION}` };
    const distribution = new PluginDistribution({ store: new ContentStore({ root: join(pluginRoot, 'storage') }), registry });
    plugins = await PluginManager.open<Plugin>({
      root: pluginRoot,
      contentStore: distribution.store,
      distribution,
      // `<exec-root>/plugins/<64-hex id>/<socket>` must stay below 108 bytes (a unix socket path).
      execRoot: pluginExecRoot,
      store: pluginStore,
      createPlugin: (init) => new Plugin({ ...init, client: { onCall: onPluginCall } }),
      createExecutor: (exitHandler) =>
        new LazyContainerdExecutor({
          address: (o) => supervisor.address(o),
          namespace: config.containerdPluginsNamespace,
          stateDir: pluginExecRoot,
          runtimeRoot: join(config.execRoot, 'runtime-runc'),
          exitHandler,
          logger: logger.child({ component: 'plugin-executor' }),
        }),
      liveRestore: config.liveRestore,
      onRestart: metrics?.pluginRestart,
      events: { logPluginEvent: (id, name, action) => events?.log(action, 'plugin', { ID: id, Attributes: { name } }) },
      // Bound late: the volume service is created after the manager.
      usersOf: (pluginName) => volumesOn(volumes, pluginName),
      logger: logger.child({ component: 'plugin-manager' }),
    });

    trace('volume-drivers');
    const drivers = new VolumeDriverRegistry({ pluginGetter: pluginStore, logger: logger.child({ component: 'volume-drivers' }) });
    const local = await LocalDriver.open({
      root: join(config.dataRoot, 'volumes'),
      // The volume service keeps its database beside the volumes.
      reservedNames: RESERVED_VOLUME_NAMES,
      // Its commits (a sync of its WAL in the volumes root) make the directory changes before them
      // durable: no fsync of directories on the request path (see the volume service's README).
      syncDirectories: false,
      logger: logger.child({ component: 'local-driver' }),
    });
    drivers.register(local);

    // Only with --cluster-store: the etcd client (gRPC) is not even loaded otherwise.
    if (config.cluster !== undefined) {
      trace('cluster-store');
      cluster = await openClusterStore(config.cluster, config.dataRoot, logger.child({ component: 'cluster-store' }));
    }

    trace('volumes');
    // moby creates its events service only after the volumes are restored, and nothing emits
    // events during the restore; the sink forwards once the service exists.
    const sink: VolumeEventSink = { logVolumeEvent: (name, action, attributes) => events?.logVolumeEvent(name, action, attributes) };
    volumes = await VolumesService.open({
      root: config.dataRoot,
      drivers,
      events: sink,
      logger: logger.child({ component: 'volume-service' }),
      sqlite: { onCommit: metrics?.metadataCommit, onWalSync: metrics?.fsyncObserver('metadata-wal') },
      cluster,
    });
    metrics?.watchVolumes(volumes);

    trace('events');
    events = new EventsService({ logger: logger.child({ component: 'events' }) });

    trace('serve-api');
    const service = volumes;
    const engineId = await loadOrCreateEngineId(config.dataRoot);
    const info = {
      dataRoot: config.dataRoot,
      debug: config.logLevel === 'debug',
      engineId,
      liveRestore: config.liveRestore,
      volumeDrivers: () => service.getDriverList(),
      insecureRegistries: config.insecureRegistries,
      cluster: cluster === undefined ? undefined : { store: cluster.display, host: cluster.host, warning: () => cluster?.warning() },
    };
    api = await ApiServer.listen(config.hosts, {
      routes: [
        ...systemRoutes(info, events),
        systemDiskUsageRoute(service),
        authRoute(async (auth, signal) => {
          const { status } = await loginRegistry({ serverAddress: auth.serverAddress, auth, registry, signal });
          return { Status: status, IdentityToken: '' };
        }),
        ...volumeRoutes(service),
        ...pluginRoutes(plugins, plugins),
        // moby's other routers, in its order: no path of theirs overlaps berth's own, and being
        // last, they cost berth's own requests nothing.
        ...containerRoutes(),
        ...imageRoutes(),
        ...buildRoutes(),
        ...swarmRoutes(),
        ...networkRoutes(),
        ...distributionDebugRoutes(),
      ],
      logger: logger.child({ component: 'api' }),
      gid,
      onRequest: metrics?.apiRequest,
    });
  } catch (err) {
    await shutdown();
    throw startupError(err);
  }

  let closing: Promise<void> | undefined;
  return { config, sockets: api.paths, metricsUrl, close: () => (closing ??= shutdown()) };
}

/**
 * The cluster store of global volumes: joins the cluster and loads its volumes, waiting at most one
 * etcd command timeout (an unreachable cluster does not stop the start; local volumes work, global
 * ones fail with a clear error until it can be reached). This host's references live under
 * `<data-root>/cluster`.
 */
async function openClusterStore(settings: ClusterConfig, dataRoot: string, logger: Logger): Promise<EtcdClusterStore> {
  // Loaded here, and only with --cluster-store: a berthd without it never loads the etcd client (gRPC).
  const { EtcdClusterStore } = await import('@berth/volume-cluster-etcd');
  const read = async (path: string | undefined): Promise<Buffer | undefined> => (path === undefined ? undefined : readFile(path));
  const tls =
    settings.tls === undefined
      ? undefined
      : { ca: await read(settings.tls.cacert), cert: await read(settings.tls.cert), key: await read(settings.tls.key) };
  return EtcdClusterStore.open({
    endpoints: settings.endpoints,
    host: settings.host,
    prefix: settings.prefix,
    stateDir: EtcdClusterStore.stateDir(dataRoot),
    tls,
    leaseTtlSeconds: settings.leaseTtlSeconds,
    commandTimeoutMs: settings.commandTimeoutMs,
    display: settings.store,
    logger,
  });
}

/** How long naming the volumes of a plugin in `plugin <name> is in use` may take. */
const USERS_TIMEOUT_MS = 2_000;

/** The names of the volumes on a (managed plugin) driver, for the text of `is in use`. */
async function volumesOn(volumes: VolumesService | undefined, driver: string): Promise<string[]> {
  if (volumes === undefined) return [];
  const filters = Filters.empty();
  filters.add('driver', driver);
  const { volumes: found } = await volumes.list(filters, { signal: AbortSignal.timeout(USERS_TIMEOUT_MS) });
  return found.map((v) => v.Name);
}

function formatHostPort({ host, port }: { host: string; port: number }): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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
