import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compareGoStrings, decodeGo, goBool, GoJsonError, goString, goStringMap, goStringSlice, goStruct, toPlain, unmarshalValue, type GoType, type JsonValue } from '@berth/gocompat';
import { clusterConfig, type ClusterConfig } from './cluster-config.js';
import { lookupGroup } from './group.js';
import type { LogFormat, LogLevel } from './logger.js';

/** The daemon's settings once flags, `daemon.json` and defaults are merged. */
export interface DaemonConfig {
  readonly dataRoot: string;
  readonly execRoot: string;
  /** Unix socket paths the API is served on. */
  readonly hosts: readonly string[];
  /** Group owning the sockets (name or gid); `undefined` for none. */
  readonly group: string | undefined;
  readonly pidfile: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** The `daemon.json` that was read, if any. */
  readonly configFile: string | undefined;
  /** A containerd socket to run plugins with; `undefined`: berthd starts its own on first use. */
  readonly containerd: string | undefined;
  /** The containerd namespace of plugin containers (dockerd: `plugins.moby`). */
  readonly containerdPluginsNamespace: string;
  /** Keep plugins (and berthd's own containerd) running across a restart of berthd. */
  readonly liveRestore: boolean;
  /** Where legacy (v1) plugins are looked for; `undefined`: dockerd's directories. */
  readonly pluginDirs: { readonly socketDirs: readonly string[]; readonly specDirs: readonly string[] } | undefined;
  /**
   * Registries reached without verified TLS (HTTPS without certificate checks, then plain HTTP):
   * `host:port` names and CIDRs, those configured followed by dockerd's loopback defaults.
   */
  readonly insecureRegistries: readonly string[];
  /** Where Prometheus metrics are served over HTTP (`--metrics-addr`); `undefined`: not served. */
  readonly metricsAddress: { readonly host: string; readonly port: number } | undefined;
  /** `--cluster-store`: global volumes shared with other hosts through etcd; `undefined`: every volume is local. */
  readonly cluster: ClusterConfig | undefined;
}

/** Loopback registries are always insecure, as in dockerd. */
export const DEFAULT_INSECURE_REGISTRIES: readonly string[] = ['127.0.0.0/8', '::1/128'];

export type Command =
  | { kind: 'run'; config: DaemonConfig }
  | { kind: 'help' }
  | { kind: 'version' }
  /** `berthd export-docker-metadata --data-root D`: the way back to dockerd. */
  | { kind: 'export-docker-metadata'; dataRoot: string };

export const EXPORT_COMMAND = 'export-docker-metadata';

/** What the defaults depend on; the process's own by default, replaceable in tests. */
export interface ConfigEnvironment {
  uid: number;
  env: Readonly<Record<string, string | undefined>>;
  homedir: string;
  cwd: string;
  /** The file's text, or `undefined` when it does not exist. */
  readFile(path: string): string | undefined;
  groupExists(name: string): boolean;
  /** The machine's host name (the default `--cluster-advertise`). */
  hostname: string;
}

/** A configuration berthd refuses to start with; `message` is what it prints. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_CONFIG_FILE = '/etc/berth/daemon.json';

/**
 * The settings, each a command-line flag and a `daemon.json` key as in dockerd. Adding one (say
 * `containerd` or `live-restore`) is a row here and a field in `DaemonConfig`.
 */
const SETTINGS: ReadonlyArray<{ key: string; flag: string; type: GoType }> = [
  { key: 'cluster-advertise', flag: 'cluster-advertise', type: goString },
  { key: 'cluster-store', flag: 'cluster-store', type: goString },
  { key: 'cluster-store-opts', flag: 'cluster-store-opt', type: goStringMap },
  { key: 'containerd', flag: 'containerd', type: goString },
  { key: 'containerd-plugins-namespace', flag: 'containerd-plugins-namespace', type: goString },
  { key: 'data-root', flag: 'data-root', type: goString },
  { key: 'debug', flag: 'debug', type: goBool },
  { key: 'exec-root', flag: 'exec-root', type: goString },
  { key: 'group', flag: 'group', type: goString },
  { key: 'hosts', flag: 'host', type: goStringSlice },
  { key: 'insecure-registries', flag: 'insecure-registry', type: goStringSlice },
  { key: 'live-restore', flag: 'live-restore', type: goBool },
  { key: 'log-format', flag: 'log-format', type: goString },
  { key: 'log-level', flag: 'log-level', type: goString },
  { key: 'metrics-addr', flag: 'metrics-addr', type: goString },
  { key: 'pidfile', flag: 'pidfile', type: goString },
  { key: 'plugin-socket-dirs', flag: 'plugin-socket-dir', type: goStringSlice },
  { key: 'plugin-spec-dirs', flag: 'plugin-spec-dir', type: goStringSlice },
];

