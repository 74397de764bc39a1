#!/usr/bin/env node
// `pnpm bench`: berthd against two reference daemons, dockerd (Debian docker.io 20.10) and podman
// (Debian podman, `podman system service`), the same workloads over the Engine API on unix sockets,
// alternating among the daemons, medians of several rounds, and the targets of issue 11 (berth
// against the better reference on each figure). See bench/README.md.
//
//   node bench/run.mjs [--quick] [--json FILE] [--no-dockerd] [--no-podman] [--profile DIR]
//                      [--n N] [--ls-volumes N] [--reps N]
import { closeSync, existsSync, fdatasyncSync, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rmdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { API_VERSION, BERTHD, ROOT, berthDaemon, dockerDaemon, ensureContainerd, ensureDockerd, ensurePodman, onPath, podmanDaemon, startContainerd } from './lib/daemons.mjs';
import { HANG_POINTS, buildPluginDir, findPluginSocket, hungPluginName, managedPluginRequirements, startHungPlugin, tarStream, waitPluginAnswers } from './lib/plugins.mjs';
import { privatePluginDirs, reenterInOwnMountNamespace } from './lib/namespace.mjs';
import { cleanupAll, cpuMs, descendants, installSignalHandlers, isStopping, onCleanup, removeTree, rssBytes, run } from './lib/procs.mjs';
import { summarise } from './profile.mjs';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'no-dockerd': { type: 'boolean', default: false },
    'no-podman': { type: 'boolean', default: false },
    profile: { type: 'string' },
    n: { type: 'string' },
    'ls-volumes': { type: 'string' },
    reps: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: false,
});
if (opts.help) {
  console.log('usage: node bench/run.mjs [--quick] [--json FILE] [--no-dockerd] [--no-podman] [--profile DIR] [--n N] [--ls-volumes N] [--reps N]');
  process.exit(0);
}

await reenterInOwnMountNamespace(import.meta.url, onPath);

const quick = opts.quick;
const P = {
  n: Number(opts.n ?? (quick ? 200 : 1000)), // named volumes per create/inspect/rm round
  lsVolumes: Number(opts['ls-volumes'] ?? (quick ? 1000 : 10_000)),
  reps: Number(opts.reps ?? (quick ? 2 : 7)), // create/inspect/rm rounds per daemon
  lsReps: quick ? 3 : 9,
  restartReps: quick ? 1 : 5,
  enableReps: quick ? 1 : 3,
  hungCapMs: quick ? 8_000 : 20_000,
  unknownDriverCapMs: quick ? 3_000 : 20_000, // dockerd looks for an unknown plugin for 15 s
  unknownDrivers: 10, // concurrent creates, each on its own unknown driver
  warmup: quick ? 50 : 200,
  hardLimitMs: quick ? 180_000 : 15 * 60_000,
};
/** The daemons in the table, berth first; the others are the references. */
const COLUMNS = ['berthd', 'dockerd', 'podman'];
const REFERENCES = COLUMNS.slice(1);
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
  /** The reference daemons: { available, path, version } or { available: false, reason }. */
  references: {},
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

  const found = {
    dockerd: opts['no-dockerd'] ? { reason: '--no-dockerd given' } : await ensureDockerd(log),
    podman: opts['no-podman'] ? { reason: '--no-podman given' } : await ensurePodman(log),
  };
  for (const [name, ref] of Object.entries(found)) {
    if (ref.path !== undefined) {
      result.references[name] = { available: true, path: ref.path, version: ref.version };
      log(`reference: ${ref.version} (${ref.path})`);
    } else {
      result.references[name] = { available: false, reason: ref.reason };
      log(`no reference ${name}: ${ref.reason}`);
    }
  }
  const { dockerd, podman } = found;

  log(await privatePluginDirs());
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
  const volumePlugins = HANG_POINTS.map(hungPluginName);
  const pod = podman.path === undefined ? undefined : await podmanDaemon(join(tmp, 'p'), podman.path, { volumePlugins });
  const daemons = [berth, docker, pod].filter((d) => d !== undefined);
  for (const d of daemons) {
    const { pingMs } = await d.start();
    log(`${d.name} answers /_ping on a fresh data-root after ${pingMs.toFixed(0)} ms`);
    const v = (await d.client.expect(200, 'GET', '/version')).json();
    result.workloads.freshStart ??= {};
    result.workloads.freshStart[d.name] = { pingMs };
    if (d === berth) result.meta.berth = `${v.Platform?.Name ?? ''} (API ${v.ApiVersion})`;
  }
  /** Alternating order: each round starts with the next daemon, so each takes every place in turn. */
  const order = (rep) => [...daemons.slice(rep % daemons.length), ...daemons.slice(0, rep % daemons.length)];

  await step('create / inspect / rm', () => crud(daemons, order));
  await step(`volume ls with ${P.lsVolumes} volumes`, () => listMany(daemons, order));
  await step(`volume inspect while a df of ${P.lsVolumes} volumes runs`, () => inspectDuringDf(daemons, order));
  await step(`restart with ${P.lsVolumes} volumes`, () => restart(daemons, order));
  await step('plugin enable', () => pluginEnable(daemons, containerd === undefined ? pluginWhy ?? result.meta.containerdError ?? 'no containerd' : undefined, tmp));
  await step('volume create on unknown drivers', () => unknownDrivers(daemons));
  await step('volume ls with a hung v1 plugin', () => hungPlugins(daemons));
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

