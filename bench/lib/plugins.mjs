// The kinds of plugin the bench needs: v1 plugin sockets that hang (in the handshake, or after it), and a
// managed (v2) volume plugin — node and its libraries in a rootfs, as
// @berth/plugin-manager/testing (src/volume-plugin-fixture.ts) builds it.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { answersOk } from './http.mjs';

/** Where a hung plugin stops answering: its handshake, or every volume call after it. */
export const HANG_POINTS = ['activate', 'list'];

/** The v1 plugin names the bench uses for hung plugins (unique to this run: dockerd's directory is host-global). */
export function hungPluginName(hangAt) {
  return `berth-bench-hung-${hangAt}-${process.pid}`;
}

/**
 * A v1 plugin on the unix socket `path` that hangs: with `hangAt: 'activate'` it accepts
 * connections and never writes a byte (so `Plugin.Activate` never completes); with `'list'` it
 * answers `Plugin.Activate` (a VolumeDriver) and `VolumeDriver.Capabilities`, then leaves every
 * other call (`VolumeDriver.List`, `Get`, …) without an answer.
 */
export async function startHungPlugin(path, { hangAt = 'activate' } = {}) {
  await rm(path, { force: true });
  const conns = new Set();
  let accepted = 0;
  const answers = {
    '/Plugin.Activate': { Implements: ['VolumeDriver'] },
    '/VolumeDriver.Capabilities': { Capabilities: { Scope: 'local' } },
  };
  const server =
    hangAt === 'activate'
      ? net.createServer((c) => c.resume()) // read and drop whatever is asked
      : http.createServer((req, res) => {
          req.resume();
          const answer = answers[req.url];
          if (answer === undefined) return; // hung
          req.on('end', () => {
            res.writeHead(200, { 'Content-Type': 'application/vnd.docker.plugins.v1.2+json' });
            res.end(JSON.stringify(answer));
          });
        });
  server.on('connection', (c) => {
    accepted++;
    conns.add(c);
    c.on('error', () => undefined);
    c.on('close', () => conns.delete(c));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return {
    path,
    get accepted() {
      return accepted;
    },
    async close() {
      for (const c of conns) c.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}

const PLUGIN_SOURCE = String.raw`'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const socket = path.join('/run/docker/plugins', process.argv[2] || 'vol.sock');
const data = process.argv[3] || '/data';
fs.mkdirSync(data, { recursive: true });
try { fs.unlinkSync(socket); } catch {}
const valid = (n) => typeof n === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n);
const dirOf = (n) => path.join(data, n);
const handlers = {
  'Plugin.Activate': () => ({ Implements: ['VolumeDriver'] }),
  'VolumeDriver.Capabilities': () => ({ Capabilities: { Scope: 'local' } }),
  'VolumeDriver.Create': (r) => (valid(r.Name) ? (fs.mkdirSync(dirOf(r.Name), { recursive: true }), {}) : { Err: 'invalid volume name' }),
  'VolumeDriver.Remove': (r) => (valid(r.Name) && fs.rmSync(dirOf(r.Name), { recursive: true, force: true }), {}),
  'VolumeDriver.Get': (r) => (valid(r.Name) && fs.existsSync(dirOf(r.Name)) ? { Volume: { Name: r.Name, Mountpoint: dirOf(r.Name) } } : { Err: 'no such volume' }),
  'VolumeDriver.List': () => ({ Volumes: fs.readdirSync(data).filter(valid).map((n) => ({ Name: n, Mountpoint: dirOf(n) })) }),
  'VolumeDriver.Path': (r) => ({ Mountpoint: dirOf(r.Name) }),
  'VolumeDriver.Mount': (r) => ({ Mountpoint: dirOf(r.Name) }),
  'VolumeDriver.Unmount': () => ({}),
};
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    let parsed = {};
    try { parsed = body.trim() === '' ? {} : JSON.parse(body); } catch {}
    const h = handlers[req.url.replace(/^\//, '')];
    res.writeHead(h ? 200 : 404, { 'Content-Type': 'application/vnd.docker.plugins.v1.2+json' });
    res.end(JSON.stringify(h ? h(parsed || {}) : { Err: 'unknown method' }));
  });
});
process.on('SIGTERM', () => { server.close(); process.exit(0); });
server.listen(socket);
`;

export const PLUGIN_SOCKET = 'vol.sock';

/** Why a managed plugin cannot be run here, or undefined. */
export function managedPluginRequirements(onPath) {
  if (process.getuid?.() !== 0) return 'needs root (runc)';
  const missing = ['containerd', 'containerd-shim-runc-v2', 'runc', 'ldd', 'tar'].filter((b) => onPath(b) === undefined);
  return missing.length > 0 ? `missing ${missing.join(', ')}` : undefined;
}

/** Writes `<dir>/config.json` and `<dir>/rootfs` (node hard-linked or copied, with its libraries). */
export async function buildPluginDir(dir) {
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'plugin'), { recursive: true });
  const node = await realpath(process.execPath);
  await place(node, join(rootfs, 'usr/bin/node'));
  const ldd = execFileSync('ldd', [node], { encoding: 'utf8' });
  for (const line of ldd.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m !== null) await place(await realpath(m[1]), join(rootfs, m[1]));
  }
  await writeFile(join(rootfs, 'plugin/main.cjs'), PLUGIN_SOURCE);
  for (const d of ['data', 'run/docker/plugins', 'proc', 'dev', 'sys', 'tmp', 'etc']) await mkdir(join(rootfs, d), { recursive: true });
  const config = {
    Description: 'berth bench volume plugin',
    Documentation: 'https://example.invalid/berth-bench',
    Entrypoint: ['/usr/bin/node', '/plugin/main.cjs', PLUGIN_SOCKET, '/data'],
    Interface: { Socket: PLUGIN_SOCKET, Types: ['docker.volumedriver/1.0'] },
    WorkDir: '/',
    Network: { Type: 'none' },
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

async function place(source, target) {
  await mkdir(dirname(target), { recursive: true });
  if (existsSync(target)) return;
  try {
    await link(source, target);
  } catch {
    await copyFile(source, target);
  }
}

/** The plugin directory as a tar stream (what `docker plugin create` sends), from tar(1). */
export function tarStream(dir) {
  const child = spawn('tar', ['-C', dir, '-cf', '-', 'config.json', 'rootfs'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return child.stdout;
}

/** `<root>/…/<id>/<socket>`: where a daemon put the socket of the managed plugin `id`. */
export async function findPluginSocket(root, id, socket = PLUGIN_SOCKET, depth = 3) {
  for (const candidate of [join(root, 'plugins', id, socket), join(root, id, socket)]) if (existsSync(candidate)) return candidate;
  if (depth === 0) return undefined;
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const found = await findPluginSocket(join(root, e.name), id, socket, depth - 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Polls `POST /Plugin.Activate` on a plugin socket until it answers 200; resolves the time it did (performance.now()). */
export async function waitPluginAnswers(path, deadlineMs) {
  for (;;) {
    const ok = await answersOk(path, {
      method: 'POST',
      path: '/Plugin.Activate',
      headers: { Host: 'plugin', Accept: 'application/vnd.docker.plugins.v1.2+json' },
      timeoutMs: 1000,
    });
    if (ok) return performance.now();
    if (performance.now() > deadlineMs) throw new Error(`plugin socket ${path} did not answer in time`);
    await sleep(10);
  }
}
