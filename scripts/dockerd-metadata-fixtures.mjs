#!/usr/bin/env node
// Makes `volumes/metadata.db` files written by the reference dockerd (Debian's docker.io 20.10,
// from scripts/ensure-dockerd.sh), for the tests of @berth/bbolt and the daemon's adoption:
//
//   <dir>/0.db        a dockerd that never had a volume
//   <dir>/1.db        one volume: dv1, label team=a, options type=tmpfs device=tmpfs o=size=1m
//   <dir>/20000.db    20,000 volumes (see `volumeRequest`), one with a 10 kB label (overflow pages)
//   <dir>/requests.json  the create requests of 20000.db, in order
//
// Printed on stdout: <dir>. Generated once per dockerd version into
// $BERTH_DOCKERD_CACHE/fixtures/metadata-<version> (default /var/cache/berth-dockerd/...) and reused;
// the dockerd runs on a tmpfs data-root under /dev/shm (its fsyncs are free there), with its own
// exec-root, socket and containerd, and is stopped before its files are copied. About 30 s.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENSURE_DOCKERD = fileURLToPath(new URL('./ensure-dockerd.sh', import.meta.url));
const COUNT = 20_000;

/** The i-th of the 20,000: a third with labels, a fifth with local options, one very large label. */
export function volumeRequest(i) {
  const Name = `vol-${String(i).padStart(5, '0')}`;
  const body = { Name, Driver: 'local' };
  if (i % 3 === 0) body.Labels = { team: `t${i % 7}`, 'com.example.owner': `owner-${i}` };
  if (i % 5 === 0) body.DriverOpts = { type: 'tmpfs', device: 'tmpfs', o: `size=${(i % 9) + 1}m` };
  if (i === 4242) body.Labels = { big: 'x'.repeat(10_000) };
  return body;
}

function fail(message) {
  process.stderr.write(`dockerd-metadata-fixtures: ${message}\n`);
  process.exit(1);
}

function call(socket, method, path, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      { socketPath: socket, method, path, headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function waitPing(socket, child, log) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) fail(`dockerd exited (${child.exitCode}):\n${readFileSync(log, 'utf8').slice(-3000)}`);
    const pong = await call(socket, 'GET', '/_ping').catch(() => undefined);
    if (pong?.status === 200) return;
    if (Date.now() > deadline) fail(`dockerd did not answer /_ping in 60 s:\n${readFileSync(log, 'utf8').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function withDockerd(binary, work, body) {
  const dataRoot = join(work, 'data');
  const socket = join(work, 'docker.sock');
  const log = join(work, 'dockerd.log');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'daemon.json'), '{}\n');
  const fd = openSync(log, 'a');
  const child = spawn(
    binary,
    [
      '--config-file', join(work, 'daemon.json'),
      '--data-root', dataRoot,
      '--exec-root', join(work, 'exec'),
      '-H', `unix://${socket}`,
      '--pidfile', join(work, 'dockerd.pid'),
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
    ],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    await waitPing(socket, child, log);
    await body(socket);
  } finally {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  return join(dataRoot, 'volumes', 'metadata.db');
}

async function create(socket, body) {
  const res = await call(socket, 'POST', '/volumes/create', body);
  if (res.status !== 201) fail(`POST /volumes/create ${JSON.stringify(body).slice(0, 200)}: ${res.status} ${res.text}`);
}

async function main() {
  const found = spawnSync('bash', [ENSURE_DOCKERD], { encoding: 'utf8', timeout: 600_000 });
  if (found.status !== 0) fail((found.stderr || 'scripts/ensure-dockerd.sh failed').trim());
  const binary = found.stdout.trim();
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/[^A-Za-z0-9.+-]+/g, '_');
  const cache = process.env.BERTH_DOCKERD_CACHE ?? '/var/cache/berth-dockerd';
  const dir = join(cache, 'fixtures', `metadata-${version}`);
  if (existsSync(join(dir, '20000.db'))) {
    process.stdout.write(`${dir}\n`);
    return;
  }
  mkdirSync(join(cache, 'fixtures'), { recursive: true });
  const staging = mkdtempSync(join(cache, 'fixtures', '.staging-'));
  const work = mkdtempSync('/dev/shm/berth-fixtures-');
  try {
    copyFileSync(await withDockerd(binary, join(work, 'zero'), async () => {}), join(staging, '0.db'));
    copyFileSync(
      await withDockerd(binary, join(work, 'one'), (socket) =>
        create(socket, { Name: 'dv1', Driver: 'local', Labels: { team: 'a' }, DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } }),
      ),
      join(staging, '1.db'),
    );
    const requests = Array.from({ length: COUNT }, (_, i) => volumeRequest(i));
    copyFileSync(
      await withDockerd(binary, join(work, 'many'), async (socket) => {
        let next = 0;
        const worker = async () => {
          while (next < requests.length) await create(socket, requests[next++]);
        };
        await Promise.all(Array.from({ length: 16 }, worker));
      }),
      join(staging, '20000.db'),
    );
    writeFileSync(join(staging, 'requests.json'), JSON.stringify(requests));
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(staging, { recursive: true, force: true });
  }
  process.stdout.write(`${dir}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
