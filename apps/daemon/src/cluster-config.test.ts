import { describe, expect, it } from 'vitest';
import { parseCommandLine, type ConfigEnvironment, type DaemonConfig } from './config.js';
import { parseGoDuration, parseStoreUrl } from './cluster-config.js';

const environment = (files: Record<string, string> = {}): Partial<ConfigEnvironment> => ({
  uid: 0,
  env: {},
  homedir: '/home/u',
  cwd: '/work',
  readFile: (path) => files[path],
  groupExists: () => false,
  hostname: 'node-1',
});

function config(argv: string[], files: Record<string, string> = {}): DaemonConfig {
  const command = parseCommandLine(argv, environment(files));
  if (command.kind !== 'run') throw new Error(`expected a run command, got ${command.kind}`);
  return command.config;
}

function failure(argv: string[], files: Record<string, string> = {}): string {
  try {
    parseCommandLine(argv, environment(files));
  } catch (err) {
    expect((err as Error).name).toBe('ConfigError');
    return (err as Error).message;
  }
  throw new Error('no error');
}

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
    expect(config([], { [file]: json }).cluster).toMatchObject({ endpoints: ['http://e1:2379'], host: 'h2', leaseTtlSeconds: 5 });
    expect(failure(['--cluster-store-opt', 'discovery.ttl=9s'], { [file]: json })).toBe(
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

describe('parseStoreUrl and parseGoDuration', () => {
  it('take etcd URLs and Go durations', () => {
    expect(parseStoreUrl('ETCD://a,b:1/')).toEqual({ addresses: ['a:2379', 'b:1'], prefix: undefined });
    expect(parseGoDuration('15s')).toBe(15_000);
    expect(parseGoDuration('1h2m0.5s')).toBe(3_720_500);
    expect(parseGoDuration('250us')).toBe(0.25);
    expect(() => parseGoDuration('')).toThrow('time: invalid duration ""');
    expect(() => parseGoDuration('5')).toThrow('time: invalid duration "5"');
  });
});
