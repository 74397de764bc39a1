import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EtcdTestCluster, GlobalVolumePlugin } from '@berth/volume-cluster-etcd/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Berthd, describeWithDocker, unixTime, type ExecResult } from './harness.js';
import { until } from './plugin-helpers.js';

/**
 * Many hosts, one volume namespace, on one machine: a real 3-member etcd on 127.0.0.1, three
 * berthd (own data-roots, exec-roots and sockets) with `--cluster-store`, and on each host a v1
 * plugin process answering `Scope: global` whose volumes are the directories of one shared
 * directory (two drivers, `gfs` and `gfs2`, each on its own shared directory). The tests run in
 * order on the same cluster; the last ones take etcd down and bring it back.
 */

const TTL_SECONDS = 5;

interface Host {
  name: string;
  daemon: Berthd;
  plugin: GlobalVolumePlugin;
  args: string[];
}

let etcd: EtcdTestCluster;
let dir: string;
const hosts: Host[] = [];

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });
const host = (i: number): Host => hosts[i] as Host;

async function startHost(i: number): Promise<Host> {
  const name = `host-${i + 1}`;
  const pluginDir = join(dir, name, 'plugins');
  const plugin = await GlobalVolumePlugin.start({ socketDir: pluginDir, drivers: { gfs: join(dir, 'shared', 'gfs'), gfs2: join(dir, 'shared', 'gfs2') } });
  const args = [
    '--plugin-socket-dir', pluginDir,
    '--plugin-spec-dir', join(dir, name, 'specs'),
    '--cluster-store', etcd.storeUrl,
    '--cluster-advertise', name,
    '--cluster-store-opt', `discovery.ttl=${TTL_SECONDS}s`,
  ];
  const daemon = await Berthd.start({ args });
  return { name, daemon, plugin, args };
}

/** `probe` until `ok` (the watch carries changes to other hosts in milliseconds; the machine may be loaded). */
const eventually = <T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> =>
  until(async () => {
    const value = await probe();
    return ok(value) ? value : undefined;
  }, timeoutMs, 'the hosts to converge');

interface Listed {
  Volumes: Array<Record<string, unknown>> | null;
  Warnings: string[] | null;
}

async function list(h: Host): Promise<Listed> {
  const res = await h.daemon.http({ path: '/volumes' });
  expect(res.status).toBe(200);
  return res.json as Listed;
}

const named = (listed: Listed, name: string): Record<string, unknown> | undefined => listed.Volumes?.find((v) => v.Name === name);