const FILE_TYPE = goStruct('config.Config', Object.fromEntries(SETTINGS.map((s) => [s.key, s.type])));

const OPTIONS = {
  'cluster-advertise': { type: 'string' },
  'cluster-store': { type: 'string' },
  'cluster-store-opt': { type: 'string', multiple: true },
  'config-file': { type: 'string' },
  containerd: { type: 'string' },
  'containerd-plugins-namespace': { type: 'string' },
  'data-root': { type: 'string' },
  debug: { type: 'boolean', short: 'D' },
  'exec-root': { type: 'string' },
  group: { type: 'string', short: 'G' },
  help: { type: 'boolean', short: 'h' },
  host: { type: 'string', short: 'H', multiple: true },
  'insecure-registry': { type: 'string', multiple: true },
  'live-restore': { type: 'boolean' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string', short: 'l' },
  'metrics-addr': { type: 'string' },
  pidfile: { type: 'string', short: 'p' },
  'plugin-socket-dir': { type: 'string', multiple: true },
  'plugin-spec-dir': { type: 'string', multiple: true },
  version: { type: 'boolean', short: 'v' },
} as const;

export const USAGE = `Usage:  berthd [OPTIONS]

A Docker-compatible volume and plugin daemon

Options:
      --cluster-advertise string
                             This host's name in the cluster (default: the machine's host name)
      --cluster-store string Keep global-scope volumes in etcd, shared with other hosts:
                             etcd://host:port[,host:port...][/prefix]
      --cluster-store-opt map
                             Cluster store options: cacert=, cert=, key= (TLS, PEM files),
                             discovery.ttl= (lease TTL, default 15s), command-timeout= (default 3s)
      --config-file string   Daemon configuration file (default "${DEFAULT_CONFIG_FILE}" if it exists)
      --containerd string    containerd socket to run plugins with (default: berthd starts its own
                             under <exec-root>/containerd when a plugin first needs it)
      --containerd-plugins-namespace string
                             containerd namespace of plugin containers (default "plugins.moby")
      --data-root string     Root directory of persistent state (default "/var/lib/berth",
                             or "$XDG_DATA_HOME/berth" / "~/.local/share/berth" when not root)
  -D, --debug                Enable debug mode
      --exec-root string     Root directory for execution state files (default "/run/berth",
                             or "$XDG_RUNTIME_DIR/berth" / "<data-root>/run" when not root)
  -G, --group string         Group for the unix socket (default "docker" if that group exists)
  -h, --help                 Print usage
  -H, --host list            Daemon socket to listen on, unix:///path (default "unix://<exec-root>/berth.sock")
      --insecure-registry list
                             Enable insecure registry communication (host:port or CIDR; loopback
                             registries always are)
      --live-restore         Keep plugins running while berthd is down
      --log-format string    Set the logging format ("text"|"json") (default "text")
  -l, --log-level string     Set the logging level ("debug"|"info"|"warn"|"error") (default "info")
      --metrics-addr string  Serve Prometheus metrics on this TCP address (host:port; ":port" is
                             127.0.0.1 only) (default: not served)
  -p, --pidfile string       Path to use for daemon PID file (default "<exec-root>/berthd.pid")
      --plugin-socket-dir list
                             Directory of legacy plugin sockets (default "/run/docker/plugins")
      --plugin-spec-dir list Directory of legacy plugin .spec/.json files
                             (default "/etc/docker/plugins", "/usr/lib/docker/plugins")
  -v, --version              Print version information and quit

Commands:
  export-docker-metadata --data-root string
                             Write <data-root>/volumes/metadata.db from berth's volumes (drivers,
                             labels, options), so that dockerd can be started on the data-root
                             again. Run it while berthd is stopped.
`;

/** Reads flags and `daemon.json` the way dockerd does; throws `ConfigError` with dockerd's texts. */
export function parseCommandLine(argv: readonly string[], environment: Partial<ConfigEnvironment> = {}): Command {
  const env = { ...processEnvironment(), ...environment };
  if (argv[0] === EXPORT_COMMAND) return parseExportCommand(argv.slice(1), env.cwd);
  const flags = parseFlags(argv);
  if (flags.help === true) return { kind: 'help' };
  if (flags.version === true) return { kind: 'version' };

  const explicitFile = flags['config-file'];
  const configFile = explicitFile ?? DEFAULT_CONFIG_FILE;
  let fileValues: Record<string, unknown> = {};
  let usedFile: string | undefined;
  let fileText: string | undefined;
  try {
    fileText = env.readFile(configFile);
  } catch (err) {
    throw new ConfigError(`unable to configure the Docker daemon with file ${configFile}: ${(err as Error).message}`);
  }
  if (fileText === undefined) {
    if (explicitFile !== undefined) {
      throw new ConfigError(`unable to configure the Docker daemon with file ${configFile}: open ${configFile}: no such file or directory`);
    }
  } else {
    usedFile = configFile;
    try {
      fileValues = readConfigFile(fileText, flags);
    } catch (err) {
      throw new ConfigError(`unable to configure the Docker daemon with file ${configFile}: ${(err as Error).message}`);
    }
  }

  const pick = <T>(flag: T | undefined, key: string): T | undefined => flag ?? (fileValues[key] as T | undefined);
  try {
    return { kind: 'run', config: resolveConfig(flags, pick, env, usedFile) };
  } catch (err) {
    if (!(err instanceof ConfigError) || usedFile === undefined) throw err;
    throw new ConfigError(
      `unable to configure the Docker daemon with file ${usedFile}: merged configuration validation from file and command line flags failed: ${err.message}`,
    );
  }
}

type Flags = ReturnType<typeof parseFlags>;

function parseFlags(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const name = /'(-[^' ]+)/.exec(e.message)?.[1] ?? '';
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new ConfigError(`unknown flag: ${name}\nSee 'berthd --help'.`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new ConfigError(`flag needs an argument: ${name}\nSee 'berthd --help'.`);
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new ConfigError(`"berthd" accepts no arguments.\nSee 'berthd --help'.`);
      default:
        throw new ConfigError(e.message);
    }
  }
}

