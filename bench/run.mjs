#!/usr/bin/env node
// `pnpm bench`: berthd against a reference dockerd (Debian docker.io 20.10), the same workloads over
// the Engine API on unix sockets, alternating between the two daemons, medians of several rounds,
// and the targets of issue 6. See bench/README.md.
//
//   node bench/run.mjs [--quick] [--json FILE] [--no-dockerd] [--profile DIR]
//                      [--n N] [--ls-volumes N] [--reps N]
import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rmdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { API_VERSION, BERTHD, ROOT, berthDaemon, dockerDaemon, ensureContainerd, ensureDockerd, onPath, startContainerd } from './lib/daemons.mjs';
import { buildPluginDir, findPluginSocket, managedPluginRequirements, startHungPlugin, tarStream, waitPluginAnswers } from './lib/plugins.mjs';
import { cleanupAll, cpuMs, descendants, installSignalHandlers, isStopping, onCleanup, removeTree, rssBytes, run } from './lib/procs.mjs';
import { summarise } from './profile.mjs';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'no-dockerd': { type: 'boolean', default: false },
    profile: { type: 'string' },
    n: { type: 'string' },
    'ls-volumes': { type: 'string' },
    reps: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: false,
});
if (opts.help) {
  console.log('usage: node bench/run.mjs [--quick] [--json FILE] [--no-dockerd] [--profile DIR] [--n N] [--ls-volumes N] [--reps N]');
  process.exit(0);
}

const quick = opts.quick;
const P = {
  n: Number(opts.n ?? (quick ? 200 : 1000)), // named volumes per create/inspect/rm round
  lsVolumes: Number(opts['ls-volumes'] ?? (quick ? 1000 : 10_000)),
  reps: Number(opts.reps ?? (quick ? 2 : 7)), // create/inspect/rm rounds per daemon
  lsReps: quick ? 3 : 9,
  restartReps: quick ? 1 : 5,
  enableReps: quick ? 1 : 3,
  hungCapMs: quick ? 8_000 : 20_000,
  warmup: quick ? 50 : 200,
  hardLimitMs: quick ? 180_000 : 15 * 60_000,
};
const started = performance.now();
const log = (msg) => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}`);

installSignalHandlers();
/** Armed once what the bench needs is installed: the measured part is bounded in time. */
let watchdog;
function armWatchdog() {
  watchdog = setTimeout(() => {
    console.error(`bench: hard time limit of ${P.hardLimitMs / 1000} s reached; stopping`);
    void cleanupAll().finally(() => process.exit(2));
  }, P.hardLimitMs);
}

const result = {
  meta: {
    date: new Date().toISOString(),
    quick,
    params: P,
    node: process.version,
    kernel: release(),
    cpus: cpus().length,
    loadavgStart: loadavg(),
  },
  dockerd: { available: false },
  workloads: {},
  errors: [],
};

try {
  await main();
} catch (err) {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  result.errors.push(`fatal: ${err.message}`);
  process.exitCode = 1;
} finally {
  log('stopping daemons and removing temp dirs');
  await cleanupAll();
  clearTimeout(watchdog);
}
result.meta.loadavgEnd = loadavg();
result.meta.wallSeconds = (performance.now() - started) / 1000;
report();
if (opts.json !== undefined) {
  await writeFile(resolve(opts.json), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nfigures written to ${resolve(opts.json)}`);
}
process.exit(process.exitCode ?? 0);

// ---------------------------------------------------------------------------------------------

