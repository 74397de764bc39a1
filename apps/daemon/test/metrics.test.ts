import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeVolumePlugin } from './fixtures/v1-volume-plugin.js';
import { Berthd, describeWith } from './harness.js';
import { buildVolumePluginDir, cleanupDaemonWithOwnContainerd, ownContainerdAddress, pluginRequirements, shortTempDir, taskPid, until } from './plugin-helpers.js';
import { Prometheus, prometheusRequirement, type PromSample } from './prometheus.js';

/**
 * berthd's `--metrics-addr` scraped by a real Prometheus (Debian's `prometheus`, on loopback, a port
 * and storage directory of its own), with one PromQL query per metric family: API requests, plugin
 * calls (a v1 plugin that hangs shows as timeouts), plugin restarts (a managed plugin killed and
 * restarted), volumes and references by driver, metadata commits, fsyncs and group-commit batch
 * sizes, and the process. Needs what managed plugins need (root, containerd, runc) and prometheus;
 * skipped with the reason printed otherwise, failing under CI.
 */

describeWith('berthd metrics scraped by Prometheus', pluginRequirements() ?? prometheusRequirement(), () => {
  let dir: string;
  let daemon: Berthd | undefined;
  let slow: FakeVolumePlugin | undefined;
  let prometheus: Prometheus | undefined;
  let metricsUrl: URL;

  beforeAll(async () => {
    dir = await shortTempDir();
    slow = await FakeVolumePlugin.start({ socketDir: join(dir, 'sockets'), name: 'slow', root: join(dir, 'slow-data') });
    slow.behaviour['VolumeDriver.List'] = 'hang';
    daemon = await Berthd.start({
      dir: join(dir, 'd'),
      args: ['--metrics-addr', '127.0.0.1:0', '--plugin-socket-dir', join(dir, 'sockets'), '--plugin-spec-dir', join(dir, 'specs')],
    });
    const printed = /^berthd metrics on (\S+)$/m.exec(daemon.stdout)?.[1];
    expect(printed, daemon.stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    metricsUrl = new URL(printed as string);
    prometheus = await Prometheus.start(dir, { host: metricsUrl.hostname, port: Number(metricsUrl.port), path: metricsUrl.pathname });
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await cleanupDaemonWithOwnContainerd(daemon);
    await slow?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const value = (samples: PromSample[]): number => Number(samples[0]?.value[1] ?? Number.NaN);

  it('serves Prometheus text on loopback, only at /metrics', async () => {
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toContain('# TYPE berth_api_request_duration_seconds histogram');
    expect((await fetch(new URL('/other', metricsUrl))).status).toBe(404);
  });

  it('answers a query on every family: requests, plugin calls and timeouts, restarts, volumes, references, commits, fsyncs, batches, process', async () => {
    const d = daemon as Berthd;
    const p = prometheus as Prometheus;
    for (const volume of ['m1', 'm2', 'm3']) expect((await d.http({ method: 'POST', path: '/volumes/create', body: { Name: volume } })).status).toBe(201);
    expect((await d.http({ method: 'POST', path: '/volumes/m1/mount', body: { ID: 'job-1' } })).status).toBe(200);
    expect((await d.http({ path: '/volumes/nope' })).status).toBe(404);

    // A managed plugin: its calls, then a crash and the restart.
    const source = await buildVolumePluginDir(join(dir, 'plugin'));
    expect((await d.docker(['plugin', 'create', 'crashy', source.dir])).code).toBe(0);
    expect((await d.docker(['plugin', 'enable', 'crashy'])).code).toBe(0);
    expect((await d.docker(['volume', 'create', '-d', 'crashy', 'c1'])).code).toBe(0);
    const inspect = async (): Promise<{ Id: string; Running: boolean }> =>
      (JSON.parse((await d.docker(['plugin', 'inspect', 'crashy'])).stdout) as Array<{ Id: string; Running: boolean }>)[0] as { Id: string; Running: boolean };
    const { Id: id } = await inspect();
    const before = (await taskPid(ownContainerdAddress(d), id)) as number;
    process.kill(before, 'SIGKILL');
    await until(async () => {
      const after = await taskPid(ownContainerdAddress(d), id);
      return after !== undefined && after !== before && (await inspect()).Running;
    }, 15_000, 'the plugin to run again');

    // The v1 plugin that never answers `VolumeDriver.List`: the listing goes on without it.
    const listed = await d.http({ path: '/volumes', timeoutMs: 15_000 });
    expect(listed.status).toBe(200);
    expect((listed.json as { Warnings: string[] }).Warnings).toEqual([expect.stringContaining('slow')]);

    const requests = await p.until('sum by (method, route, status) (berth_api_request_duration_seconds_count{job="berthd"})', (r) =>
      r.some((s) => s.metric.route === '/volumes/create' && s.metric.status === '201' && Number(s.value[1]) >= 3),
    );
    expect(requests).toContainEqual(expect.objectContaining({ metric: { method: 'GET', route: '/volumes/{name:.*}', status: '404' } }));
    await p.until('histogram_quantile(0.99, sum by (le) (berth_api_request_duration_seconds_bucket{route="/volumes/create"}))', (r) => value(r) > 0);

    await p.until('berth_plugin_call_duration_seconds_count{plugin="slow",method="VolumeDriver.List",outcome="timeout"}', (r) => value(r) >= 1);
    const crashyCalls = await p.until('sum by (method, outcome) (berth_plugin_call_duration_seconds_count{plugin="crashy:latest"})', (r) =>
      r.some((s) => s.metric.method === 'VolumeDriver.Create' && s.metric.outcome === 'ok'),
    );
    expect(crashyCalls.every((s) => s.metric.outcome !== 'timeout')).toBe(true);
    await p.until('berth_plugin_restarts_total{plugin="crashy:latest",result="started"}', (r) => value(r) >= 1);

    await p.until('berth_volumes{driver="local"}', (r) => value(r) === 3);
    await p.until('berth_volumes{driver="crashy:latest"}', (r) => value(r) === 1);
    await p.until('berth_volume_references{driver="local"}', (r) => value(r) === 1);

    await p.until('berth_metadata_commits_total{durability="durable"}', (r) => value(r) >= 5);
    await p.until('berth_fsync_duration_seconds_count{target="metadata-wal"}', (r) => value(r) >= 1);
    await p.until('berth_group_commit_batch_size_sum{target="metadata-wal"} / berth_group_commit_batch_size_count{target="metadata-wal"}', (r) => value(r) >= 1);

    await p.until('process_resident_memory_bytes{job="berthd"}', (r) => value(r) > 10_000_000);
    await p.until('nodejs_eventloop_lag_seconds{job="berthd"}', (r) => r.length === 1);
    await p.until('up{job="berthd"}', (r) => value(r) === 1);

    expect((await d.docker(['volume', 'rm', 'c1'])).code).toBe(0);
    expect((await d.docker(['plugin', 'rm', '-f', 'crashy'])).code).toBe(0);
  }, 120_000);
});