function parseExportCommand(argv: readonly string[], cwd: string): Command {
  const usage = `\nSee 'berthd --help'.`;
  let values;
  try {
    values = parseArgs({ args: [...argv], options: { 'data-root': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`${EXPORT_COMMAND}: ${(err as Error).message.split('. ')[0] ?? ''}${usage}`);
  }
  if (values.help === true) return { kind: 'help' };
  const dataRoot = values['data-root'];
  if (dataRoot === undefined || dataRoot === '') throw new ConfigError(`${EXPORT_COMMAND} needs --data-root, the data-root to export${usage}`);
  return { kind: EXPORT_COMMAND, dataRoot: resolve(cwd, dataRoot) };
}

/** Unknown keys, then keys also given as flags, then types: dockerd's order of complaints. */
function readConfigFile(text: string, flags: Flags): Record<string, unknown> {
  const bytes = Buffer.from(text.trim(), 'utf8');
  if (bytes.length === 0) return {};
  let document: JsonValue;
  try {
    document = unmarshalValue(bytes);
  } catch (err) {
    if (err instanceof GoJsonError) throw new Error(err.message);
    throw err;
  }
  if (document.kind === 'null') return {};
  if (document.kind !== 'object') throw new Error(`json: cannot unmarshal ${document.kind} into Go value of type map[string]interface {}`);

  const keys = new Map(document.entries);
  const unknown = [...keys.keys()].filter((key) => !SETTINGS.some((s) => s.key === key)).sort();
  if (unknown.length > 0) throw new Error(`the following directives don't match any configuration option: ${unknown.join(', ')}`);

  const conflicts: string[] = [];
  // In the flags' byte order, as pflag visits them (and without loading ICU's collation at start).
  for (const setting of SETTINGS.toSorted((a, b) => (a.flag < b.flag ? -1 : a.flag > b.flag ? 1 : 0))) {
    const flagValue = flags[setting.flag as keyof Flags];
    const fileValue = keys.get(setting.key);
    if (flagValue === undefined || fileValue === undefined) continue;
    conflicts.push(`${setting.key}: (from flag: ${goFormat(flagValue)}, from file: ${goFormat(toPlain(fileValue))})`);
  }
  if (conflicts.length > 0) {
    throw new Error(`the following directives are specified both as a flag and in the configuration file: ${conflicts.join(', ')}`);
  }

  try {
    return decodeGo(document, FILE_TYPE) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof GoJsonError) throw new Error(err.message);
    throw err;
  }
}

function resolveConfig(
  flags: Flags,
  pick: <T>(flag: T | undefined, key: string) => T | undefined,
  env: ConfigEnvironment,
  configFile: string | undefined,
): DaemonConfig {
  const debug = pick(flags.debug, 'debug') === true;
  const logLevelText = pick(flags['log-level'], 'log-level');
  const logFormat = pick(flags['log-format'], 'log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw new ConfigError(`unknown log format: ${logFormat}`);
  const logLevel = debug ? 'debug' : parseLogLevel(logLevelText);

  const absolute = (p: string): string => resolve(env.cwd, p);
  const dataRootSetting = pick(flags['data-root'], 'data-root');
  const dataRoot = absolute(dataRootSetting ?? defaultDataRoot(env));
  const execRootSetting = pick(flags['exec-root'], 'exec-root');
  const execRoot = absolute(execRootSetting ?? defaultExecRoot(env, dataRoot));
  const hostSettings = pick(flags.host, 'hosts') ?? [];
  const defaultSocket = join(execRoot, 'berth.sock');
  const hosts = hostSettings.length === 0 ? [defaultSocket] : hostSettings.map((h) => socketPath(h, defaultSocket, absolute));
  const groupSetting = pick(flags.group, 'group');
  const group = groupSetting ?? (env.groupExists('docker') ? 'docker' : undefined);
  const pidfile = absolute(pick(flags.pidfile, 'pidfile') ?? join(execRoot, 'berthd.pid'));
  const containerd = pick(flags.containerd, 'containerd');
  const namespace = pick(flags['containerd-plugins-namespace'], 'containerd-plugins-namespace') ?? 'plugins.moby';
  const socketDirs = pick(flags['plugin-socket-dir'], 'plugin-socket-dirs');
  const specDirs = pick(flags['plugin-spec-dir'], 'plugin-spec-dirs');
  const pluginDirs =
    socketDirs === undefined && specDirs === undefined
      ? undefined
      : { socketDirs: (socketDirs ?? ['/run/docker/plugins']).map(absolute), specDirs: (specDirs ?? ['/etc/docker/plugins', '/usr/lib/docker/plugins']).map(absolute) };
  let cluster: ClusterConfig | undefined;
  try {
    cluster = clusterConfig({
      store: pick(flags['cluster-store'], 'cluster-store'),
      advertise: pick(flags['cluster-advertise'], 'cluster-advertise'),
      options: pick<readonly string[] | Readonly<Record<string, string>>>(flags['cluster-store-opt'], 'cluster-store-opts'),
      hostname: env.hostname,
      absolute,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const insecureRegistries = [
    ...new Set([...(pick(flags['insecure-registry'], 'insecure-registries') ?? []).map(insecureRegistry), ...DEFAULT_INSECURE_REGISTRIES]),
  ];
  return {
    dataRoot,
    execRoot,
    hosts: [...new Set(hosts)],
    group: group === '' ? undefined : group,
    pidfile,
    logLevel,
    logFormat,
    configFile,
    containerd: containerd === undefined || containerd === '' ? undefined : absolute(containerd.replace(/^unix:\/\//, '')),
    containerdPluginsNamespace: namespace === '' ? 'plugins.moby' : namespace,
    liveRestore: pick(flags['live-restore'], 'live-restore') === true,
    pluginDirs,
    insecureRegistries,
    metricsAddress: metricsAddress(pick(flags['metrics-addr'], 'metrics-addr')),
    cluster,
  };
}

/**
 * `--metrics-addr`: `host:port`, `[ipv6]:port`, or `:port`, which berth serves on loopback only
 * (dockerd on every interface: metrics say much about a host, and need no one else's eyes by
 * default). Empty: not served.
 */
function metricsAddress(text: string | undefined): { host: string; port: number } | undefined {
  if (text === undefined || text === '') return undefined;
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new ConfigError(`invalid metrics-addr ${JSON.stringify(text)}: want host:port, e.g. 127.0.0.1:9323`);
  }
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

/**
 * One `insecure-registries` entry as dockerd's `loadInsecureRegistries` takes it: `http://` and
 * `https://` are dropped (dockerd warns), any other scheme is refused; a CIDR must parse.
 */
function insecureRegistry(entry: string): string {
  let value = entry.trim();
  const lower = value.toLowerCase();
  if (lower.startsWith('http://')) value = value.slice('http://'.length);
  else if (lower.startsWith('https://')) value = value.slice('https://'.length);
  else if (value.includes('://')) throw new ConfigError(`insecure registry ${entry} should not contain '://'`);
  if (value === '') throw new ConfigError(`invalid index name (${entry})`);
  const slash = value.indexOf('/');
  if (slash >= 0) {
    const address = value.slice(0, slash);
    const prefix = value.slice(slash + 1);
    const family = isIP(address);
    const bits = /^\d{1,3}$/.test(prefix) ? Number(prefix) : Number.NaN;
    if (family === 0 || !(bits >= 0 && bits <= (family === 6 ? 128 : 32))) {
      throw new ConfigError(`invalid index name (${entry}): invalid CIDR address`);
    }
  }
  return value;
}

/** dockerd's accepted levels, folded onto berth's four. */
function parseLogLevel(text: string | undefined): LogLevel {
  if (text === undefined || text === '') return 'info';
  const levels: Record<string, LogLevel> = {
    trace: 'debug',
    debug: 'debug',
    info: 'info',
    warn: 'warn',
    warning: 'warn',
    error: 'error',
    fatal: 'error',
    panic: 'error',
  };
  const level = levels[text.toLowerCase()];
  if (level === undefined) throw new ConfigError(`invalid logging level: ${text}`);
  return level;
}

function socketPath(host: string, defaultSocket: string, absolute: (p: string) => string): string {
  const trimmed = host.trim();
  if (trimmed === '' || trimmed === 'unix://') return defaultSocket;
  if (!trimmed.startsWith('unix://')) {
    throw new ConfigError(`unsupported host "${host}": berthd serves the API on unix sockets only (unix:///path/to/socket)`);
  }
  return absolute(trimmed.slice('unix://'.length));
}

function defaultDataRoot(env: ConfigEnvironment): string {
  if (env.uid === 0) return '/var/lib/berth';
  const xdg = env.env.XDG_DATA_HOME;
  return xdg !== undefined && xdg !== '' ? join(xdg, 'berth') : join(env.homedir, '.local', 'share', 'berth');
}

function defaultExecRoot(env: ConfigEnvironment, dataRoot: string): string {
  if (env.uid === 0) return '/run/berth';
  const xdg = env.env.XDG_RUNTIME_DIR;
  return xdg !== undefined && xdg !== '' ? join(xdg, 'berth') : join(dataRoot, 'run');
}

/** Go's `%v` of a flag or JSON value, as dockerd prints conflicts. */
function goFormat(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goFormat).join(' ')}]`;
  if (value !== null && typeof value === 'object') {
    return `map[${Object.entries(value)
      .sort(([a], [b]) => compareGoStrings(a, b))
      .map(([k, v]) => `${k}:${goFormat(v)}`)
      .join(' ')}]`;
  }
  return value === null ? '<nil>' : String(value);
}

function processEnvironment(): ConfigEnvironment {
  return {
    uid: process.getuid?.() ?? 0,
    env: process.env,
    homedir: homedir(),
    cwd: process.cwd(),
    readFile: (path) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined),
    groupExists: (name) => lookupGroup(name) !== undefined,
    hostname: hostname(),
  };
}
