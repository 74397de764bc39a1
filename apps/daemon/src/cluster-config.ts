/**
 * The cluster settings (dockerd's old `--cluster-store`, `--cluster-advertise`,
 * `--cluster-store-opt`), parsed without loading the cluster store itself: berthd loads it only
 * when `--cluster-store` is given.
 */

/** Where global volumes are kept, and as whom this host takes part. */
export interface ClusterConfig {
  /** The `--cluster-store` value as given: `etcd://host:port[,host:port...][/prefix]`. */
  readonly store: string;
  /** The etcd client URLs (`https://` with TLS). */
  readonly endpoints: readonly string[];
  /** The key prefix the hosts of this cluster share; `undefined`: the cluster store's default (`/berth`). */
  readonly prefix: string | undefined;
  /** This host's name in the cluster (`--cluster-advertise`; default the machine's host name). */
  readonly host: string;
  /** Paths of the PEM files, as etcd's own clients name them. */
  readonly tls: { readonly cacert?: string; readonly cert?: string; readonly key?: string } | undefined;
  /** `discovery.ttl`: how long a host's references outlive it; `undefined`: the cluster store's default (15 s). */
  readonly leaseTtlSeconds: number | undefined;
  /** `command-timeout`: the deadline of one etcd request; `undefined`: the cluster store's default (3 s). */
  readonly commandTimeoutMs: number | undefined;
}

export const DEFAULT_ETCD_PORT = 2379;

/**
 * `--cluster-store-opt` keys: TLS as etcdctl spells it (and dockerd's `kv.*file` names), dockerd's
 * `discovery.ttl`, etcdctl's `command-timeout`.
 */
const OPTION_KEYS: Readonly<Record<string, 'cacert' | 'cert' | 'key' | 'ttl' | 'timeout'>> = {
  cacert: 'cacert',
  cert: 'cert',
  key: 'key',
  'kv.cacertfile': 'cacert',
  'kv.certfile': 'cert',
  'kv.keyfile': 'key',
  'discovery.ttl': 'ttl',
  'command-timeout': 'timeout',
};

export interface ClusterSettings {
  store: string | undefined;
  advertise: string | undefined;
  /** `key=value` flags, or the `cluster-store-opts` map of daemon.json. */
  options: readonly string[] | Readonly<Record<string, string>> | undefined;
  /** The machine's host name: the default `advertise`. */
  hostname: string;
  /** Relative paths are taken from here. */
  absolute: (path: string) => string;
}

/** The cluster configuration, or `undefined` without `--cluster-store`; throws `Error` with the text berthd prints. */
export function clusterConfig(settings: ClusterSettings): ClusterConfig | undefined {
  const { store, advertise } = settings;
  const options = optionMap(settings.options);
  if (store === undefined || store === '') {
    // dockerd's text.
    if ((advertise ?? '') !== '') throw new Error('invalid cluster configuration. --cluster-advertise must be accompanied by --cluster-store configuration');
    if (Object.keys(options).length > 0) throw new Error('invalid cluster configuration. --cluster-store-opt must be accompanied by --cluster-store configuration');
    return undefined;
  }
  const { addresses, prefix } = parseStoreUrl(store);

  const tls: { cacert?: string; cert?: string; key?: string } = {};
  let leaseTtlSeconds: number | undefined;
  let commandTimeoutMs: number | undefined;
  for (const [name, value] of Object.entries(options)) {
    const key = OPTION_KEYS[name];
    if (key === undefined) {
      throw new Error(`invalid cluster-store-opt "${name}": berthd takes ${Object.keys(OPTION_KEYS).join(', ')}`);
    }
    if (key === 'ttl') {
      const ms = parseGoDuration(value);
      if (ms < 1000 || ms % 1000 !== 0) throw new Error(`invalid cluster-store-opt discovery.ttl=${value}: a lease TTL is a whole number of seconds, at least 1s`);
      leaseTtlSeconds = ms / 1000;
    } else if (key === 'timeout') {
      commandTimeoutMs = parseGoDuration(value);
      if (commandTimeoutMs <= 0) throw new Error(`invalid cluster-store-opt command-timeout=${value}: it must be positive`);
    } else {
      if (value === '') throw new Error(`invalid cluster-store-opt ${name}: a file path is needed`);
      tls[key] = settings.absolute(value);
    }
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new Error('invalid cluster-store-opt: cert and key go together (a client certificate and its key)');
  }
  const secure = Object.keys(tls).length > 0;
  return {
    store,
    endpoints: addresses.map((address) => `${secure ? 'https' : 'http'}://${address}`),
    prefix,
    host: advertise === undefined || advertise === '' ? settings.hostname : advertise,
    tls: secure ? tls : undefined,
    leaseTtlSeconds,
    commandTimeoutMs,
  };
}

/** `etcd://h1:2379,h2:2379/prefix`: the members' `host:port`s (port 2379 when left out) and the key prefix. */
export function parseStoreUrl(url: string): { addresses: string[]; prefix: string | undefined } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (scheme === null || scheme[1]?.toLowerCase() !== 'etcd') {
    throw new Error(`unsupported cluster store "${url}": berthd keeps global volumes in etcd (etcd://host:port[,host:port...][/prefix])`);
  }
  const rest = url.slice(scheme[0].length);
  const slash = rest.indexOf('/');
  const hostList = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash).replace(/\/+$/, '');
  const addresses = hostList.split(',').map((entry) => {
    const address = entry.trim();
    const bracket = address.startsWith('[') ? address.indexOf(']') : -1;
    const colon = address.lastIndexOf(':');
    const hasPort = colon > bracket && colon >= 0;
    const host = hasPort ? address.slice(0, colon) : address;
    const port = hasPort ? address.slice(colon + 1) : String(DEFAULT_ETCD_PORT);
    if (host === '' || !/^\d{1,5}$/.test(port) || Number(port) === 0 || Number(port) > 65535) {
      throw new Error(`invalid cluster store "${url}": "${entry}" is not host:port`);
    }
    return `${host}:${port}`;
  });
  return { addresses, prefix: path === '' ? undefined : path };
}

function optionMap(options: ClusterSettings['options']): Record<string, string> {
  if (options === undefined) return {};
  if (!Array.isArray(options)) return { ...(options as Record<string, string>) };
  const map: Record<string, string> = {};
  for (const option of options as readonly string[]) {
    const eq = option.indexOf('=');
    // dockerd's text for a map option without `=`.
    if (eq <= 0) throw new Error(`invalid argument "${option}" for "--cluster-store-opt" flag: bad format for key-value pair`);
    map[option.slice(0, eq)] = option.slice(eq + 1);
  }
  return map;
}

const UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's `time.ParseDuration`, in milliseconds. */
export function parseGoDuration(text: string): number {
  const invalid = (): Error => new Error(`time: invalid duration ${JSON.stringify(text)}`);
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();
  let total = 0;
  while (rest !== '') {
    const part = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (part === null) throw invalid();
    total += Number(part[1]) * (UNITS[part[2] as string] as number);
    rest = rest.slice(part[0].length);
  }
  return sign * total;
}
