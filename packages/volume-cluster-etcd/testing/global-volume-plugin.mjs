#!/usr/bin/env node
// A legacy (v1) volume plugin whose volumes are the directories of a shared directory, and whose
// `Capabilities` answer `Scope: global`: what a plugin on NFS or a cluster file system looks like
// to berth. One process serves one or more drivers:
//
//   node global-volume-plugin.mjs <socket-dir> <driver>=<shared-dir> [<driver>=<shared-dir> ...]
//
// Each driver listens on <socket-dir>/<driver>.sock. Mounts are counted per process (per host): a
// volume mounted through this process cannot be removed through it.
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';

const [socketDir, ...drivers] = process.argv.slice(2);
if (socketDir === undefined || drivers.length === 0) {
  process.stderr.write('usage: global-volume-plugin.mjs <socket-dir> <driver>=<shared-dir> ...\n');
  process.exit(2);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

async function exists(path) {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function serve(root) {
  const mounts = new Map();
  return async (method, body) => {
    const name = String(body.Name ?? '');
    if (method.startsWith('VolumeDriver.') && !['VolumeDriver.List', 'VolumeDriver.Capabilities'].includes(method) && !NAME.test(name)) {
      return { Err: `invalid volume name ${JSON.stringify(name)}` };
    }
    const mountpoint = join(root, name);
    switch (method) {
      case 'Plugin.Activate':
        return { Implements: ['VolumeDriver'] };
      case 'VolumeDriver.Capabilities':
        return { Capabilities: { Scope: 'global' } };
      case 'VolumeDriver.Create':
        await mkdir(mountpoint, { recursive: true });
        return {};
      case 'VolumeDriver.Get':
        return (await exists(mountpoint)) ? { Volume: { Name: name, Mountpoint: mountpoint } } : { Err: 'no such volume' };
      case 'VolumeDriver.List': {
        const entries = await readdir(root, { withFileTypes: true });
        return { Volumes: entries.filter((e) => e.isDirectory() && NAME.test(e.name)).map((e) => ({ Name: e.name, Mountpoint: join(root, e.name) })) };
      }
      case 'VolumeDriver.Path':
        return (await exists(mountpoint)) ? { Mountpoint: mountpoint } : { Err: 'no such volume' };
      case 'VolumeDriver.Mount': {
        if (!(await exists(mountpoint))) return { Err: 'no such volume' };
        const ids = mounts.get(name) ?? new Set();
        ids.add(String(body.ID));
        mounts.set(name, ids);
        return { Mountpoint: mountpoint };
      }
      case 'VolumeDriver.Unmount':
        mounts.get(name)?.delete(String(body.ID));
        return {};
      case 'VolumeDriver.Remove':
        if ((mounts.get(name)?.size ?? 0) > 0) return { Err: 'volume is mounted on this host' };
        await rm(mountpoint, { recursive: true, force: true });
        return {};
      default:
        return { Err: `unknown method ${method}` };
    }
  };
}

await mkdir(socketDir, { recursive: true });
const servers = [];
for (const spec of drivers) {
  const eq = spec.indexOf('=');
  const driver = spec.slice(0, eq);
  const root = spec.slice(eq + 1);
  await mkdir(root, { recursive: true });
  const answer = serve(root);
  const socket = join(socketDir, `${driver}.sock`);
  await rm(socket, { force: true });
  const server = createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    let reply;
    try {
      reply = await answer((req.url ?? '').slice(1), text.trim() === '' ? {} : JSON.parse(text));
    } catch (err) {
      reply = { Err: err instanceof Error ? err.message : String(err) };
    }
    res.setHeader('Content-Type', 'application/vnd.docker.plugins.v1.2+json');
    res.end(JSON.stringify(reply));
  });
  await new Promise((resolve) => server.listen(socket, resolve));
  servers.push({ server, socket });
}
process.stdout.write('ready\n');

const stop = async () => {
  for (const { server, socket } of servers) {
    server.closeAllConnections();
    server.close();
    await rm(socket, { force: true });
  }
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
