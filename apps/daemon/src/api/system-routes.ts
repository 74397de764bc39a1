import { readdirSync, readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import type { EventsService } from '../events/events-service.js';
import { BERTH_VERSION, MAX_API_VERSION, MIN_API_VERSION } from '../version.js';
import { goMap } from '@berth/gocompat';
import { eventsRoute } from './events-route.js';
import { writeEmpty, writeJson } from './respond.js';
import { route, type Route } from './router.js';

/** What `/info` reports about the daemon beyond the host. */
export interface SystemInfoSource {
  readonly dataRoot: string;
  readonly debug: boolean;
  readonly engineId: string;
  /** `--live-restore`: reported as `LiveRestoreEnabled`. */
  readonly liveRestore?: boolean;
  /** `insecure-registries` (names and CIDRs, loopback included): reported in `RegistryConfig`. */
  readonly insecureRegistries?: readonly string[];
  /** `--cluster-store`: reported as dockerd did (`ClusterStore`, `ClusterAdvertise`), with this host's name as `Name`. */
  readonly cluster?: { readonly store: string; readonly host: string; warning(): string | undefined } | undefined;
  volumeDrivers(): string[];
}

/** `OPTIONS /*`, `/_ping`, `/version`, `/info` and `/events`, in moby's order. */
export function systemRoutes(source: SystemInfoSource, events: EventsService): Route[] {
  return [
    route('OPTIONS', '/{anyroute:.*}', ({ res }) => writeEmpty(res, 200)),
    route('GET', '/_ping', ({ res }) => ping(res, false)),
    route('HEAD', '/_ping', ({ res }) => ping(res, true)),
    eventsRoute(events),
    route('GET', '/info', ({ res }) => writeJson(res, 200, systemInfo(source, events.subscriberCount))),
    route('GET', '/version', ({ res }) => writeJson(res, 200, systemVersion())),
  ];
}

function ping(res: ServerResponse, head: boolean): void {
  res.setHeader('Cache-Control', 'no-cache, no-store, must-revalidate');
  res.setHeader('Pragma', 'no-cache');
  res.setHeader('Builder-Version', '1');
  res.setHeader('Swarm', 'inactive');
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': head ? 0 : 2 });
  res.end(head ? undefined : 'OK');
}

/**
 * moby's `system.Info`, field for field in Go's order, with what is true of berth: no containers,
 * images, networks or swarm; the volume drivers it has; the host it runs on.
 */
export function systemInfo(source: SystemInfoSource, eventListeners: number): Record<string, unknown> {
  const { cluster } = source;
  const clusterWarning = cluster?.warning();
  return {
    ID: source.engineId,
    Containers: 0,
    ContainersRunning: 0,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: '',
    DriverStatus: [],
    Plugins: { Volume: source.volumeDrivers(), Network: [], Authorization: null, Log: [] },
    MemoryLimit: false,
    SwapLimit: false,
    CpuCfsPeriod: false,
    CpuCfsQuota: false,
    CPUShares: false,
    CPUSet: false,
    PidsLimit: false,
    IPv4Forwarding: false,
    Debug: source.debug,
    NFd: openFileCount(),
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: rfc3339Nano(new Date()),
    LoggingDriver: '',
    CgroupDriver: '',
    NEventsListener: eventListeners,
    KernelVersion: os.release(),
    OperatingSystem: operatingSystem(),
    OSVersion: osReleaseField('VERSION_ID'),
    OSType: 'linux',
    Architecture: os.machine(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: registryConfig(source.insecureRegistries ?? []),
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    GenericResources: null,
    DockerRootDir: source.dataRoot,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: cluster?.host ?? os.hostname(),
    // Today's docker CLI prints neither cluster field; it prints the labels.
    Labels: cluster === undefined ? [] : [`${CLUSTER_STORE_LABEL}=${cluster.store}`, `${CLUSTER_ADVERTISE_LABEL}=${cluster.host}`],
    ExperimentalBuild: false,
    ServerVersion: BERTH_VERSION,
    ...(cluster !== undefined && { ClusterStore: cluster.store, ClusterAdvertise: cluster.host }),
    Runtimes: {},
    DefaultRuntime: '',
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: source.liveRestore === true,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '' },
    RuncCommit: { ID: '' },
    InitCommit: { ID: '' },
    SecurityOptions: [],
    CDISpecDirs: [],
    Warnings: clusterWarning === undefined ? null : [`WARNING: ${clusterWarning}`],
  };
}

const CLUSTER_STORE_LABEL = 'berth.cluster-store';
const CLUSTER_ADVERTISE_LABEL = 'berth.cluster-advertise';

/** moby's `types.Version`; the component is named `Engine` so that `docker version` prints it in full. */
export function systemVersion(): Record<string, unknown> {
  const details = {
    ApiVersion: MAX_API_VERSION,
    Arch: goArch(),
    BuildTime: '',
    Experimental: 'false',
    GitCommit: '',
    GoVersion: `node ${process.version}`,
    KernelVersion: os.release(),
    MinAPIVersion: MIN_API_VERSION,
    Os: 'linux',
  };
  return {
    Platform: { Name: `berth ${BERTH_VERSION}` },
    Components: [{ Name: 'Engine', Version: BERTH_VERSION, Details: details }],
    Version: BERTH_VERSION,
    ApiVersion: MAX_API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: details.GoVersion,
    Os: 'linux',
    Arch: details.Arch,
    KernelVersion: details.KernelVersion,
  };
}

/** Node's architecture names in Go's spelling (`GOARCH`), which clients expect. */
function goArch(): string {
  const names: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };
  return names[process.arch] ?? process.arch;
}

/** Go's RFC 3339 with nanoseconds in UTC: trailing zeros of the fraction dropped. */
export function rfc3339Nano(date: Date): string {
  return date.toISOString().replace(/\.?0+Z$/, 'Z');
}

function operatingSystem(): string {
  return osReleaseField('PRETTY_NAME') || 'Linux';
}

function osReleaseField(key: string): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    const line = text.split('\n').find((l) => l.startsWith(`${key}=`));
    return line === undefined ? '' : line.slice(key.length + 1).replace(/^"(.*)"$/, '$1');
  } catch {
    return '';
  }
}

function openFileCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/**
 * moby's `registry.ServiceConfig` as `/info` shows it: CIDRs in `InsecureRegistryCIDRs`, names in
 * `IndexConfigs` (not secure), Docker Hub's entry, no mirrors. `docker info` lists the insecure
 * ones under "Insecure Registries".
 */
function registryConfig(insecure: readonly string[]): Record<string, unknown> {
  const indexConfigs: Record<string, unknown> = {
    'docker.io': { Name: 'docker.io', Mirrors: [], Secure: true, Official: true },
  };
  const cidrs: string[] = [];
  for (const entry of insecure) {
    if (entry.includes('/')) cidrs.push(entry);
    else indexConfigs[entry] = { Name: entry, Mirrors: [], Secure: false, Official: false };
  }
  return { InsecureRegistryCIDRs: cidrs, IndexConfigs: goMap(indexConfigs), Mirrors: [] };
}