async function hungPlugins(daemons) {
  const w = (result.workloads.hungPlugin = {});
  for (const hangAt of HANG_POINTS) {
    const name = hungPluginName(hangAt);
    w[hangAt] = { plugin: name };
    for (const d of daemons) {
      if (isStopping()) return;
      const path = d.legacyPluginSocket(name);
      // dockerd's directory is host-global: made only if missing, and removed again at the end.
      if (path.startsWith('/run/docker/plugins/')) await makeHostPluginDir();
      const plugin = await startHungPlugin(path, { hangAt });
      const undo = onCleanup(`hung plugin ${path}`, () => plugin.close());
      try {
        const first = await timedList(d, P.hungCapMs);
        const second = first.timedOut ? undefined : await timedList(d, P.hungCapMs);
        w[hangAt][d.name] = { ...first, second, pluginConnections: plugin.accepted, warningNamesPlugin: namesPlugin(first, name) };
      } finally {
        await plugin.close();
        undo();
      }
      log(`  hung in ${hangAt}, ${d.name}: ${describeHung(w[hangAt][d.name])}; second call ${describeHung(w[hangAt][d.name].second)}`);
    }
  }
}

async function makeHostPluginDir() {
  if (existsSync('/run/docker/plugins')) return;
  const created = ['/run/docker', '/run/docker/plugins'].filter((d) => !existsSync(d));
  await mkdir('/run/docker/plugins', { recursive: true, mode: 0o700 });
  onCleanup('/run/docker/plugins made for the hung plugins', async () => {
    for (const d of created.reverse()) await rmdir(d).catch(() => undefined);
  });
}

