import type { PluginCallOutcome } from '@berth/plugin-store';

/** What the volume gauges are read from at each scrape (`VolumesService.countByDriver`). */
export interface VolumeCounts {
  countByDriver(): ReadonlyMap<string, { readonly volumes: number; readonly references: number }>;
}

/** What an fsync made durable: the metadata database's WAL, or the local driver's volumes root. */
export type FsyncTarget = 'metadata-wal' | 'volumes-root';

/**
 * berthd's Prometheus metrics (`--metrics-addr`): the observers the packages and the API server
 * are given, and the text Prometheus scrapes. prom-client is loaded only when metrics are served.
 */
export interface DaemonMetrics {
  /** The `Content-Type` of `render()`'s text. */
  readonly contentType: string;
  render(): Promise<string>;
  apiRequest(method: string, route: string, status: number, durationMs: number): void;
  pluginCall(plugin: string, method: string, durationMs: number, outcome: PluginCallOutcome): void;
  pluginRestart(plugin: string, started: boolean): void;
  metadataCommit(durable: boolean): void;
  /** The observer of the fsyncs of `target`: each one's duration and the writes it made durable (a `GroupSync` run). */
  fsyncObserver(target: FsyncTarget): (run: { readonly durationMs: number; readonly callers: number }) => void;
  /** Reads the volume gauges from `source` at every scrape. */
  watchVolumes(source: VolumeCounts): void;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PLUGIN_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export async function createMetrics(): Promise<DaemonMetrics> {
  // A CommonJS module: its exports are `default` both from Node's loader (which also gives the names
  // it can see) and from the bundled berthd's chunk (which gives only `default`).
  const prom = (await import('prom-client')).default;
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const requests = new prom.Histogram({
    name: 'berth_api_request_duration_seconds',
    help: 'Engine API requests by method, route (the pattern of moby’s router) and status, and how long they took.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const pluginCalls = new prom.Histogram({
    name: 'berth_plugin_call_duration_seconds',
    help: 'Calls to plugins by plugin, method and outcome (ok, error, timeout, canceled), and how long they took.',
    labelNames: ['plugin', 'method', 'outcome'] as const,
    buckets: PLUGIN_BUCKETS,
    registers,
  });
  const restarts = new prom.Counter({
    name: 'berth_plugin_restarts_total',
    help: 'Restarts of plugins that exited while enabled, by plugin and result (started, failed).',
    labelNames: ['plugin', 'result'] as const,
    registers,
  });
  const commits = new prom.Counter({
    name: 'berth_metadata_commits_total',
    help: 'Commits to the volume metadata database: durable (acknowledged after a WAL sync) or lazy.',
    labelNames: ['durability'] as const,
    registers,
  });
  const fsyncs = new prom.Histogram({
    name: 'berth_fsync_duration_seconds',
    help: 'fsyncs that made writes durable, by target (metadata-wal, volumes-root), and how long they took.',
    labelNames: ['target'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const batches = new prom.Histogram({
    name: 'berth_group_commit_batch_size',
    help: 'Writes made durable by one fsync (group commit), by target.',
    labelNames: ['target'] as const,
    buckets: BATCH_BUCKETS,
    registers,
  });
  let volumeSource: VolumeCounts | undefined;
  const perDriver = (name: string, help: string, pick: (c: { volumes: number; references: number }) => number): void => {
    new prom.Gauge({
      name,
      help,
      labelNames: ['driver'] as const,
      registers,
      collect() {
        this.reset();
        for (const [driver, counts] of volumeSource?.countByDriver() ?? []) this.set({ driver }, pick(counts));
      },
    });
  };
  perDriver('berth_volumes', 'Volumes by driver.', (c) => c.volumes);
  perDriver('berth_volume_references', 'References held on volumes (mount references), by driver.', (c) => c.references);

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    apiRequest: (method, route, status, durationMs) => requests.observe({ method, route, status: String(status) }, durationMs / 1000),
    pluginCall: (plugin, method, durationMs, outcome) => pluginCalls.observe({ plugin, method, outcome }, durationMs / 1000),
    pluginRestart: (plugin, started) => restarts.inc({ plugin, result: started ? 'started' : 'failed' }),
    metadataCommit: (durable) => commits.inc({ durability: durable ? 'durable' : 'lazy' }),
    fsyncObserver: (target) => (run) => {
      fsyncs.observe({ target }, run.durationMs / 1000);
      batches.observe({ target }, run.callers);
    },
    watchVolumes: (source) => {
      volumeSource = source;
    },
  };
}