async function main() {
  if (!existsSync(join(ROOT, 'node_modules/.pnpm'))) {
    // A clean clone: install and build as the README's scripts do.
    log('no node_modules: installing and building (scripts/bootstrap.sh)…');
    const r = await run('bash', [join(ROOT, 'scripts/bootstrap.sh')], { cwd: ROOT, timeoutMs: 1_200_000 });
    if (r.code !== 0) throw new Error(`scripts/bootstrap.sh failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  }
  if (!existsSync(BERTHD)) {
    log('apps/daemon/dist/main.js is missing; building (npx turbo run build)…');
    const r = await run('npx', ['turbo', 'run', 'build'], { cwd: ROOT, timeoutMs: 600_000, env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });
    if (r.code !== 0 || !existsSync(BERTHD)) throw new Error(`build failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  }

  let dockerd = { reason: '--no-dockerd given' };
  if (!opts['no-dockerd']) dockerd = await ensureDockerd(log);
  if (dockerd.path !== undefined) {
    result.dockerd = { available: true, path: dockerd.path, version: dockerd.version };
    log(`reference: ${dockerd.version} (${dockerd.path})`);
  } else {
    result.dockerd = { available: false, reason: dockerd.reason };
    log(`no reference dockerd: ${dockerd.reason}; measuring berth alone`);
  }

  armWatchdog();
  const tmp = await mkdtemp('/tmp/bb-');
  onCleanup(`remove ${tmp}`, () => removeTree(tmp));
  // dockerd creates /run/docker/plugins (host-global) whatever its exec-root: undo that if it was not there.
  if (dockerd.path !== undefined) {
    const created = ['/run/docker', '/run/docker/plugins'].filter((d) => !existsSync(d));
    onCleanup('host dirs dockerd created', async () => {
      for (const d of created.reverse()) await rmdir(d).catch(() => undefined);
    });
  }
  result.meta.fdatasyncMs = fdatasyncProbe(tmp, quick ? 50 : 200);
  log(`fdatasync of 4 KiB here: median ${result.meta.fdatasyncMs.toFixed(3)} ms`);

  // A private containerd for berth's managed plugins (dockerd starts its own under its exec-root).
  const pluginWhy = managedPluginRequirements(onPath) ?? (await ensureContainerd(log));
  let containerd;
  if (pluginWhy === undefined) {
    try {
      containerd = await startContainerd(join(tmp, 'ctd'));
      const v = await run('containerd', ['--version'], { timeoutMs: 10_000 });
      result.meta.containerd = v.stdout.trim();
    } catch (err) {
      result.meta.containerdError = err.message;
      log(`private containerd did not start: ${err.message}`);
    }
  }

  let profileDir;
  if (opts.profile !== undefined) {
    profileDir = resolve(opts.profile);
    await mkdir(profileDir, { recursive: true });
    log(`berthd runs under --cpu-prof; profiles go to ${profileDir} (figures are slower than without)`);
  }
  const berth = await berthDaemon(join(tmp, 'b'), { containerd: containerd?.address, profileDir });
  const docker = dockerd.path === undefined ? undefined : await dockerDaemon(join(tmp, 'd'), dockerd.path);
  const daemons = [berth, docker].filter((d) => d !== undefined);
  for (const d of daemons) {
    const { pingMs } = await d.start();
    log(`${d.name} answers /_ping on a fresh data-root after ${pingMs.toFixed(0)} ms`);
    const v = (await d.client.expect(200, 'GET', '/version')).json();
    result.workloads.freshStart ??= {};
    result.workloads.freshStart[d.name] = { pingMs };
    if (d === berth) result.meta.berth = `${v.Platform?.Name ?? ''} (API ${v.ApiVersion})`;
  }
  /** Alternating order: berth first in even rounds, dockerd first in odd ones. */
  const order = (rep) => (rep % 2 === 0 ? daemons : [...daemons].reverse());

  await step('create / inspect / rm', () => crud(daemons, order));
  await step(`volume ls with ${P.lsVolumes} volumes`, () => listMany(daemons, order));
  await step(`volume inspect while a df of ${P.lsVolumes} volumes runs`, () => inspectDuringDf(daemons, order));
  await step(`restart with ${P.lsVolumes} volumes`, () => restart(daemons, order));
  await step('plugin enable', () => pluginEnable(berth, docker, containerd === undefined ? pluginWhy ?? result.meta.containerdError ?? 'no containerd' : undefined, tmp));
  await step('volume ls with a hung v1 plugin', () => hungPlugin(berth, docker));
  await step(`global volumes on a 3-member etcd (${P.lsVolumes})`, () => clusterStore(tmp));

  for (const d of daemons) await d.stop();
  if (containerd !== undefined) await containerd.child.stop();
  if (profileDir !== undefined) {
    const files = (await readdir(profileDir)).filter((f) => f.endsWith('.cpuprofile')).sort();
    result.profiles = files.map((f) => join(profileDir, f));
    const biggest = files.map((f) => join(profileDir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (biggest !== undefined) {
      console.log(`\nberthd CPU profile (${biggest}; the longest-running berthd process):\n`);
      console.log(summarise(JSON.parse(readFileSync(biggest, 'utf8')), 20));
    }
  }
}

async function step(name, fn) {
  if (isStopping()) return;
  const t = performance.now();
  log(`${name}…`);
  try {
    await fn();
  } catch (err) {
    log(`${name} failed: ${err.message}`);
    result.errors.push(`${name}: ${err.message}`);
    process.exitCode = 1;
  }
  result.meta.stepSeconds ??= {};
  result.meta.stepSeconds[name] = (performance.now() - t) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Workloads

/**
 * Runs fn(i) for i in [0, n) with `concurrency` requests in flight; latencies in ms. With `pid`, also
 * the CPU time that process used meanwhile, per operation (µs).
 */
async function pool(n, concurrency, fn, pid) {
  const latencies = new Array(n);
  let next = 0;
  const cpu0 = pid === undefined ? undefined : cpuMs(pid);
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const s = performance.now();
      await fn(i);
      latencies[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  const elapsedMs = performance.now() - t0;
  const cpu1 = pid === undefined ? undefined : cpuMs(pid);
  const sorted = [...latencies].sort((a, b) => a - b);
  const cpuUsPerOp = cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 1000) / n;
  return { opsPerSec: n / (elapsedMs / 1000), p50: percentile(sorted, 50), p99: percentile(sorted, 99), elapsedMs, cpuUsPerOp };
}

/** The three measured operations, the same requests for both daemons. */
function volumeOp(op, d, name) {
  if (op === 'create') return d.client.expect(201, 'POST', '/volumes/create', { body: { Name: name } });
  if (op === 'inspect') return d.client.expect(200, 'GET', `/volumes/${name}`);
  return d.client.expect(204, 'DELETE', `/volumes/${name}`);
}

async function crud(daemons, order) {
  const w = (result.workloads.crud = {});
  for (const d of daemons) {
    // Warm-up (JIT, connection pool), not measured.
    const names = Array.from({ length: P.warmup }, (_, i) => `warm-${i}`);
    for (const op of ['create', 'inspect', 'rm']) await pool(names.length, 16, (i) => volumeOp(op, d, names[i]));
    w[d.name] = { samples: [] };
  }
  for (let rep = 0; rep < P.reps; rep++) {
    for (const d of order(rep)) {
      if (w[d.name].error !== undefined) continue;
      const round = {};
      try {
        for (const conc of [1, 16]) {
          const names = Array.from({ length: P.n }, (_, i) => `bench-${rep}-c${conc}-${i}`);
          for (const op of ['create', 'inspect', 'rm']) round[`${op}${conc}`] = await pool(P.n, conc, (i) => volumeOp(op, d, names[i]), d.pid);
        }
      } catch (err) {
        w[d.name].error = err.message;
        if (d.name === 'berthd') throw err;
        log(`${d.name}: ${err.message}`);
        continue;
      }
      w[d.name].samples.push(round);
      log(
        `  round ${rep + 1}/${P.reps} ${d.name.padEnd(7)} ` +
          Object.entries(round)
            .map(([k, v]) => `${k} ${v.opsPerSec.toFixed(0)}/s`)
            .join(', '),
      );
    }
  }
  for (const d of daemons) {
    const s = w[d.name].samples;
    if (s.length === 0) continue;
    w[d.name].median = {};
    for (const key of Object.keys(s[0])) {
      w[d.name].median[key] = {
        opsPerSec: median(s.map((r) => r[key].opsPerSec)),
        p50: median(s.map((r) => r[key].p50)),
        p99: median(s.map((r) => r[key].p99)),
        cpuUsPerOp: median(s.map((r) => r[key].cpuUsPerOp)),
      };
    }
  }
}

async function listMany(daemons, order) {
  const w = (result.workloads.ls = {});
  const names = Array.from({ length: P.lsVolumes }, (_, i) => `ls-${String(i).padStart(6, '0')}`);
  for (const d of daemons) {
    const fill = await pool(names.length, 16, (i) => volumeOp('create', d, names[i]));
    w[d.name] = { populateOpsPerSec: fill.opsPerSec, samplesMs: [] };
    log(`  ${d.name}: ${P.lsVolumes} volumes created at ${fill.opsPerSec.toFixed(0)}/s (16 at a time)`);
    await listAll(d); // warm-up
  }
  for (let rep = 0; rep < P.lsReps; rep++) {
    for (const d of order(rep)) {
      const c = cpuMs(d.pid);
      const t = performance.now();
      await listAll(d);
      w[d.name].samplesMs.push(performance.now() - t);
      (w[d.name].cpuMs ??= []).push(cpuMs(d.pid) - c);
    }
  }
  for (const d of daemons) {
    w[d.name].medianMs = median(w[d.name].samplesMs);
    w[d.name].medianCpuMs = median(w[d.name].cpuMs);
    log(`  ${d.name}: volume ls of ${P.lsVolumes}: median ${w[d.name].medianMs.toFixed(1)} ms`);
  }
}

async function listAll(d, timeoutMs = 120_000) {
  const res = await d.client.expect(200, 'GET', '/volumes', { timeoutMs });
  const body = res.json();
  if ((body.Volumes ?? []).length !== P.lsVolumes) throw new Error(`${d.name}: volume ls returned ${(body.Volumes ?? []).length} volumes, expected ${P.lsVolumes}`);
  return body;
}

/**
 * `volume inspect` latency while `GET /system/df` sizes the volumes `listMany` made (each
 * given a 4 KiB file and a subdirectory with another, so that there is something to walk), against
 * the same inspects without a df: p99 of each, alternating daemons, medians over rounds. The row is
 * the difference (what a df adds to an inspect's p99).
 */
async function inspectDuringDf(daemons, order) {
  const w = (result.workloads.inspectDuringDf = {});
  const names = Array.from({ length: P.lsVolumes }, (_, i) => `ls-${String(i).padStart(6, '0')}`);
  const file = Buffer.alloc(4096, 7);
  for (const d of daemons) {
    const { Volumes } = await listAll(d);
    const t = performance.now();
    await pool(Volumes.length, 16, async (i) => {
      const dir = join(Volumes[i].Mountpoint, 'sub');
      await mkdir(dir, { recursive: true });
      await writeFile(join(Volumes[i].Mountpoint, 'a'), file);
      await writeFile(join(dir, 'b'), file);
    });
    w[d.name] = { samples: [] };
    log(`  ${d.name}: files written into ${Volumes.length} volumes in ${(performance.now() - t).toFixed(0)} ms`);
  }
  const inspectOne = (d) => volumeOp('inspect', d, names[Math.floor(Math.random() * names.length)]);
  const reps = quick ? 1 : 3;
  const baselineN = quick ? 300 : 1000;
  for (let rep = 0; rep < reps; rep++) {
    for (const d of order(rep)) {
      const without = await pool(baselineN, 4, () => inspectOne(d));
      const latencies = [];
      let dfDone = false;
      const t = performance.now();
      const df = d.client.expect(200, 'GET', '/system/df', { timeoutMs: 600_000 }).finally(() => (dfDone = true));
      const inspector = async () => {
        // Until the df answers, and at least 50 inspects in all.
        while (!dfDone || latencies.length < 50) {
          const s = performance.now();
          await inspectOne(d);
          latencies.push(performance.now() - s);
        }
      };
      await Promise.all([df, ...Array.from({ length: 4 }, inspector)]);
      const dfMs = performance.now() - t;
      const sizes = (await df).json().Volumes?.filter((v) => v.UsageData?.Size === 8192).length ?? 0;
      if (sizes !== P.lsVolumes) throw new Error(`${d.name}: df sized ${sizes} of ${P.lsVolumes} volumes at 8192 bytes`);
      const during = percentile([...latencies].sort((a, b) => a - b), 99);
      w[d.name].samples.push({ p99WithoutMs: without.p99, p99DuringMs: during, inspectsDuring: latencies.length, dfMs });
      log(`  ${d.name}: inspect p99 ${without.p99.toFixed(2)} ms without a df, ${during.toFixed(2)} ms during one (${latencies.length} inspects); df ${dfMs.toFixed(0)} ms`);
    }
  }
  for (const d of daemons) {
    const s = w[d.name].samples;
    w[d.name].median = {
      p99WithoutMs: median(s.map((x) => x.p99WithoutMs)),
      p99DuringMs: median(s.map((x) => x.p99DuringMs)),
      addedMs: median(s.map((x) => x.p99DuringMs - x.p99WithoutMs)),
      dfMs: median(s.map((x) => x.dfMs)),
    };
  }
}

async function restart(daemons, order) {
  const w = (result.workloads.restart = {});
  for (const d of daemons) w[d.name] = { samples: [] };
  for (let rep = 0; rep < P.restartReps; rep++) {
    for (const d of order(rep)) {
      const stopT = performance.now();
      await d.stop();
      const stopMs = performance.now() - stopT;
      const { pingMs } = await d.start();
      await listAll(d);
      const lsMs = performance.now() - d.child.startedAt;
      const rss = rssBytes(d.pid);
      const cpu = cpuMs(d.pid);
      // dockerd's containerd is a separate process and not counted in its RSS; recorded apart.
      const childRss = descendants(d.pid).reduce((sum, c) => sum + (rssBytes(c.pid) ?? 0), 0);
      w[d.name].samples.push({ pingMs, firstFullLsMs: lsMs, rssBytes: rss, childrenRssBytes: childRss, cpuMs: cpu, stopMs });
      log(`  ${d.name}: stop ${stopMs.toFixed(0)} ms; start → _ping ${pingMs.toFixed(0)} ms, → first full ls ${lsMs.toFixed(0)} ms, RSS ${mb(rss)} MB${childRss > 0 ? ` (+ children ${mb(childRss)} MB)` : ''}`);
    }
  }
  for (const d of daemons) {
    const s = w[d.name].samples;
    w[d.name].median = {
      pingMs: median(s.map((x) => x.pingMs)),
      firstFullLsMs: median(s.map((x) => x.firstFullLsMs)),
      cpuMs: median(s.map((x) => x.cpuMs)),
      rssBytes: median(s.map((x) => x.rssBytes)),
      childrenRssBytes: median(s.map((x) => x.childrenRssBytes)),
    };
  }
}

async function hungPlugin(berth, docker) {
  const w = (result.workloads.hungPlugin = {});
  // berth: its own legacy socket directory (--plugin-socket-dir), nothing host-global.
  {
    const plugin = await startHungPlugin(join(berth.pluginSocketDir, 'bench-hung.sock'));
    try {
      const calls = [];
      for (let i = 0; i < 2; i++) calls.push(await timedList(berth, P.hungCapMs));
      w.berthd = { ...calls[0], second: calls[1], pluginConnections: plugin.accepted };
    } finally {
      await plugin.close();
    }
    log(`  berthd: ${describeHung(w.berthd)} (second call ${describeHung(w.berthd.second)})`);
  }
  if (docker === undefined) return;
  // dockerd reads v1 plugin sockets only from /run/docker/plugins (host-global): the socket exists only
  // for this measurement, under a name no one else uses.
  if (isStopping()) return;
  const created = ['/run/docker', '/run/docker/plugins'].filter((d) => !existsSync(d));
  await mkdir('/run/docker/plugins', { recursive: true, mode: 0o700 });
  onCleanup('/run/docker/plugins made for the hung plugin', async () => {
    for (const d of created.reverse()) await rmdir(d).catch(() => undefined);
  });
  const plugin = await startHungPlugin(`/run/docker/plugins/berth-bench-hung-${process.pid}.sock`);
  const undo = onCleanup('hung plugin socket', () => plugin.close());
  try {
    w.dockerd = { ...(await timedList(docker, P.hungCapMs)), pluginConnections: plugin.accepted };
  } finally {
    await plugin.close();
    undo();
  }
  log(`  dockerd: ${describeHung(w.dockerd)}`);
}

async function timedList(d, capMs) {
  const t = performance.now();
  try {
    const res = await d.client.request('GET', '/volumes', { timeoutMs: capMs });
    const body = res.status === 200 ? res.json() : {};
    return { ms: performance.now() - t, status: res.status, volumes: (body.Volumes ?? []).length, warnings: body.Warnings ?? null };
  } catch (err) {
    if (err.code === 'ETIMEDOUT_BENCH') return { ms: performance.now() - t, timedOut: true, capMs };
    throw err;
  }
}

function describeHung(x) {
  if (x === undefined) return '-';
  if (x.timedOut) return `> ${x.capMs / 1000} s (timed out)`;
  return `${x.ms.toFixed(0)} ms, ${x.status}, ${x.volumes} volumes, warnings ${JSON.stringify(x.warnings)}`;
}

async function pluginEnable(berth, docker, why, tmp) {
  const w = (result.workloads.pluginEnable = {});
  if (why !== undefined) {
    w.skipped = why;
    log(`  skipped: ${why}`);
    return;
  }
  const dir = await buildPluginDir(join(tmp, 'plugin'));
  for (const d of [berth, docker]) {
    if (d === undefined) continue;
    try {
      w[d.name] = await enableRounds(d, dir);
    } catch (err) {
      w[d.name] = { error: err.message };
      if (d.name === 'berthd') throw err;
      log(`  ${d.name}: ${err.message}`);
    }
  }
}

async function enableRounds(d, dir) {
  const name = 'berth-bench-vol:latest';
  const t = performance.now();
  const created = await d.client.request('POST', `/plugins/create?name=${encodeURIComponent(name)}`, { stream: tarStream(dir), timeoutMs: 300_000 });
  if (created.status === 404 && /page not found/i.test(created.body.toString())) {
    log(`  ${d.name}: the plugin API is not served (POST /plugins/create → 404 page not found)`);
    return { unsupported: 'plugin API not served (POST /plugins/create: 404 page not found)' };
  }
  if (created.status !== 204 && created.status !== 200) throw new Error(`plugin create: ${created.status} ${created.body.toString().slice(0, 300)}`);
  const createMs = performance.now() - t;
  const remove = () => d.client.request('DELETE', `/plugins/${name}?force=1`, { timeoutMs: 60_000 }).catch(() => undefined);
  const undo = onCleanup(`${d.name} plugin remove`, async () => {
    if (d.child?.running) {
      await d.client.request('POST', `/plugins/${name}/disable?force=1`, { timeoutMs: 30_000 }).catch(() => undefined);
      await remove();
    }
  });
  try {
    const id = (await d.client.expect(200, 'GET', `/plugins/${name}/json`)).json().Id;
    const samples = [];
    for (let rep = 0; rep < P.enableReps; rep++) {
      const t0 = performance.now();
      await d.client.expect(200, 'POST', `/plugins/${name}/enable?timeout=30`, { timeoutMs: 60_000 });
      const enabledMs = performance.now() - t0;
      // berthd: <exec-root>/plugins/<id>/; dockerd 20.10: /run/docker/plugins/<id>/ whatever its exec-root.
      const roots = d.name === 'dockerd' ? ['/run/docker/plugins', d.execRoot] : [d.execRoot];
      let socket;
      for (const root of roots) socket ??= await findPluginSocket(root, id);
      if (socket === undefined) throw new Error(`enabled, but no socket <…>/${id}/vol.sock under ${roots.join(' or ')}`);
      const answered = await waitPluginAnswers(socket, t0 + 30_000);
      samples.push({ enableResponseMs: enabledMs, socketAnswersMs: answered - t0 });
      const td = performance.now();
      await d.client.expect(200, 'POST', `/plugins/${name}/disable`, { timeoutMs: 60_000 });
      samples.at(-1).disableMs = performance.now() - td;
      log(`  ${d.name}: enable → socket answering ${(answered - t0).toFixed(0)} ms (response after ${enabledMs.toFixed(0)} ms); disable ${samples.at(-1).disableMs.toFixed(0)} ms`);
    }
    return {
      createMs,
      samples,
      median: { socketAnswersMs: median(samples.map((s) => s.socketAnswersMs)), enableResponseMs: median(samples.map((s) => s.enableResponseMs)) },
    };
  } finally {
    await remove();
    undo();
  }
}

// ---------------------------------------------------------------------------------------------
// Global volumes on an etcd cluster (issue 15): one berthd with --cluster-store on a 3-member etcd
// on 127.0.0.1 and a v1 plugin of global scope over a directory, the same figures for its global
// volumes and for its local ones (in SQLite), in the same run. Self-contained: its own daemon, rows
// and table (no dockerd column: dockerd has no cluster store for volumes).

async function clusterStore(tmp) {
  const w = (result.workloads.clusterStore = {});
  if (onPath('etcd') === undefined) {
    w.skipped = 'etcd is not installed (Debian etcd-server; scripts/test-all.sh installs it)';
    log(`  skipped: ${w.skipped}`);
    return;
  }
  const testing = join(ROOT, 'packages/volume-cluster-etcd/dist/testing/index.js');
  const { EtcdTestCluster, GlobalVolumePlugin } = await import(pathToFileURL(testing).href);
  const etcd = await EtcdTestCluster.start({ dir: join(tmp, 'etcd') });
  const undoEtcd = onCleanup('etcd cluster', () => etcd.close());
  const d = await berthDaemon(join(tmp, 'bc'), { args: ['--cluster-store', etcd.storeUrl, '--cluster-advertise', 'bench-1'] });
  const plugin = await GlobalVolumePlugin.start({ socketDir: d.pluginSocketDir, drivers: { gbench: join(tmp, 'gshared') } });
  const undoPlugin = onCleanup('global volume plugin', () => plugin.stop());
  const undoDaemon = onCleanup('berthd with --cluster-store', () => d.stop());
  try {
    await d.start();
    const kinds = [
      ['global', 'gbench'],
      ['local', 'local'],
    ];
    for (const [kind, driver] of kinds) {
      const warm = Array.from({ length: P.warmup }, (_, i) => `warm-${kind}-${i}`);
      await pool(warm.length, 16, (i) => d.client.expect(201, 'POST', '/volumes/create', { body: { Name: warm[i], Driver: driver } }));
      await pool(warm.length, 16, (i) => d.client.expect(204, 'DELETE', `/volumes/${warm[i]}`));
      const created = await pool(P.lsVolumes, 16, (i) => d.client.expect(201, 'POST', '/volumes/create', { body: { Name: `${kind}-${String(i).padStart(6, '0')}`, Driver: driver } }), d.pid);
      w[kind] = { createOpsPerSec: created.opsPerSec, createP50: created.p50, createP99: created.p99, lsSamplesMs: [] };
      log(`  ${kind}: ${P.lsVolumes} volumes created at ${created.opsPerSec.toFixed(0)}/s (16 at a time), p50 ${created.p50.toFixed(2)} ms`);
    }
    const listed = async (kind, driver) => {
      const t = performance.now();
      const res = await d.client.expect(200, 'GET', `/volumes?filters=${encodeURIComponent(JSON.stringify({ driver: [driver] }))}`, { timeoutMs: 120_000 });
      const ms = performance.now() - t;
      const body = res.json();
      if ((body.Volumes ?? []).length !== P.lsVolumes) throw new Error(`${kind} volume ls returned ${(body.Volumes ?? []).length} volumes, expected ${P.lsVolumes}`);
      if ((body.Warnings ?? []).length > 0) throw new Error(`${kind} volume ls warned: ${body.Warnings.join('; ')}`);
      return ms;
    };
    for (const [kind, driver] of kinds) await listed(kind, driver); // warm-up
    for (let rep = 0; rep < P.lsReps; rep++) {
      for (const [kind, driver] of rep % 2 === 0 ? kinds : [...kinds].reverse()) w[kind].lsSamplesMs.push(await listed(kind, driver));
    }
    for (const [kind] of kinds) {
      w[kind].lsMedianMs = median(w[kind].lsSamplesMs);
      log(`  ${kind}: volume ls of ${P.lsVolumes}: median ${w[kind].lsMedianMs.toFixed(1)} ms`);
    }
  } finally {
    await d.stop();
    undoDaemon();
    await plugin.stop();
    undoPlugin();
    await etcd.close();
    undoEtcd();
  }
}

function reportClusterStore() {
  const w = result.workloads.clusterStore;
  if (w === undefined) return;
  const n = P.lsVolumes.toLocaleString('en');
  console.log('');
  if (w.skipped !== undefined) {
    console.log(`global volumes on etcd: not measured (${w.skipped})`);
    return;
  }
  const rows = [
    [`global volume create, 16 at a time (${n}): ops/s`, '/s', w.global?.createOpsPerSec, w.local?.createOpsPerSec, fmt0, 'higher ↑'],
    [`volume ls, ${n} volumes of one driver`, 'ms', w.global?.lsMedianMs, w.local?.lsMedianMs, fmt1, 'lower ↓'],
  ];
  const cell = (v, fmt) => (typeof v === 'number' ? fmt(v) : '–');
  const table = [['figure (one berthd, 3-member etcd on loopback)', 'unit', 'global (etcd)', 'local (SQLite)', 'global/local', 'better']];
  result.clusterStoreTable = [];
  for (const [label, unit, global, local, fmt, better] of rows) {
    const ratio = typeof global === 'number' && typeof local === 'number' && local > 0 ? global / local : undefined;
    table.push([label, unit, cell(global, fmt), cell(local, fmt), ratio === undefined ? '–' : ratio.toFixed(2), better]);
    result.clusterStoreTable.push({ figure: label, unit, global, local, ratio });
  }
  console.log(formatTable(table));
}

// ---------------------------------------------------------------------------------------------
// Output

function report() {
  const w = result.workloads;
  const B = 'berthd';
  const D = 'dockerd';
  const rows = [];
  const row = (label, unit, better, b, d, fmt) => rows.push({ label, unit, better, berth: b, dockerd: d, fmt });
  for (const op of ['create', 'inspect', 'rm']) {
    for (const conc of [1, 16]) {
      const k = `${op}${conc}`;
      const mb_ = w.crud?.[B]?.median?.[k];
      const md = w.crud?.[D]?.median?.[k];
      const what = `${op === 'rm' ? 'volume rm' : `volume ${op}`}, ${conc === 1 ? 'one at a time' : '16 at a time'}`;
      row(`${what}: ops/s`, '/s', 'higher', mb_?.opsPerSec, md?.opsPerSec, fmt0);
      row(`${what}: p50`, 'ms', 'lower', mb_?.p50, md?.p50, fmt2);
      row(`${what}: p99`, 'ms', 'lower', mb_?.p99, md?.p99, fmt2);
      row(`${what}: daemon CPU per op`, 'µs', 'lower', mb_?.cpuUsPerOp, md?.cpuUsPerOp, fmt0);
    }
  }
  const n = P.lsVolumes.toLocaleString('en');
  row(`volume ls, ${n} volumes`, 'ms', 'lower', w.ls?.[B]?.medianMs, w.ls?.[D]?.medianMs, fmt1);
  row(`volume ls, ${n} volumes: daemon CPU`, 'ms', 'lower', w.ls?.[B]?.medianCpuMs, w.ls?.[D]?.medianCpuMs, fmt1);
  row(`volume inspect p99 added by a df of ${n} volumes`, 'ms', 'lower', w.inspectDuringDf?.[B]?.median?.addedMs, w.inspectDuringDf?.[D]?.median?.addedMs, fmt2);
  row(`start → /_ping, ${n} volumes`, 'ms', 'lower', w.restart?.[B]?.median?.pingMs, w.restart?.[D]?.median?.pingMs, fmt0);
  row(`start → first full volume ls, ${n} volumes`, 'ms', 'lower', w.restart?.[B]?.median?.firstFullLsMs, w.restart?.[D]?.median?.firstFullLsMs, fmt0);
  row(`start → first full ls: daemon CPU`, 'ms', 'lower', w.restart?.[B]?.median?.cpuMs, w.restart?.[D]?.median?.cpuMs, fmt0);
  row(`resident memory then (VmRSS; dockerd's own)`, 'MB', 'lower', toMb(w.restart?.[B]?.median?.rssBytes), toMb(w.restart?.[D]?.median?.rssBytes), fmt1);
  const hung = (x) => (x === undefined ? undefined : x.timedOut ? { gt: x.capMs } : x.ms);
  row(`volume ls with a hung v1 plugin (${n} volumes)`, 'ms', 'lower', hung(w.hungPlugin?.[B]), hung(w.hungPlugin?.[D]), fmt0);
  const pe = (x) => x?.median?.socketAnswersMs ?? (x?.unsupported !== undefined ? { na: 'not served' } : x?.error !== undefined ? { na: 'error' } : undefined);
  row('plugin enable → socket answering', 'ms', 'lower', pe(w.pluginEnable?.[B]), pe(w.pluginEnable?.[D]), fmt0);

  const cell = (v, fmt) => (v === undefined ? '–' : typeof v === 'object' ? (v.gt !== undefined ? `> ${v.gt / 1000} s (timed out)` : v.na) : fmt(v));
  const ratioOf = (r) => {
    if (typeof r.berth === 'number' && typeof r.dockerd === 'number' && r.dockerd > 0) return r.berth / r.dockerd;
    if (typeof r.berth === 'number' && typeof r.dockerd === 'object' && r.dockerd?.gt !== undefined) return { lt: r.berth / r.dockerd.gt };
    return undefined;
  };
  const ratioCell = (x) => (x === undefined ? '–' : typeof x === 'object' ? `< ${x.lt.toFixed(2)}` : `${x.toFixed(2)}`);
  const table = [['figure', 'unit', 'berth', 'dockerd', 'berth/dockerd', 'better']];
  for (const r of rows) {
    r.ratio = ratioOf(r);
    table.push([r.label, r.unit, cell(r.berth, r.fmt), cell(r.dockerd, r.fmt), ratioCell(r.ratio), r.better === 'higher' ? 'higher ↑' : 'lower ↓']);
  }

  const m = result.meta;
  console.log('');
  console.log(`berth bench${quick ? ' --quick' : ''} — ${m.date}`);
  console.log(`berth: ${m.berth ?? '?'}; reference: ${result.dockerd.available ? result.dockerd.version : `none (${result.dockerd.reason})`}`);
  console.log(`node ${m.node}, kernel ${m.kernel}, ${m.cpus} CPUs, load ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')} → ${m.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}, fdatasync ${m.fdatasyncMs?.toFixed(3) ?? '?'} ms${m.containerd ? `, ${m.containerd.split(' ').slice(0, 3).join(' ')}` : ''}`);
  console.log(`N=${P.n} named volumes per round, ${P.reps} rounds per daemon alternating; volume ls of ${n}: ${P.lsReps} alternating; restarts: ${P.restartReps} each; medians over rounds. Wall time ${m.wallSeconds.toFixed(0)} s.`);
  if (opts.profile !== undefined) console.log('berthd ran under --cpu-prof: its figures are slower than without.');
  console.log('');
  console.log(formatTable(table));
  if (w.restart?.[D] !== undefined) console.log(`\nRSS and CPU of dockerd are dockerd's own; the containerd it starts used another ${mb(w.restart[D].median?.childrenRssBytes)} MB (not counted).`);
  if (w.pluginEnable?.skipped) console.log(`plugin enable not measured: ${w.pluginEnable.skipped}`);
  for (const x of [B, D]) {
    if (w.pluginEnable?.[x]?.unsupported) console.log(`plugin enable, ${x}: ${w.pluginEnable[x].unsupported}`);
    if (w.pluginEnable?.[x]?.error) console.log(`plugin enable, ${x}: error: ${w.pluginEnable[x].error}`);
  }
  if (w.hungPlugin?.[B]) console.log(`hung plugin, berthd: first call ${describeHung(w.hungPlugin[B])}; second ${describeHung(w.hungPlugin[B].second)}`);
  if (!result.dockerd.available) console.log(`\nThe dockerd column is empty: ${result.dockerd.reason}.`);

  // Targets of issue 6.
  const get = (label) => rows.find((r) => r.label.startsWith(label));
  const targets = [
    ['create, one at a time: ≥ 2× dockerd (ops/s)', get('volume create, one at a time: ops/s'), (x) => x >= 2],
    ['create, 16 at a time: ≥ 4× dockerd (ops/s)', get('volume create, 16 at a time: ops/s'), (x) => x >= 4],
    ['inspect, 16 at a time: ≥ 3× dockerd (ops/s)', get('volume inspect, 16 at a time: ops/s'), (x) => x >= 3],
    [`volume ls of ${n}: ≤ 0.3× dockerd's time`, get('volume ls, '), (x) => x <= 0.3],
    [`start → first full ls of ${n}: ≤ 0.3× dockerd's time`, get('start → first full'), (x) => x <= 0.3],
    [`resident memory with ${n} volumes: ≤ dockerd's`, get('resident memory'), (x) => x <= 1],
  ];
  const tt = [['target (issue 6)', 'berth/dockerd', 'result']];
  result.targets = [];
  for (const [label, r, ok] of targets) {
    const ratio = typeof r?.ratio === 'number' ? r.ratio : undefined;
    const verdict = ratio === undefined ? (result.dockerd.available ? 'not measured' : 'n/a (no dockerd)') : ok(ratio) ? 'met' : 'NOT MET';
    tt.push([label, ratio === undefined ? '–' : `${ratio.toFixed(2)}×`, verdict]);
    result.targets.push({ target: label, ratio, verdict });
  }
  const hb = w.hungPlugin?.[B];
  const hungVerdict = hb === undefined ? 'not measured' : !hb.timedOut && hb.ms < 3000 ? 'met' : 'NOT MET';
  tt.push([`volume ls with a hung plugin: < 3 s`, hb === undefined ? '–' : hb.timedOut ? `> ${hb.capMs / 1000} s` : `${(hb.ms / 1000).toFixed(2)} s`, hungVerdict]);
  result.targets.push({ target: 'volume ls with a hung plugin < 3 s', berthMs: hb?.ms, verdict: hungVerdict });
  console.log('');
  console.log(formatTable(tt));
  if (quick) console.log(`(--quick: ${n} volumes stand in for 10,000, and fewer rounds; the targets are judged on these.)`);
  reportClusterStore();
  if (result.errors.length > 0) console.log(`\nerrors:\n  ${result.errors.join('\n  ')}`);
  result.table = rows.map(({ label, unit, better, berth, dockerd, ratio }) => ({ figure: label, unit, better, berth, dockerd, ratio }));
}

function formatTable(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r) => `| ${r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((wd, i) => (i === 0 ? `${'-'.repeat(wd + 1)}-` : `${'-'.repeat(wd + 1)}:`)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Helpers

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function median(xs) {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function fmt0(x) {
  return x.toLocaleString('en', { maximumFractionDigits: 0 });
}
function fmt1(x) {
  return x.toFixed(1);
}
function fmt2(x) {
  return x.toFixed(2);
}
function toMb(bytes) {
  return bytes === undefined ? undefined : bytes / (1024 * 1024);
}
function mb(bytes) {
  return bytes === undefined ? '?' : (bytes / (1024 * 1024)).toFixed(1);
}

/** Median time of a 4 KiB write + fdatasync in `dir` (the file system the data-roots are on). */
function fdatasyncProbe(dir, count) {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(4096, 1);
  const times = [];
  try {
    for (let i = 0; i < count; i++) {
      writeSync(fd, buf, 0, buf.length, 0);
      const t = performance.now();
      fdatasyncSync(fd);
      times.push(performance.now() - t);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return median(times);
}
