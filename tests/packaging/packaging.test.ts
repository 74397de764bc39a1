import { describe, expect, it } from 'vitest';
import { installPacked, runScript } from './pack.js';

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
});