describeWithDocker('global volumes on a 3-member etcd cluster, three hosts', () => {
  beforeAll(async () => {
    dir = await mkdtemp('/tmp/berth-cluster-');
    etcd = await EtcdTestCluster.start({ dir: join(dir, 'etcd') });
    for (let i = 0; i < 3; i++) hosts.push(await startHost(i));
  }, 120_000);

  afterAll(async () => {
    for (const h of hosts) {
      await h.daemon.cleanup();
      await h.plugin.stop();
    }
    await etcd?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists and inspects a volume created on host 1 identically on hosts 2 and 3', async () => {
    expect(await host(0).daemon.docker(['volume', 'create', '-d', 'gfs', '--label', 'team=a', '--opt', 'size=1g', 'gv1'])).toEqual(ok('gv1\n'));
    const inspect = async (h: Host): Promise<unknown> => {
      const r = await h.daemon.docker(['volume', 'inspect', 'gv1']);
      return r.code === 0 ? JSON.parse(r.stdout) : r.stderr;
    };
    const created = (await inspect(host(0))) as Array<Record<string, unknown>>;
    expect(created).toEqual([
      {
        CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        Driver: 'gfs',
        Labels: { team: 'a' },
        Mountpoint: join(dir, 'shared', 'gfs', 'gv1'),
        Name: 'gv1',
        Options: { size: '1g' },
        Scope: 'global',
      },
    ]);
    for (const h of [host(1), host(2)]) {
      await eventually(() => list(h), (l) => named(l, 'gv1') !== undefined);
      expect(await inspect(h)).toEqual(created);
    }
    const format = ['volume', 'ls', '--filter', 'driver=gfs', '--format', '{{.Driver}} {{.Name}} {{.Scope}} {{.Labels}} {{.Mountpoint}}'];
    const listed = await host(0).daemon.docker(format);
    expect(listed).toEqual(ok(`gfs gv1 global team=a ${join(dir, 'shared', 'gfs', 'gv1')}\n`));
    for (const h of [host(1), host(2)]) expect(await h.daemon.docker(format)).toEqual(listed);
    for (const h of hosts) expect((await list(h)).Warnings).toBeNull();
  });

  it('gives 16 concurrent creates of one name from three hosts one volume, and no error but moby\'s conflict', async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const driver = i % 2 === 0 ? 'gfs' : 'gfs2';
        const res = await host(i % 3).daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'race', Driver: driver, Labels: { attempt: String(i) } } });
        return { driver, status: res.status, json: res.json as Record<string, unknown> };
      }),
    );
    const created = results.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThan(0);
    const winner = created[0]?.json;
    const winning = winner?.Driver;
    for (const r of results) {
      if (r.driver === winning) {
        expect(r.status).toBe(201);
        // The mountpoint of a volume a plugin just created is unknown until asked (moby's answer: "").
        expect({ ...r.json, Mountpoint: '' }).toEqual({ ...winner, Mountpoint: '' });
      } else {
        expect(r).toEqual({ driver: r.driver, status: 409, json: { message: `create race: driver '${winning}' already has volume 'race': volume name must be unique` } });
      }
    }
    const loser = winning === 'gfs' ? 'gfs2' : 'gfs';
    // The losing driver's volume (made before the cluster said no) is undone.
    expect(existsSync(join(dir, 'shared', loser, 'race'))).toBe(false);
    for (const h of hosts) {
      const l = await eventually(() => list(h), (x) => named(x, 'race') !== undefined);
      expect((l.Volumes ?? []).filter((v) => v.Name === 'race')).toEqual([expect.objectContaining({ Driver: winning, Labels: winner?.Labels })]);
    }
  });

  it('refuses a local volume whose name a global volume holds, with moby\'s conflict', async () => {
    expect(await host(1).daemon.docker(['volume', 'create', 'gv1'])).toEqual({
      code: 1,
      stdout: '',
      stderr: "Error response from daemon: create gv1: driver 'gfs' already has volume 'gv1': volume name must be unique\n",
    });
    // Local volumes still work beside global ones.
    expect(await host(1).daemon.docker(['volume', 'create', 'only-on-2'])).toEqual(ok('only-on-2\n'));
    expect((await host(1).daemon.docker(['volume', 'ls', '-q', '--filter', 'name=only-on'])).stdout).toBe('only-on-2\n');
    expect((await host(0).daemon.docker(['volume', 'ls', '-q', '--filter', 'name=only-on'])).stdout).toBe('');
  });

  it('tells every host of creates and removes made elsewhere, naming the host', async () => {
    const since = unixTime(-1);
    expect(await host(0).daemon.docker(['volume', 'create', '-d', 'gfs', 'gv-ev'])).toEqual(ok('gv-ev\n'));
    await eventually(() => list(host(1)), (l) => named(l, 'gv-ev') !== undefined);
    expect(await host(1).daemon.docker(['volume', 'rm', 'gv-ev'])).toEqual(ok('gv-ev\n'));
    await eventually(() => list(host(2)), (l) => named(l, 'gv-ev') === undefined);
    await eventually(() => list(host(0)), (l) => named(l, 'gv-ev') === undefined);
    const until = unixTime(1);
    for (const h of hosts) {
      const r = await h.daemon.docker(['events', '--since', since, '--until', until, '--filter', 'volume=gv-ev', '--format', '{{.Action}} {{.Actor.Attributes.driver}} {{.Actor.Attributes.host}}']);
      expect(r, h.name).toEqual(ok('create gfs host-1\ndestroy gfs host-2\n'));
    }
  });

  it("keeps a volume mounted on host 1 from removal on host 2, until host 1 dies and its lease expires", async () => {
    expect(await host(0).daemon.docker(['volume', 'create', '-d', 'gfs', 'gv2'])).toEqual(ok('gv2\n'));
    const mounted = await host(0).daemon.http({ method: 'POST', path: '/volumes/gv2/mount', body: { ID: 'client-1' } });
    expect(mounted.status).toBe(200);
    await eventually(() => list(host(1)), (l) => named(l, 'gv2') !== undefined);

    const refused = { code: 1, stdout: '', stderr: 'Error response from daemon: remove gv2: volume is in use - [host-1/client-1]\n' };
    expect(await host(1).daemon.docker(['volume', 'rm', 'gv2'])).toEqual(refused);
    expect(await host(1).daemon.docker(['volume', 'rm', '-f', 'gv2'])).toEqual(refused);
    // Every host sees the reference: `dangling=false` lists it, prune leaves it.
    expect((await host(2).daemon.docker(['volume', 'ls', '-q', '--filter', 'dangling=false', '--filter', 'name=gv2'])).stdout).toBe('gv2\n');
    expect((await host(2).daemon.docker(['volume', 'prune', '-a', '-f'])).code).toBe(0);
    expect(existsSync(join(dir, 'shared', 'gfs', 'gv2'))).toBe(true);

    await host(0).daemon.kill();
    const killedAt = Date.now();
    await eventually(() => host(1).daemon.docker(['volume', 'rm', 'gv2']), (r) => r.code === 0, (TTL_SECONDS + 10) * 1000);
    const removableAfterMs = Date.now() - killedAt;
    expect(removableAfterMs).toBeLessThan((TTL_SECONDS + 5) * 1000);
    expect(existsSync(join(dir, 'shared', 'gfs', 'gv2'))).toBe(false);

    // Host 1 comes back: the reference it held is on a volume that is gone, and is dropped.
    hosts[0] = { ...host(0), daemon: await Berthd.start({ dir: host(0).daemon.dir, args: host(0).args }) };
    expect(JSON.parse(await readFile(join(host(0).daemon.dataRoot, 'cluster', 'held-references.json'), 'utf8')).volumes).toEqual({});
    expect((await host(0).daemon.http({ path: '/volumes/gv2' })).status).toBe(404);
  });

  it('asserts the references of a host that comes back after a crash', async () => {
    expect(await host(0).daemon.docker(['volume', 'create', '-d', 'gfs', 'gv3'])).toEqual(ok('gv3\n'));
    expect((await host(0).daemon.http({ method: 'POST', path: '/volumes/gv3/mount', body: { ID: 'client-1' } })).status).toBe(200);
    await host(0).daemon.kill();
    hosts[0] = { ...host(0), daemon: await Berthd.start({ dir: host(0).daemon.dir, args: host(0).args }) };
    // Past the TTL of the lease the crashed process held: the reference lives on under the new one.
    await new Promise((resolve) => setTimeout(resolve, (TTL_SECONDS + 1) * 1000));
    expect(await host(1).daemon.docker(['volume', 'rm', 'gv3'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error response from daemon: remove gv3: volume is in use - [host-1/client-1]\n',
    });
    expect((await host(0).daemon.http({ method: 'POST', path: '/volumes/gv3/unmount', body: { ID: 'client-1' } })).status).toBe(204);
    await eventually(() => host(1).daemon.docker(['volume', 'rm', 'gv3']), (r) => r.code === 0);
  });

  it('loads the etcd client only with --cluster-store', async () => {
    // CommonJS modules (etcd3, gRPC) land in require.cache even when imported from ESM.
    const preload = join(dir, 'modules.cjs');
    await writeFile(preload, "process.on('exit', () => require('fs').writeFileSync(process.env.BERTH_MODULES_OUT, Object.keys(require.cache).join('\\n')));\n");
    const loaded = async (args: string[]): Promise<string[]> => {
      const out = join(dir, `modules-${args.length}.txt`);
      const daemon = await Berthd.start({ args, env: { ...process.env, NODE_OPTIONS: `--require ${preload}`, BERTH_MODULES_OUT: out } });
      expect((await daemon.docker(['volume', 'ls', '-q'])).code).toBe(0);
      await daemon.stop();
      await daemon.cleanup();
      return (await readFile(out, 'utf8')).split('\n').filter((m) => /[/\\](etcd3|@grpc)[/\\]/.test(m));
    };
    expect(await loaded([])).toEqual([]);
    expect((await loaded(['--cluster-store', etcd.storeUrl, '--cluster-advertise', 'probe'])).length).toBeGreaterThan(0);
  });

  it('reaches an etcd that wants TLS and a client certificate through --cluster-store-opt cacert, cert and key', async () => {
    const secure = await EtcdTestCluster.start({ size: 1, tls: true, dir: join(dir, 'etcd-tls') });
    const tls = secure.tls;
    let daemon: Berthd | undefined;
    try {
      if (tls === undefined) throw new Error('no TLS');
      daemon = await Berthd.start({
        args: [
          '--plugin-socket-dir', join(dir, host(0).name, 'plugins'),
          '--cluster-store', secure.storeUrl,
          '--cluster-advertise', 'tls-host',
          '--cluster-store-opt', `cacert=${tls.cacert}`,
          '--cluster-store-opt', `cert=${tls.cert}`,
          '--cluster-store-opt', `key=${tls.key}`,
        ],
      });
      expect((await daemon.http({ path: '/info' })).json).toMatchObject({ Name: 'tls-host', ClusterStore: secure.storeUrl, Warnings: null });
      expect(await daemon.docker(['volume', 'create', '-d', 'gfs2', '--label', 'over=tls', 'gv-tls'])).toEqual(ok('gv-tls\n'));
      expect((await daemon.docker(['volume', 'ls', '--filter', 'name=gv-tls', '--format', '{{.Scope}} {{.Labels}}'])).stdout).toBe('global over=tls\n');
      expect(await daemon.docker(['volume', 'rm', 'gv-tls'])).toEqual(ok('gv-tls\n'));
    } finally {
      await daemon?.cleanup();
      await secure.close();
    }
  });

  it('shows the cluster store and the host name in info', async () => {
    const info = (await host(2).daemon.http({ path: '/info' })).json as Record<string, unknown>;
    expect(info).toMatchObject({ Name: 'host-3', ClusterStore: etcd.storeUrl, ClusterAdvertise: 'host-3', Warnings: null });
    const cli = await host(2).daemon.docker(['info']);
    expect(cli.stdout).toContain(' Name: host-3\n');
    expect(cli.stdout).toContain(`  berth.cluster-store=${etcd.storeUrl}\n`);
    expect(cli.stdout).toContain('  berth.cluster-advertise=host-3\n');
  });

  it('keeps working with one etcd member killed', async () => {
    const leader = await etcd.leader();
    const victim = leader === 0 ? 1 : 0;
    await etcd.kill(victim);
    try {
      expect(await host(2).daemon.docker(['volume', 'create', '-d', 'gfs', '--label', 'k=v', 'gv4'])).toEqual(ok('gv4\n'));
      for (const h of hosts) await eventually(() => list(h), (l) => named(l, 'gv4') !== undefined);
      expect((await host(0).daemon.http({ method: 'POST', path: '/volumes/gv4/mount', body: { ID: 'm' } })).status).toBe(200);
      expect((await host(1).daemon.docker(['volume', 'rm', 'gv4'])).stderr).toBe('Error response from daemon: remove gv4: volume is in use - [host-1/m]\n');
      expect((await host(0).daemon.http({ method: 'POST', path: '/volumes/gv4/unmount', body: { ID: 'm' } })).status).toBe(204);
      await eventually(() => host(1).daemon.docker(['volume', 'rm', 'gv4']), (r) => r.code === 0);
      for (const h of hosts) await eventually(() => list(h), (l) => named(l, 'gv4') === undefined && l.Warnings === null);
    } finally {
      etcd.restart(victim);
      await etcd.waitHealthy();
    }
  });

  it('keeps local volumes working with every etcd member stopped, fails global operations within 5 s, and converges when etcd returns', async () => {
    expect(await host(0).daemon.docker(['volume', 'create', '-d', 'gfs', 'gv5'])).toEqual(ok('gv5\n'));
    for (const h of hosts) await eventually(() => list(h), (l) => named(l, 'gv5') !== undefined);
    await etcd.killAll();

    const h2 = host(1);
    // Local volumes: as ever.
    expect(await h2.daemon.docker(['volume', 'create', 'local-during-outage'])).toEqual(ok('local-during-outage\n'));
    expect((await h2.daemon.http({ method: 'POST', path: '/volumes/local-during-outage/mount', body: { ID: 'x' } })).status).toBe(200);
    expect((await h2.daemon.http({ method: 'POST', path: '/volumes/local-during-outage/unmount', body: { ID: 'x' } })).status).toBe(204);
    expect(await h2.daemon.docker(['volume', 'rm', 'local-during-outage'])).toEqual(ok('local-during-outage\n'));

    const timed = async (req: Parameters<Berthd['http']>[0]): Promise<{ ms: number; status: number; message: string }> => {
      const t = Date.now();
      const res = await h2.daemon.http(req);
      return { ms: Date.now() - t, status: res.status, message: String((res.json as { message?: unknown } | undefined)?.message) };
    };
    const failures = [
      await timed({ method: 'POST', path: '/volumes/create', body: { Name: 'gv-new', Driver: 'gfs' } }),
      await timed({ method: 'DELETE', path: '/volumes/gv5' }),
      await timed({ method: 'POST', path: '/volumes/gv5/mount', body: { ID: 'y' } }),
    ];
    for (const f of failures) {
      expect(f.status, f.message).toBe(503);
      expect(f.ms).toBeLessThan(5_000);
      expect(f.message).toContain(`cluster store ${etcd.storeUrl}: `);
    }
    expect(failures[0]?.message).toMatch(/^create gv-new: cluster store \S+: /);
    expect(failures[1]?.message).toMatch(/^remove gv5: cluster store \S+: /);
    // Nothing acknowledged is lost; a create that failed may leave its directory in the shared
    // backend (berth never removes one it cannot prove is nobody's), nothing in the cluster.
    expect(existsSync(join(dir, 'shared', 'gfs', 'gv5'))).toBe(true);

    // `ls` answers at once, from the cache, and says why it may be stale.
    const t = Date.now();
    const l = await list(h2);
    expect(Date.now() - t).toBeLessThan(2_000);
    expect(named(l, 'gv5')).toMatchObject({ Driver: 'gfs', Scope: 'global' });
    expect(l.Warnings).toEqual([expect.stringMatching(new RegExp(`^cluster store ${etcd.storeUrl.replace(/[.]/g, '\\.')}: .*global volumes are listed as this host last saw them$`))]);
    expect((await h2.daemon.docker(['volume', 'ls', '-q', '--filter', 'name=gv5'])).stdout).toBe('gv5\n');

    etcd.restartAll();
    await etcd.waitHealthy();
    // Every host converges by itself: no warnings, and changes made now reach every host.
    for (const h of hosts) await eventually(() => list(h), (x) => x.Warnings === null, 30_000);
    expect(await host(2).daemon.docker(['volume', 'create', '-d', 'gfs', 'gv-after'])).toEqual(ok('gv-after\n'));
    expect(await host(1).daemon.docker(['volume', 'rm', 'gv5'])).toEqual(ok('gv5\n'));
    for (const h of hosts) await eventually(() => list(h), (x) => named(x, 'gv-after') !== undefined && named(x, 'gv5') === undefined);
    // The name of the create that failed is free: created now, it is a global volume like any other.
    expect(await host(0).daemon.docker(['volume', 'create', '-d', 'gfs', '--label', 'again=yes', 'gv-new'])).toEqual(ok('gv-new\n'));
    await eventually(() => list(host(2)), (x) => (named(x, 'gv-new')?.Labels as Record<string, string> | null)?.again === 'yes');
  });
});