function namesPlugin(answer, plugin) {
  return Array.isArray(answer.warnings) && answer.warnings.some((w) => typeof w === 'string' && w.includes(plugin));
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

/**
 * `volume create -d <a driver nobody has>` on a daemon up for at least 15 s (moby keeps looking for
 * a plugin for 15 s; berth only during its own first 15 s): once, then 10 at once, each on its
 * own unknown driver.
 */
async function unknownDrivers(daemons) {
  const w = (result.workloads.unknownDriver = {});
  const upMs = 15_000;
  const wait = Math.max(...daemons.map((d) => upMs - (performance.now() - d.child.startedAt)));
  if (wait > 0) {
    log(`  waiting ${(wait / 1000).toFixed(1)} s until every daemon has been up for 15 s`);
    await sleep(wait);
  }
  const cap = P.unknownDriverCapMs;
  for (const d of daemons) {
    if (isStopping()) return;
    const driver = (i) => `berth-bench-nosuch-${process.pid}-${i}`;
    const one = await timedCreate(d, `nosuch-${process.pid}`, driver('one'), cap);
    const many = await Promise.all(Array.from({ length: P.unknownDrivers }, (_, i) => timedCreate(d, `nosuch-${process.pid}-${i}`, driver(i), cap)));
    const timedOut = many.filter((x) => x.timedOut).length;
    w[d.name] = {
      one,
      concurrent: { slowestMs: Math.max(...many.map((x) => x.ms)), timedOut, capMs: cap, answers: many },
    };
    log(`  ${d.name}: one ${describeCreate(one)}; ${P.unknownDrivers} at once: slowest ${timedOut > 0 ? `> ${cap / 1000} s (${timedOut} timed out)` : `${w[d.name].concurrent.slowestMs.toFixed(0)} ms`}`);
  }
}

async function timedCreate(d, name, driver, capMs) {
  const t = performance.now();
  try {
    const res = await d.client.request('POST', '/volumes/create', { body: { Name: name, Driver: driver }, timeoutMs: capMs });
    const ms = performance.now() - t;
    if (res.status === 201) throw new Error(`${d.name}: volume create on the unknown driver ${driver} succeeded`);
    let message = res.body.toString('utf8');
    try {
      message = JSON.parse(message).message ?? message;
    } catch {
      // not JSON: the text as it came
    }
    return { ms, status: res.status, message };
  } catch (err) {
    if (err.code === 'ETIMEDOUT_BENCH') return { ms: performance.now() - t, timedOut: true, capMs };
    throw err;
  }
}

function describeCreate(x) {
  return x.timedOut ? `> ${x.capMs / 1000} s (timed out)` : `${x.ms.toFixed(0)} ms, ${x.status} ${JSON.stringify(x.message)}`;
}

async function pluginEnable(daemons, why, tmp) {
  const w = (result.workloads.pluginEnable = {});
  if (why !== undefined) {
    w.skipped = why;
    log(`  skipped: ${why}`);
    return;
  }
  const dir = await buildPluginDir(join(tmp, 'plugin'));
  for (const d of daemons) {
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
  // dockerd built without the plugin routes says "404 page not found", podman "404 Not Found".
  if (created.status === 404 && /^(404 page not found|not found)\s*$/i.test(created.body.toString())) {
    const said = created.body.toString().trim();
    log(`  ${d.name}: the plugin API is not served (POST /plugins/create → 404 ${JSON.stringify(said)})`);
    return { unsupported: `plugin API not served (POST /plugins/create: 404 ${JSON.stringify(said)})` };
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

/**
 * The figure of the best reference on a row: the highest or lowest number, a timed-out one
 * (`{ gt }`) only when no reference has a number. `undefined` without any.
 */
function bestReference(r) {
  let best;
  for (const name of REFERENCES) {
    const v = r.values[name];
    if (typeof v === 'number') {
      if (typeof best?.value !== 'number' || (r.better === 'higher' ? v > best.value : v < best.value)) best = { name, value: v };
    } else if (v?.gt !== undefined && best === undefined) best = { name, value: v };
  }
  return best;
}

/** berth / best reference: a number, `{ lt }` when the reference timed out, `undefined` when there is nothing to compare. */
function ratioTo(berth, best) {
  if (typeof berth !== 'number' || best === undefined) return undefined;
  if (typeof best.value === 'number') return best.value > 0 ? berth / best.value : undefined;
  return { lt: berth / best.value.gt };
}

function report() {
  const w = result.workloads;
  const rows = [];
  /**
   * A figure: `value(daemon)` for each column; `better` is 'higher' or 'lower'. `compared: false`
   * for figures judged on their own (the references do different things there: see the notes).
   */
  const row = (id, label, unit, better, value, fmt, { compared = true } = {}) =>
    rows.push({ id, label, unit, better, values: Object.fromEntries(COLUMNS.map((name) => [name, value(name)])), fmt, compared });
  for (const op of ['create', 'inspect', 'rm']) {
    for (const conc of [1, 16]) {
      const k = `${op}${conc}`;
      const m = (name) => w.crud?.[name]?.median?.[k];
      const what = `volume ${op}, ${conc === 1 ? 'one at a time' : '16 at a time'}`;
      row(`${k}.ops`, `${what}: ops/s`, '/s', 'higher', (x) => m(x)?.opsPerSec, fmt0);
      row(`${k}.p50`, `${what}: p50`, 'ms', 'lower', (x) => m(x)?.p50, fmt2);
      row(`${k}.p99`, `${what}: p99`, 'ms', 'lower', (x) => m(x)?.p99, fmt2);
      row(`${k}.cpu`, `${what}: daemon CPU per op`, 'µs', 'lower', (x) => m(x)?.cpuUsPerOp, fmt0);
    }
  }
  const n = P.lsVolumes.toLocaleString('en');
  row('ls.ms', `volume ls, ${n} volumes`, 'ms', 'lower', (x) => w.ls?.[x]?.medianMs, fmt1);
  row('ls.cpu', `volume ls, ${n} volumes: daemon CPU`, 'ms', 'lower', (x) => w.ls?.[x]?.medianCpuMs, fmt1);
  row('df.inspect', `volume inspect p99 added by a df of ${n} volumes`, 'ms', 'lower', (x) => w.inspectDuringDf?.[x]?.median?.addedMs, fmt2, { compared: false });
  row('start.ping', `start → /_ping, ${n} volumes`, 'ms', 'lower', (x) => w.restart?.[x]?.median?.pingMs, fmt0);
  row('start.ls', `start → first full volume ls, ${n} volumes`, 'ms', 'lower', (x) => w.restart?.[x]?.median?.firstFullLsMs, fmt0);
  row('start.cpu', 'start → first full ls: daemon CPU', 'ms', 'lower', (x) => w.restart?.[x]?.median?.cpuMs, fmt0);
  row('start.rss', "resident memory then (VmRSS; the daemon's own)", 'MB', 'lower', (x) => toMb(w.restart?.[x]?.median?.rssBytes), fmt1);
  const timed = (x) => (x === undefined ? undefined : x.timedOut ? { gt: x.capMs } : x.ms);
  for (const hangAt of HANG_POINTS) {
    const where = hangAt === 'activate' ? 'in Plugin.Activate' : 'after activation (VolumeDriver.List)';
    row(`hung.${hangAt}`, `volume ls, v1 plugin hung ${where}`, 'ms', 'lower', (x) => timed(w.hungPlugin?.[hangAt]?.[x]), fmt0, { compared: false });
  }
  row('unknown.one', 'volume create -d <unknown driver>, daemon up 15 s', 'ms', 'lower', (x) => timed(w.unknownDriver?.[x]?.one), fmt0, { compared: false });
  row('unknown.many', `${P.unknownDrivers} creates at once on ${P.unknownDrivers} unknown drivers: slowest`, 'ms', 'lower', (x) => {
    const c = w.unknownDriver?.[x]?.concurrent;
    return c === undefined ? undefined : c.timedOut > 0 ? { gt: c.capMs } : c.slowestMs;
  }, fmt0, { compared: false });
  const pe = (x) => x?.median?.socketAnswersMs ?? (x?.unsupported !== undefined ? { na: 'not served' } : x?.error !== undefined ? { na: 'error' } : undefined);
  row('enable', 'plugin enable → socket answering', 'ms', 'lower', (x) => pe(w.pluginEnable?.[x]), fmt0);

  const cell = (v, fmt) => (v === undefined ? '–' : typeof v === 'object' ? (v.gt !== undefined ? `> ${v.gt / 1000} s (timed out)` : v.na) : fmt(v));
  const ratioCell = (x) => (x === undefined ? '–' : typeof x === 'object' ? `< ${x.lt.toFixed(2)}` : `${x.toFixed(2)}`);
  const table = [['figure', 'unit', ...COLUMNS, 'best reference', 'berth/best', 'better']];
  for (const r of rows) {
    r.best = r.compared ? bestReference(r) : undefined;
    r.ratio = ratioTo(r.values.berthd, r.best);
    table.push([r.label, r.unit, ...COLUMNS.map((name) => cell(r.values[name], r.fmt)), r.best?.name ?? '–', ratioCell(r.ratio), r.better === 'higher' ? 'higher ↑' : 'lower ↓']);
  }

  const m = result.meta;
  const refs = result.references;
  console.log('');
  console.log(`berth bench${quick ? ' --quick' : ''} — ${m.date}`);
  console.log(`berth: ${m.berth ?? '?'}; references: ${REFERENCES.map((name) => (refs[name]?.available ? refs[name].version : `${name}: none`)).join('; ')}`);
  console.log(`node ${m.node}, kernel ${m.kernel}, ${m.cpus} CPUs, load ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')} → ${m.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}, fdatasync ${m.fdatasyncMs?.toFixed(3) ?? '?'} ms${m.containerd ? `, ${m.containerd.split(' ').slice(0, 3).join(' ')}` : ''}`);
  console.log(`N=${P.n} named volumes per round, ${P.reps} rounds per daemon, alternating; volume ls of ${n}: ${P.lsReps} alternating; restarts: ${P.restartReps} each; medians over rounds. Wall time ${m.wallSeconds.toFixed(0)} s.`);
  if (opts.profile !== undefined) console.log('berthd ran under --cpu-prof: its figures are slower than without.');
  console.log('');
  console.log(formatTable(table));
  if (w.restart?.dockerd !== undefined) console.log(`\nRSS and CPU of dockerd are dockerd's own; the containerd it starts used another ${mb(w.restart.dockerd.median?.childrenRssBytes)} MB (not counted).`);
  if (w.pluginEnable?.skipped) console.log(`plugin enable not measured: ${w.pluginEnable.skipped}`);
  for (const x of COLUMNS) {
    if (w.pluginEnable?.[x]?.unsupported) console.log(`plugin enable, ${x}: ${w.pluginEnable[x].unsupported}`);
    if (w.pluginEnable?.[x]?.error) console.log(`plugin enable, ${x}: error: ${w.pluginEnable[x].error}`);
  }
  for (const hangAt of HANG_POINTS) {
    for (const x of COLUMNS) {
      const h = w.hungPlugin?.[hangAt]?.[x];
      if (h !== undefined) console.log(`plugin hung in ${hangAt}, ${x}: first call ${describeHung(h)}; second ${describeHung(h.second)}; connections to the plugin: ${h.pluginConnections}`);
    }
  }
  for (const x of COLUMNS) {
    const u = w.unknownDriver?.[x];
    if (u !== undefined) console.log(`unknown driver, ${x}: ${describeCreate(u.one)}`);
  }
  if (w.hungPlugin !== undefined || w.unknownDriver !== undefined) {
    console.log(
      'Plugin rows are judged on their own: podman knows volume plugins only from containers.conf and asks them only for volumes that use\n' +
        'one (its volume ls never dials a plugin: see its connection counts), and it fails an unknown driver at once; dockerd looks for an\n' +
        'unknown plugin for 15 s and waits on a hung one without a deadline.',
    );
  }
  for (const name of REFERENCES) if (refs[name]?.available === false) console.log(`\nThe ${name} column is empty: ${refs[name].reason}.`);

  // Targets of issue 11: berth against the better reference on each figure.
  const byId = (id) => rows.find((r) => r.id === id);
  const atLeast = (k) => ({ text: `≥ ${k}×`, ok: (x) => x >= k });
  const atMost = (k) => ({ text: `≤ ${k}×`, ok: (x) => x <= k });
  const ratioTargets = [
    ['create, one at a time: ops/s', 'create1.ops', atLeast(2.5)],
    ['create, 16 at a time: ops/s', 'create16.ops', atLeast(2.5)],
    ['inspect, one at a time: ops/s', 'inspect1.ops', atLeast(1.5)],
    ['inspect, 16 at a time: ops/s', 'inspect16.ops', atLeast(1.5)],
    ['rm, one at a time: ops/s', 'rm1.ops', atLeast(2.5)],
    ['rm, 16 at a time: ops/s', 'rm16.ops', atLeast(2.5)],
    ...['create', 'inspect', 'rm'].flatMap((op) => [1, 16].map((c) => [`daemon CPU per ${op}, ${c === 1 ? 'one' : '16'} at a time`, `${op}${c}.cpu`, atMost(0.6)])),
    [`volume ls of ${n}: time`, 'ls.ms', atMost(0.3)],
    [`volume ls of ${n}: daemon CPU`, 'ls.cpu', atMost(0.3)],
    [`start → first full ls, ${n} volumes`, 'start.ls', atMost(0.4)],
    [`resident memory with ${n} volumes`, 'start.rss', atMost(0.7)],
  ];
  const tt = [['target (issue 11)', 'berth', 'against', 'result']];
  result.targets = [];
  for (const [label, id, { text, ok }] of ratioTargets) {
    const r = byId(id);
    const x = r?.ratio;
    const value = typeof x === 'number' ? x : x?.lt;
    const anyReference = REFERENCES.some((name) => refs[name]?.available);
    const verdict = value === undefined ? (anyReference ? 'not measured' : 'n/a (no reference)') : ok(value) ? 'met' : 'NOT MET';
    tt.push([`${label}: ${text}`, x === undefined ? '–' : `${ratioCell(x)}×`, r?.best?.name ?? '–', verdict]);
    result.targets.push({ target: `${label}: ${text} the better reference`, ratio: x, against: r?.best?.name, verdict });
  }
  const absolute = [
    ...HANG_POINTS.map((hangAt) => {
      const h = w.hungPlugin?.[hangAt]?.berthd;
      const label = `volume ls, plugin hung ${hangAt === 'activate' ? 'in Plugin.Activate' : 'in VolumeDriver.List'}: < 2.5 s, Warnings name it`;
      if (h === undefined) return [label, '–', 'not measured'];
      const shown = h.timedOut ? `> ${h.capMs / 1000} s` : `${seconds(h.ms)}${h.warningNamesPlugin ? '' : ', not in Warnings'}`;
      return [label, shown, !h.timedOut && h.ms < 2500 && h.warningNamesPlugin ? 'met' : 'NOT MET'];
    }),
    ...[
      ['volume create -d <unknown>, daemon up 15 s: < 0.5 s', byId('unknown.one')],
      [`${P.unknownDrivers} at once on ${P.unknownDrivers} unknown drivers, slowest: < 0.5 s`, byId('unknown.many')],
    ].map(([label, r]) => {
      const v = r?.values.berthd;
      if (v === undefined) return [label, '–', 'not measured'];
      return [label, typeof v === 'number' ? seconds(v) : cell(v, fmt0), typeof v === 'number' && v < 500 ? 'met' : 'NOT MET'];
    }),
    (() => {
      // Issue 12's bound: a df of every volume must not hold other requests up.
      const label = `volume inspect p99 added by a df of ${n} volumes: < 50 ms (issue 12)`;
      const v = byId('df.inspect')?.values.berthd;
      return typeof v === 'number' ? [label, `${v.toFixed(1)} ms`, v < 50 ? 'met' : 'NOT MET'] : [label, '–', 'not measured'];
    })(),
  ];
  for (const [label, shown, verdict] of absolute) {
    tt.push([label, shown, 'absolute', verdict]);
    result.targets.push({ target: label, berth: shown, verdict });
  }
  console.log('');
  console.log(formatTable(tt));
  if (quick) console.log(`(--quick: ${n} volumes stand in for 10,000, fewer rounds, and a ${P.unknownDriverCapMs / 1000} s cap on unknown-driver lookups; the targets are judged on these.)`);
  reportClusterStore();
  if (result.errors.length > 0) console.log(`\nerrors:\n  ${result.errors.join('\n  ')}`);
  result.table = rows.map(({ id, label, unit, better, values, best, ratio }) => ({ id, figure: label, unit, better, ...values, best: best?.name, ratio }));
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

/** A duration for the targets table: seconds, or ms below one. */
function seconds(ms) {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
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
