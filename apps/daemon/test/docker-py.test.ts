import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Berthd, describeWith } from './harness.js';

/**
 * docker-py (Debian's `python3-docker`, run with Debian's `/usr/bin/python3`) against berthd, as a
 * Python user writes it: `fixtures/docker_py_client.py` makes the calls and prints what it got back.
 */

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./fixtures/docker_py_client.py', import.meta.url));

function dockerPyMissing(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import docker'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'docker-py is not installed for /usr/bin/python3 (Debian: apt-get install python3-docker)';
  }
}

interface Seen {
  api_version: string;
  created: Record<string, unknown>;
  label_keys_in_order: string[];
  list_by_label: string[];
  list_dangling: string[];
  inspect_tmp: Record<string, unknown>;
  missing_volume: unknown;
  df: { LayersSize: number; Images: unknown[]; Containers: unknown[]; BuildCache: unknown[]; Volumes: Array<{ Name: string; UsageData: unknown }> };
  pruned: unknown;
  after_remove: string[];
  plugins: string[];
  missing_plugin: unknown;
  containers: unknown[];
  images: unknown[];
  networks: unknown[];
  missing_container: unknown;
  run: unknown;
  events: Array<{ Type: string; Action: string; Actor: { ID: string }; time: number; timeNano: number }>;
}

describeWith('docker-py against berthd', dockerPyMissing(), () => {
  let daemon: Berthd;
  let seen: Seen;
  let rawEvents: string;

  beforeAll(async () => {
    daemon = await Berthd.start();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(PYTHON, [SCRIPT, `unix://${daemon.socket}`], { timeout: 60_000, env: { PATH: process.env.PATH } }, (err, out, stderr) =>
        err === null ? resolve(out) : reject(new Error(`docker-py client failed: ${err.message}\n${stderr}`)),
      );
    });
    seen = JSON.parse(stdout) as Seen;
    // The raw stream, to read timeNano digit for digit (JSON.parse rounds beyond 2^53).
    rawEvents = (await daemon.http({ path: `/events?since=0&until=${(Date.now() / 1000).toFixed(3)}` })).body;
  }, 90_000);

  afterAll(async () => {
    await daemon.cleanup();
  });

  it('creates, inspects, lists with filters, prunes and removes volumes', () => {
    expect(seen.api_version).toBe('1.51');
    expect(seen.created).toEqual({
      CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      Driver: 'local',
      Labels: { app: 'shop', tier: 'gold' },
      Mountpoint: `${daemon.dataRoot}/volumes/py-data/_data`,
      Name: 'py-data',
      Options: null,
      Scope: 'local',
    });
    expect(seen.label_keys_in_order).toEqual(['app', 'tier']);
    expect(seen.list_by_label).toEqual(['py-data']);
    expect(seen.list_dangling).toEqual(['py-data', 'py-other', 'py-tmp']);
    expect(seen.inspect_tmp).toMatchObject({ Options: { device: 'tmpfs', o: 'size=1m', type: 'tmpfs' } });
    expect(seen.missing_volume).toEqual({ class: 'NotFound', status: 404, explanation: 'get py-missing: no such volume' });
    expect(seen.pruned).toEqual({ VolumesDeleted: ['py-other'], SpaceReclaimed: 0 });
    expect(seen.after_remove).toEqual(['py-data']);
  });

  it('gets df with every volume’s usage and empty images, containers and build cache', () => {
    expect(seen.df).toMatchObject({ LayersSize: 0, Images: [], Containers: [], BuildCache: [] });
    expect(seen.df.Volumes.map((v) => [v.Name, v.UsageData])).toEqual([
      ['py-data', { Size: 0, RefCount: 0 }],
      ['py-other', { Size: 0, RefCount: 0 }],
      ['py-tmp', { Size: -1, RefCount: 0 }],
    ]);
  });

  it('lists plugins, containers, images and networks as empty; lookups raise NotFound; run raises the 501', () => {
    expect(seen.plugins).toEqual([]);
    expect(seen.missing_plugin).toEqual({ class: 'NotFound', status: 404, explanation: 'plugin "no-such-plugin" not found' });
    expect([seen.containers, seen.images, seen.networks]).toEqual([[], [], []]);
    expect(seen.missing_container).toEqual({ class: 'NotFound', status: 404, explanation: 'No such container: web' });
    expect(seen.run).toEqual({ class: 'APIError', status: 501, explanation: 'berthd manages volumes and plugins only: POST /containers/create is not supported' });
  });

  it('reads the volume events with nanosecond times', () => {
    expect(seen.events.map((e) => `${e.Action} ${e.Actor.ID}`)).toEqual([
      'create py-data',
      'create py-other',
      'create py-tmp',
      'destroy py-other',
      'prune ',
      'destroy py-tmp',
    ]);
    for (const e of seen.events) expect(Math.floor(e.timeNano / 1e9)).toBe(e.time);
    const nanos = [...rawEvents.matchAll(/"timeNano":(\d+)/g)].map((m) => BigInt(m[1] as string));
    expect(nanos.length).toBeGreaterThanOrEqual(6);
    // Not milliseconds padded with zeros.
    expect(nanos.filter((t) => t % 1_000_000n !== 0n).length).toBeGreaterThan(nanos.length / 2);
  });
});
