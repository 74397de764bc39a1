#!/usr/bin/env node
// Create-to-running and signal-to-exit through berth's executor and through `ctr`, on one private
// containerd in one run, same OCI spec and rootfs. Needs root, containerd, runc, busybox-static
// and a build (`pnpm build`). Prints medians, ratios, and gRPC calls per operation (berth's counted
// by an interceptor; ctr's are not observable, so its process spawns are given instead).
//
//   node bench/executor.mjs [iterations=15]
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { InterceptingCall } from '@grpc/grpc-js';
import { ContainerdClient, ContainerdExecutor, startContainerd, unpackTaskExit } from '../dist/index.js';

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 15);
const WARMUP = 2;
const SCRIPT = 'trap "exit 0" TERM; echo ready; sleep 1000 & wait';

if (process.getuid() !== 0) {
  console.error('bench/executor.mjs needs root (runc)');
  process.exit(1);
}

const dir = await mkdtemp(join(tmpdir(), 'berth-bench-'));
const rootfs = join(dir, 'rootfs');
for (const d of ['bin', 'proc', 'dev', 'tmp']) await mkdir(join(rootfs, d), { recursive: true });
await copyFile('/usr/bin/busybox', join(rootfs, 'bin/busybox'));
await chmod(join(rootfs, 'bin/busybox'), 0o755);
const spec = {
  ociVersion: '1.0.2',
  process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/busybox', 'sh', '-c', SCRIPT], env: ['PATH=/bin'], cwd: '/' },
  root: { path: rootfs, readonly: false },
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
  ],
  linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }] },
};
const specPath = join(dir, 'spec.json');
await writeFile(specPath, JSON.stringify(spec));

const containerd = await startContainerd({ dir: join(dir, 'containerd') });
const cleanups = [];
try {
  const result = await bench(containerd.address);
  await mkdir('bench-results', { recursive: true });
  await writeFile('bench-results/executor.json', `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  await containerd.stop();
  await rm(dir, { recursive: true, force: true });
}

async function bench(address) {
  // berth: one client whose calls are counted by method.
  const counts = new Map();
  const counter = (options, next) => {
    const method = options.method_definition.path.split('/').slice(-2).join('/').replace(/^containerd\.services\./, '');
    counts.set(method, (counts.get(method) ?? 0) + 1);
    return new InterceptingCall(next(options));
  };
  const client = new ContainerdClient({ address, namespace: 'berth-bench', interceptors: [counter] });
  const exited = new Map();
  const executor = new ContainerdExecutor({
    client,
    stateDir: join(dir, 'exec'),
    exitHandler: { handleExitEvent: (id) => exited.get(id)?.() },
  });
  cleanups.push(async () => {
    await executor.close();
    client.close();
  });

  // ctr: exits observed on our own (uncounted) subscription to its namespace.
  const watcher = new ContainerdClient({ address, namespace: 'ctr-bench' });
  const abort = new AbortController();
  const ctrExits = new Map();
  void (async () => {
    try {
      for await (const e of watcher.subscribe(['namespace=="ctr-bench",topic=="/tasks/exit"'], { signal: abort.signal })) {
        const exit = unpackTaskExit(e.event);
        if (exit !== undefined) ctrExits.get(exit.containerId)?.();
      }
    } catch {
      // closed
    }
  })();
  cleanups.push(async () => {
    abort.abort();
    watcher.close();
  });
  await watcher.version();
  const ctr = (...args) => run('ctr', ['--address', address, '-n', 'ctr-bench', ...args]);

  const samples = { berthCreate: [], berthStop: [], ctrCreate: [], ctrStop: [] };
  const calls = { create: new Map(), stop: new Map() };
  const snapshot = (into) => {
    for (const [k, v] of counts) into.set(k, (into.get(k) ?? 0) + v);
    counts.clear();
  };

  for (let i = 0; i < WARMUP + N; i++) {
    const keep = i >= WARMUP;

    const id = `berth-${i}`;
    const ready = new PassThrough();
    const readyOutput = new Promise((resolve) => ready.once('data', resolve));
    counts.clear();
    let t = performance.now();
    await executor.create(id, spec, ready, new PassThrough());
    const created = performance.now() - t;
    if (keep) snapshot(calls.create);
    await readyOutput;
    const gone = new Promise((resolve) => exited.set(id, resolve));
    counts.clear();
    t = performance.now();
    await executor.signal(id, 'SIGTERM');
    await gone;
    const stopped = performance.now() - t;
    if (keep) {
      snapshot(calls.stop);
      samples.berthCreate.push(created);
      samples.berthStop.push(stopped);
    }

    const cid = `ctr-${i}`;
    t = performance.now();
    await ctr('run', '-d', '--config', specPath, cid);
    const ctrCreated = performance.now() - t;
    await new Promise((r) => setTimeout(r, 50)); // ctr -d does not wait for output; let the trap be set
    const ctrGone = new Promise((resolve) => ctrExits.set(cid, resolve));
    t = performance.now();
    await ctr('task', 'kill', '-s', 'SIGTERM', cid);
    await ctrGone;
    await ctr('task', 'rm', cid);
    await ctr('container', 'rm', cid);
    const ctrStopped = performance.now() - t;
    if (keep) {
      samples.ctrCreate.push(ctrCreated);
      samples.ctrStop.push(ctrStopped);
    }
  }

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const fmt = (x) => x.toFixed(1).padStart(7);
  const perOp = (m) =>
    [...m]
      .sort()
      .map(([k, v]) => `${k}×${+(v / N).toFixed(2)}`)
      .join(', ');
  const rows = [
    ['create → running', samples.berthCreate, samples.ctrCreate, perOp(calls.create), '1 process (ctr run -d)'],
    ['signal → exited + removed', samples.berthStop, samples.ctrStop, perOp(calls.stop), '3 processes (ctr task kill, task rm, container rm)'],
  ];
  const { stdout: version } = await ctr('version');
  console.log(`containerd ${/Server:\s+Version:\s+(\S+)/.exec(version)?.[1] ?? '?'}, ${N} iterations after ${WARMUP} warm-up, medians in ms (min–max)\n`);
  const result = {};
  for (const [name, berth, viaCtr, berthCalls, ctrCalls] of rows) {
    const b = median(berth);
    const c = median(viaCtr);
    console.log(`${name}`);
    console.log(`  berth ${fmt(b)}  (${Math.min(...berth).toFixed(1)}–${Math.max(...berth).toFixed(1)})  calls/op: ${berthCalls}`);
    console.log(`  ctr   ${fmt(c)}  (${Math.min(...viaCtr).toFixed(1)}–${Math.max(...viaCtr).toFixed(1)})  ${ctrCalls}`);
    console.log(`  berth/ctr ${(b / c).toFixed(2)}\n`);
    result[name] = { berthMs: berth, ctrMs: viaCtr, berthMedianMs: b, ctrMedianMs: c, ratio: b / c, berthCalls, ctrCalls };
  }
  return result;
}
