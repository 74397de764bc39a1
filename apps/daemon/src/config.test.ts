import { describe, expect, it } from 'vitest';
import { parseCommandLine, type ConfigEnvironment, type DaemonConfig } from './config.js';

function env(over: Partial<ConfigEnvironment> & { files?: Record<string, string> } = {}): Partial<ConfigEnvironment> {
  const files = over.files ?? {};
  return {
    uid: 0,
    env: {},
    homedir: '/home/u',
    cwd: '/work',
    readFile: (path) => files[path],
    groupExists: () => false,
    hostname: 'node-1',
    ...over,
  };
}

function config(argv: string[], environment: Partial<ConfigEnvironment> = env()): DaemonConfig {
  const command = parseCommandLine(argv, environment);
  if (command.kind !== 'run') throw new Error(`expected a run command, got ${command.kind}`);
  return command.config;
}

const failure = (argv: string[], environment: Partial<ConfigEnvironment> = env()): string => {
  try {
    parseCommandLine(argv, environment);
  } catch (err) {
    expect((err as Error).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('defaults', () => {
  it('uses the system paths as root', () => {
    expect(config([])).toEqual({
      dataRoot: '/var/lib/berth',
      execRoot: '/run/berth',
      hosts: ['/run/berth/berth.sock'],
      group: undefined,
      pidfile: '/run/berth/berthd.pid',
      logLevel: 'info',
      logFormat: 'text',
      configFile: undefined,
      containerd: undefined,
      containerdPluginsNamespace: 'plugins.moby',
      liveRestore: false,
      pluginDirs: undefined,
      insecureRegistries: ['127.0.0.0/8', '::1/128'],
      metricsAddress: undefined,
      cluster: undefined,
    });
  });

  it('reads --metrics-addr and metrics-addr as dockerd, on loopback when no host is named', () => {
    expect(config(['--metrics-addr', ':9323']).metricsAddress).toEqual({ host: '127.0.0.1', port: 9323 });
    expect(config(['--metrics-addr', '0.0.0.0:9323']).metricsAddress).toEqual({ host: '0.0.0.0', port: 9323 });
    expect(config(['--metrics-addr', '[::1]:0']).metricsAddress).toEqual({ host: '::1', port: 0 });
    const file = '/etc/berth/daemon.json';
    expect(config([], env({ files: { [file]: '{"metrics-addr":"localhost:9400"}' } })).metricsAddress).toEqual({ host: 'localhost', port: 9400 });
    expect(config([], env({ files: { [file]: '{"metrics-addr":""}' } })).metricsAddress).toBeUndefined();
    for (const bad of ['9323', 'host:', 'host:99999', '::1:9323', 'a:b']) {
      expect(failure(['--metrics-addr', bad])).toBe(`invalid metrics-addr ${JSON.stringify(bad)}: want host:port, e.g. 127.0.0.1:9323`);
    }
  });

  it('reads insecure registries as dockerd: flag or daemon.json key, loopback always included', () => {
    expect(config(['--insecure-registry', 'reg.example:5000', '--insecure-registry', 'http://10.0.0.0/8']).insecureRegistries).toEqual([
      'reg.example:5000',
      '10.0.0.0/8',
      '127.0.0.0/8',
      '::1/128',
    ]);
    const file = '/etc/berth/daemon.json';
    expect(config([], env({ files: { [file]: '{"insecure-registries":["127.0.0.0/8","r:1"]}' } })).insecureRegistries).toEqual([
      '127.0.0.0/8',
      'r:1',
      '::1/128',
    ]);
    expect(failure(['--insecure-registry', 'ftp://r:1'])).toBe("insecure registry ftp://r:1 should not contain '://'");
    expect(failure(['--insecure-registry', '10.0.0.0/99'])).toBe('invalid index name (10.0.0.0/99): invalid CIDR address');
  });

  it('reads the containerd, live-restore and legacy plugin directory settings', () => {
    expect(
      config(['--containerd', 'unix:///run/containerd/containerd.sock', '--live-restore', '--plugin-spec-dir', '/tmp/specs']),
    ).toMatchObject({
      containerd: '/run/containerd/containerd.sock',
      liveRestore: true,
      pluginDirs: { socketDirs: ['/run/docker/plugins'], specDirs: ['/tmp/specs'] },
    });
  });

  it('uses XDG directories, else the home directory, when not root', () => {
    const xdg = config([], env({ uid: 1000, env: { XDG_DATA_HOME: '/x/data', XDG_RUNTIME_DIR: '/run/user/1000' } }));
    expect(xdg).toMatchObject({ dataRoot: '/x/data/berth', execRoot: '/run/user/1000/berth', hosts: ['/run/user/1000/berth/berth.sock'] });
    const home = config([], env({ uid: 1000 }));
    expect(home).toMatchObject({
      dataRoot: '/home/u/.local/share/berth',
      execRoot: '/home/u/.local/share/berth/run',
      pidfile: '/home/u/.local/share/berth/run/berthd.pid',
    });
    expect(config(['--data-root', 'd'], env({ uid: 1000 })).execRoot).toBe('/work/d/run');
  });

  it('uses the docker group for the socket only when it exists', () => {
    expect(config([], env({ groupExists: (g) => g === 'docker' })).group).toBe('docker');
    expect(config(['-G', 'staff'], env({ groupExists: () => true })).group).toBe('staff');
  });
});

describe('flags', () => {
  it('reads every flag, resolving relative paths', () => {
    const c = config(['--data-root', 'data', '--exec-root=/e', '-H', 'unix://s1.sock', '--host', 'unix:///abs.sock', '--pidfile', 'p.pid', '--log-level', 'WARN', '--log-format', 'json']);
    expect(c).toMatchObject({ dataRoot: '/work/data', execRoot: '/e', hosts: ['/work/s1.sock', '/abs.sock'], pidfile: '/work/p.pid', logLevel: 'warn', logFormat: 'json' });
    expect(config(['-D', '--log-level', 'error']).logLevel).toBe('debug');
    expect(config(['-H', 'unix://']).hosts).toEqual(['/run/berth/berth.sock']);
  });

  it('answers --help and --version', () => {
    expect(parseCommandLine(['--help'], env())).toEqual({ kind: 'help' });
    expect(parseCommandLine(['-v'], env())).toEqual({ kind: 'version' });
  });

  it('parses the export-docker-metadata subcommand', () => {
    expect(parseCommandLine(['export-docker-metadata', '--data-root', 'd'], env())).toEqual({ kind: 'export-docker-metadata', dataRoot: '/work/d' });
    expect(parseCommandLine(['export-docker-metadata', '--data-root=/var/lib/docker'], env())).toEqual({ kind: 'export-docker-metadata', dataRoot: '/var/lib/docker' });
    expect(failure(['export-docker-metadata'])).toBe("export-docker-metadata needs --data-root, the data-root to export\nSee 'berthd --help'.");
    expect(failure(['export-docker-metadata', '--data-root', 'd', '--debug'])).toMatch(/^export-docker-metadata: Unknown option '--debug'/);
    expect(failure(['export-docker-metadata', '--data-root', 'd', 'extra'])).toMatch(/^export-docker-metadata: Unexpected argument 'extra'/);
  });

  it('refuses bad flags and values with clear texts', () => {
    expect(failure(['--nope'])).toBe("unknown flag: --nope\nSee 'berthd --help'.");
    expect(failure(['--data-root'])).toBe("flag needs an argument: --data-root\nSee 'berthd --help'.");
    expect(failure(['extra'])).toBe(`"berthd" accepts no arguments.\nSee 'berthd --help'.`);
    expect(failure(['-H', 'tcp://0.0.0.0:2375'])).toBe(
      'unsupported host "tcp://0.0.0.0:2375": berthd serves the API on unix sockets only (unix:///path/to/socket)',
    );
    expect(failure(['--log-level', 'loud'])).toBe('invalid logging level: loud');
    expect(failure(['--log-format', 'xml'])).toBe('unknown log format: xml');
  });
});

describe('daemon.json', () => {
  const file = '/etc/berth/daemon.json';

  it('is read from the default path only when it exists', () => {
    const c = config([], env({ files: { [file]: '{"data-root":"/srv/berth","hosts":["unix:///s.sock"],"log-level":"debug","debug":false}' } }));
    expect(c).toMatchObject({ dataRoot: '/srv/berth', hosts: ['/s.sock'], logLevel: 'debug', configFile: file });
    expect(config([], env({ files: { [file]: '  \n' } })).configFile).toBe(file);
    expect(config([], env({ files: { [file]: 'null' } })).dataRoot).toBe('/var/lib/berth');
  });

  it('must exist when given with --config-file', () => {
    expect(failure(['--config-file', '/x.json'])).toBe(
      'unable to configure the Docker daemon with file /x.json: open /x.json: no such file or directory',
    );
    expect(config(['--config-file', '/x.json'], env({ files: { '/x.json': '{"group":"g"}' } })).group).toBe('g');
  });

  it('refuses unknown keys, keys also given as flags, bad JSON and bad types as dockerd', () => {
    const withFile = (text: string): Partial<ConfigEnvironment> => env({ files: { [file]: text } });
    const prefix = `unable to configure the Docker daemon with file ${file}: `;
    expect(failure([], withFile('{"_comment":"x","bogus":1,"data-root":"/d"}'))).toBe(
      `${prefix}the following directives don't match any configuration option: _comment, bogus`,
    );
    expect(failure(['--data-root', '/flag', '-H', 'unix:///f.sock'], withFile('{"data-root":"/file","hosts":["unix:///a.sock","unix:///b.sock"]}'))).toBe(
      `${prefix}the following directives are specified both as a flag and in the configuration file: data-root: (from flag: /flag, from file: /file), hosts: (from flag: [unix:///f.sock], from file: [unix:///a.sock unix:///b.sock])`,
    );
    expect(failure([], withFile('{"data-root":}'))).toBe(`${prefix}invalid character '}' looking for beginning of value`);
    expect(failure([], withFile('{"data-root":"/d"} {}'))).toBe(`${prefix}invalid character '{' after top-level value`);
    expect(failure([], withFile('[]'))).toBe(`${prefix}json: cannot unmarshal array into Go value of type map[string]interface {}`);
    expect(failure([], withFile('{"hosts":"unix:///s.sock"}'))).toBe(
      `${prefix}json: cannot unmarshal string into Go struct field Config.hosts of type []string`,
    );
    expect(failure([], withFile('{"log-level":"loud"}'))).toBe(
      `${prefix}merged configuration validation from file and command line flags failed: invalid logging level: loud`,
    );
  });
});

describe('cluster settings', () => {
  it('are off without --cluster-store', () => {
    expect(config([]).cluster).toBeUndefined();
  });

  it('read dockerd\'s flags: the store URL, this host\'s name (the host name by default) and the options', () => {
    expect(config(['--cluster-store', 'etcd://10.0.0.1:2379,10.0.0.2,[::1]:4001'])).toMatchObject({
      cluster: {
        store: 'etcd://10.0.0.1:2379,10.0.0.2,[::1]:4001',
        endpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379', 'http://[::1]:4001'],
        prefix: undefined,
        host: 'node-1',
        tls: undefined,
        leaseTtlSeconds: undefined,
        commandTimeoutMs: undefined,
      },
    });
    expect(
      config([
        '--cluster-store', 'etcd://e1:2379/teams/a/',
        '--cluster-advertise', 'host-a',
        '--cluster-store-opt', 'cacert=certs/ca.pem',
        '--cluster-store-opt', 'kv.certfile=/etc/berth/client.pem',
        '--cluster-store-opt', 'key=/etc/berth/client-key.pem',
        '--cluster-store-opt', 'discovery.ttl=1m30s',
        '--cluster-store-opt', 'command-timeout=2500ms',
      ]).cluster,
    ).toEqual({
      store: 'etcd://e1:2379/teams/a/',
      endpoints: ['https://e1:2379'],
      prefix: '/teams/a',
      host: 'host-a',
      tls: { cacert: '/work/certs/ca.pem', cert: '/etc/berth/client.pem', key: '/etc/berth/client-key.pem' },
      leaseTtlSeconds: 90,
      commandTimeoutMs: 2500,
    });
  });

  it('read the same as daemon.json keys, and refuse a key given both ways', () => {
    const file = '/etc/berth/daemon.json';
    const json = '{"cluster-store":"etcd://e1:2379","cluster-advertise":"h2","cluster-store-opts":{"discovery.ttl":"5s"}}';
    expect(config([], env({ files: { [file]: json } })).cluster).toMatchObject({ endpoints: ['http://e1:2379'], host: 'h2', leaseTtlSeconds: 5 });
    expect(failure(['--cluster-store-opt', 'discovery.ttl=9s'], env({ files: { [file]: json } }))).toBe(
      `unable to configure the Docker daemon with file ${file}: the following directives are specified both as a flag and in the configuration file: cluster-store-opts: (from flag: [discovery.ttl=9s], from file: map[discovery.ttl:5s])`,
    );
  });

  it('refuse what berthd cannot use, with clear texts', () => {
    expect(failure(['--cluster-store', 'consul://c:8500'])).toBe(
      'unsupported cluster store "consul://c:8500": berthd keeps global volumes in etcd (etcd://host:port[,host:port...][/prefix])',
    );
    expect(failure(['--cluster-store', 'etcd://e1:99999'])).toBe('invalid cluster store "etcd://e1:99999": "e1:99999" is not host:port');
    expect(failure(['--cluster-advertise', 'h1'])).toBe(
      'invalid cluster configuration. --cluster-advertise must be accompanied by --cluster-store configuration',
    );
    expect(failure(['--cluster-store', 'etcd://e', '--cluster-store-opt', 'ttl=5s'])).toBe(
      'invalid cluster-store-opt "ttl": berthd takes cacert, cert, key, kv.cacertfile, kv.certfile, kv.keyfile, discovery.ttl, command-timeout',
    );
    expect(failure(['--cluster-store', 'etcd://e', '--cluster-store-opt', 'novalue'])).toBe(
      'invalid argument "novalue" for "--cluster-store-opt" flag: bad format for key-value pair',
    );
    expect(failure(['--cluster-store', 'etcd://e', '--cluster-store-opt', 'discovery.ttl=1500ms'])).toBe(
      'invalid cluster-store-opt discovery.ttl=1500ms: a lease TTL is a whole number of seconds, at least 1s',
    );
    expect(failure(['--cluster-store', 'etcd://e', '--cluster-store-opt', 'command-timeout=soon'])).toBe('time: invalid duration "soon"');
    expect(failure(['--cluster-store', 'etcd://e', '--cluster-store-opt', 'cert=/c.pem'])).toBe(
      'invalid cluster-store-opt: cert and key go together (a client certificate and its key)',
    );
  });
});
