import { describe, expect, it } from 'vitest';
import { hasBinary, installPacked, runScript } from './pack.js';

// Each library package must work for someone who installs only it from npm.
describe('packages installed alone with plain npm', () => {
  it('@berth/volume-drivers creates, lists and removes local volumes', async () => {
    const project = await installPacked('volume-drivers');
    const out = await runScript(
      project,
      `
import { LocalDriver, VolumeDriverRegistry } from '@berth/volume-drivers';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
const root = path.join(await mkdtemp(path.join(tmpdir(), 'vd-')), 'volumes');
const registry = new VolumeDriverRegistry({});
registry.register(await LocalDriver.open({ root }));
const driver = await registry.getDriver('local');
const v = await driver.create('data1', undefined);
await stat(path.join(root, 'data1', '_data'));
const names = (await driver.list()).map((x) => x.name);
await driver.remove(v);
let gone = false; await stat(path.join(root, 'data1')).catch(() => { gone = true; });
let err = ''; await driver.create('.bad', undefined).catch((e) => { err = e.kind + ': ' + e.message; });
console.log(JSON.stringify({ names, gone, path: v.cachedPath() === path.join(root, 'data1', '_data'), err }));
`,
    );
    expect(JSON.parse(out)).toEqual({
      names: ['data1'],
      gone: true,
      path: true,
      err: 'invalid-parameter: ".bad" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
    });
  });

  it('@berth/volume-service keeps volumes in its SQLite store across reopen', async () => {
    const project = await installPacked('volume-service');
    const out = await runScript(
      project,
      `
import { VolumesService } from '@berth/volume-service';
import { Filters } from '@berth/filters';
import { mkdtemp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
// A driver of the consumer's own: the service needs only the shape.
const vols = new Map();
const mkVol = (name) => ({ name, driverName: 'mem', cachedPath: () => '/mem/' + name, path: async () => '/mem/' + name,
  mount: async () => '/mem/' + name, unmount: async () => {}, createdAt: async () => undefined, status: () => undefined });
const driver = { name: 'mem', scope: async () => 'local',
  create: async (n) => { vols.set(n, mkVol(n)); return vols.get(n); }, remove: async (v) => { vols.delete(v.name); },
  list: async () => [...vols.values()], get: async (n) => vols.get(n) };
const drivers = { getDriver: async () => driver, createDriver: async () => driver, releaseDriver: async () => driver,
  getDriverList: () => ['mem'], getAllDrivers: async () => [driver] };
const root = await mkdtemp(path.join(tmpdir(), 'vs-'));
let svc = await VolumesService.open({ root, drivers });
await svc.create({ name: 'v1', driver: 'mem', labels: { team: 'a' } });
await svc.mount('v1', 'ref-1');
await svc.close();
svc = await VolumesService.open({ root, drivers });
const v = await svc.get('v1');
let inUse = ''; await svc.remove('v1').catch((e) => { inUse = e.message; });
const listed = (await svc.list(Filters.empty())).volumes.map((x) => x.Name);
await svc.close();
console.log(JSON.stringify({ labels: v.Labels, inUse, listed, db: existsSync(path.join(root, 'volumes', 'metadata.sqlite')) }));
`,
    );
    expect(JSON.parse(out)).toEqual({
      labels: { team: 'a' },
      inUse: 'remove v1: volume is in use - [ref-1]',
      listed: ['v1'],
      db: true,
    });
  });

  it('@berth/plugin-store finds and calls a legacy plugin on a unix socket', async () => {
    const project = await installPacked('plugin-store');
    const out = await runScript(
      project,
      `
import { PluginStore } from '@berth/plugin-store';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
const dir = await mkdtemp(path.join(tmpdir(), 'ps-'));
const calls = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    calls.push(req.url);
    res.setHeader('Content-Type', 'application/vnd.docker.plugins.v1.2+json');
    if (req.url === '/Plugin.Activate') return res.end(JSON.stringify({ Implements: ['VolumeDriver'] }));
    res.end(JSON.stringify({ Volumes: [{ Name: 'remote1', Mountpoint: '/x' }] }));
  });
});
await new Promise((r) => server.listen(path.join(dir, 'fake.sock'), r));
const store = new PluginStore({ legacy: { dirs: { socketDirs: [dir], specDirs: [] }, discoveryGraceMs: 0 } });
const plugin = await store.get('fake', 'VolumeDriver', 'lookup');
const answer = await plugin.client().call('VolumeDriver.List', {}, { timeoutMs: 5000 });
let missing = ''; await store.get('nosuch', 'VolumeDriver', 'lookup').catch((e) => { missing = e.kind + ': ' + e.message; });
store.close(); server.close();
console.log(JSON.stringify({ name: plugin.name, v1: plugin.isV1(), answer, calls, missing }));
`,
    );
    expect(JSON.parse(out)).toEqual({
      name: 'fake',
      v1: true,
      answer: { Volumes: [{ Name: 'remote1', Mountpoint: '/x' }] },
      calls: ['/Plugin.Activate', '/VolumeDriver.List'],
      missing: 'not-found: plugin "nosuch" not found',
    });
  });

  it('@berth/plugin-executor-containerd starts a private containerd and talks to it', async () => {
    if (!(await hasBinary('containerd'))) {
      if (process.env.CI) throw new Error('containerd is not installed (scripts/test-all.sh installs it)');
      console.log('skipping: containerd is not installed');
      return;
    }
    const project = await installPacked('plugin-executor-containerd');
    const out = await runScript(
      project,
      `
import { startContainerd, ContainerdClient } from '@berth/plugin-executor-containerd';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
const dir = await mkdtemp(path.join(tmpdir(), 'ctd-'));
const ctd = await startContainerd({ dir });
const client = new ContainerdClient({ address: ctd.address });
const version = await client.version();
let missing = ''; await client.getContainer('nosuch').catch((e) => { missing = e.kind; });
client.close(); await ctd.stop();
console.log(JSON.stringify({ hasVersion: typeof version.version === 'string' && version.version.length > 0, missing }));
`,
    );
    expect(JSON.parse(out)).toEqual({ hasVersion: true, missing: 'not-found' });
  });

  it('@berth/plugin-manager creates, lists and removes a plugin from a tar context', async () => {
    const project = await installPacked('plugin-manager', 'plugin-store');
    const out = await runScript(
      project,
      `
import { PluginManager } from '@berth/plugin-manager';
import { Plugin, PluginStore } from '@berth/plugin-store';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
const dir = await mkdtemp(path.join(tmpdir(), 'pm-'));
const ctx = path.join(dir, 'ctx');
await mkdir(path.join(ctx, 'rootfs', 'bin'), { recursive: true });
await writeFile(path.join(ctx, 'rootfs', 'bin', 'plugin'), '#!/bin/sh\\n');
await writeFile(path.join(ctx, 'config.json'), JSON.stringify({
  description: 'a test plugin', entrypoint: ['/bin/plugin'],
  interface: { socket: 'p.sock', types: ['docker.volumedriver/1.0'] },
  env: [{ name: 'DEBUG', settable: ['value'], value: '0' }],
}));
const tar = execFileSync('tar', ['-C', ctx, '-cf', '-', 'config.json', 'rootfs']);
const store = new PluginStore({ legacy: false });
const executor = { create: async () => {}, restore: async () => false, signal: async () => {} };
const manager = await PluginManager.open({
  root: path.join(dir, 'plugins'), execRoot: path.join(dir, 'exec'), store,
  createPlugin: (init) => new Plugin(init), createExecutor: () => executor,
});
await manager.createFromContext('tester', Readable.from([tar]));
await manager.set('tester', ['DEBUG=1']);
const listed = manager.list().map((p) => [p.Name, p.Enabled, p.Settings.Env]);
let bad = ''; await manager.createFromContext('tester', Readable.from([tar])).catch((e) => { bad = e.message; });
await manager.remove('tester');
const left = (await readdir(path.join(dir, 'plugins'))).filter((f) => /^[0-9a-f]{64}/.test(f));
await manager.shutdown();
console.log(JSON.stringify({ listed, bad, left }));
`,
    );
    expect(JSON.parse(out)).toEqual({
      listed: [['tester:latest', false, ['DEBUG=1']]],
      bad: 'plugin tester:latest already exists',
      left: [],
    });
  });

  it('@berth/volume-cluster-etcd keeps a volume record in a real etcd', async () => {
    if (!(await hasBinary('etcd'))) {
      if (process.env.CI) throw new Error('etcd is not installed (scripts/test-all.sh installs etcd-server)');
      console.log('skipping: etcd is not installed');
      return;
    }
    const project = await installPacked('volume-cluster-etcd');
    const out = await runScript(
      project,
      `
import { EtcdClusterStore } from '@berth/volume-cluster-etcd';
import { EtcdTestCluster } from '@berth/volume-cluster-etcd/testing';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
const etcd = await EtcdTestCluster.start({ size: 1 });
const dir = await mkdtemp(path.join(tmpdir(), 'vce-'));
const open = (host) => EtcdClusterStore.open({ endpoints: etcd.endpoints, host, stateDir: path.join(dir, host) });
const a = await open('a');
const b = await open('b');
const first = await a.create({ name: 'v1', driver: 'nfs', labels: { team: 'a' }, options: null });
await a.addRef('v1', 'job-1');
for (let i = 0; i < 100 && b.lookup('v1')?.refs.length !== 1; i++) await new Promise((r) => setTimeout(r, 50));
const seen = b.lookup('v1');
const claim = await b.claimRemoval('v1');
await a.close(); await b.close(); await etcd.close();
console.log(JSON.stringify({ created: first.created, labels: seen?.labels, refs: seen?.refs, claim, warning: a.warning() === undefined }));
`,
    );
    expect(JSON.parse(out)).toEqual({ created: true, labels: { team: 'a' }, refs: ['a/job-1'], claim: { inUse: ['a/job-1'] }, warning: true });
  });
});

