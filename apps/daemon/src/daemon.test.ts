import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../test/http-client.js';
import type { DaemonConfig } from './config.js';
import { createDaemon, type DaemonStep } from './daemon.js';

let dir: string;
let config: DaemonConfig;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-d-'));
  config = {
    dataRoot: join(dir, 'data'),
    execRoot: join(dir, 'exec'),
    hosts: [join(dir, 'exec', 'berth.sock')],
    group: undefined,
    pidfile: join(dir, 'exec', 'berthd.pid'),
    logLevel: 'info',
    logFormat: 'text',
    configFile: undefined,
    containerd: undefined,
    containerdPluginsNamespace: 'plugins.moby',
    liveRestore: false,
    pluginDirs: { socketDirs: [join(dir, 'plugins')], specDirs: [] },
    insecureRegistries: ['127.0.0.0/8', '::1/128'],
    metricsAddress: undefined,
    cluster: undefined,
  };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('createDaemon', () => {
  it("starts in moby's NewDaemon order and stops in reverse", async () => {
    const steps: DaemonStep[] = [];
    const daemon = await createDaemon(config, { trace: (s) => steps.push(s) });
    expect(steps).toEqual([
      'lock-data-root',
      'create-roots',
      'pidfile',
      'adopt-docker-volumes',
      'plugin-store',
      'containerd',
      'plugin-manager',
      'volume-drivers',
      'volumes',
      'events',
      'serve-api',
    ]);
    expect(daemon.sockets).toEqual(config.hosts);
    expect((await stat(config.dataRoot)).mode & 0o777).toBe(0o711);
    expect(await readFile(config.pidfile, 'utf8')).toBe(String(process.pid));

    steps.length = 0;
    await daemon.close();
    await daemon.close();
    expect(steps).toEqual([
      'stop-api',
      'close-volumes',
      'shutdown-plugins',
      'close-containerd',
      'close-events',
      'close-plugin-store',
      'remove-pidfile',
      'unlock-data-root',
    ]);
    await expect(stat(config.pidfile)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(config.hosts[0] as string)).rejects.toMatchObject({ code: 'ENOENT' });
    // The plugin layout exists; containerd was never needed, so never started.
    expect((await readdir(join(config.dataRoot, 'plugins'))).sort()).toEqual(['tmp']);
    await expect(stat(join(config.execRoot, 'containerd'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('opens the cluster store between the volume drivers and the volumes, and starts with etcd out of reach', async () => {
    const port = await closedPort();
    const steps: DaemonStep[] = [];
    const daemon = await createDaemon(
      {
        ...config,
        cluster: {
          store: `etcd://127.0.0.1:${port}`,
          endpoints: [`http://127.0.0.1:${port}`],
          prefix: undefined,
          host: 'h1',
          tls: undefined,
          leaseTtlSeconds: undefined,
          commandTimeoutMs: 300,
        },
      },
      { trace: (s) => steps.push(s) },
    );
    expect(steps.slice(steps.indexOf('volume-drivers'), steps.indexOf('volumes') + 1)).toEqual(['volume-drivers', 'cluster-store', 'volumes']);
    const socket = config.hosts[0] as string;
    const info = (await httpRequest(socket, { path: '/info' })).json as { Name: string; ClusterStore: string; Warnings: string[] };
    expect(info.Name).toBe('h1');
    expect(info.ClusterStore).toBe(`etcd://127.0.0.1:${port}`);
    expect(info.Warnings).toEqual([expect.stringMatching(new RegExp(`^WARNING: cluster store etcd://127\\.0\\.0\\.1:${port}: `))]);
    // Local volumes work while etcd cannot be reached.
    expect((await httpRequest(socket, { method: 'POST', path: '/volumes/create', body: { Name: 'local-1' } })).status).toBe(201);
    steps.length = 0;
    await daemon.close();
    expect(steps.slice(0, 4)).toEqual(['stop-api', 'close-volumes', 'close-cluster-store', 'shutdown-plugins']);
  });

  it('serves volumes and events over the socket', async () => {
    const daemon = await createDaemon(config);
    try {
      const socket = daemon.sockets[0] as string;
      expect((await httpRequest(socket, { method: 'POST', path: '/volumes/create', body: { Name: 'v1' } })).status).toBe(201);
      const info = (await httpRequest(socket, { path: '/info' })).json as { Plugins: { Volume: string[] }; DockerRootDir: string };
      expect(info.Plugins.Volume).toEqual(['local']);
      expect(info.DockerRootDir).toBe(config.dataRoot);
      const events = await httpRequest(socket, { path: `/events?since=0&until=${Date.now() / 1000 + 0.001}` });
      expect(events.body).toContain('"Action":"create","Actor":{"ID":"v1","Attributes":{"driver":"local"}}');
    } finally {
      await daemon.close();
    }
  });

  it('serves metrics from right after the adoption step until right after the API, and fails the start on an address in use', async () => {
    const steps: DaemonStep[] = [];
    const daemon = await createDaemon({ ...config, metricsAddress: { host: '127.0.0.1', port: 0 } }, { trace: (s) => steps.push(s) });
    const url = daemon.metricsUrl as string;
    try {
      expect(steps.slice(0, 6)).toEqual(['lock-data-root', 'create-roots', 'pidfile', 'adopt-docker-volumes', 'metrics', 'plugin-store']);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      await httpRequest(daemon.sockets[0] as string, { method: 'POST', path: '/volumes/create', body: { Name: 'v1' } });
      const text = await (await fetch(url)).text();
      expect(text).toContain('berth_api_request_duration_seconds_count{method="POST",route="/volumes/create",status="201"} 1');
      expect(text).toContain('berth_volumes{driver="local"} 1');
      const port = Number(new URL(url).port);
      // Another data-root: this one is locked by the daemon above.
      const other = { ...config, dataRoot: join(dir, 'other-data'), execRoot: join(dir, 'other-exec') };
      await expect(createDaemon({ ...other, pidfile: join(dir, 'other.pid'), hosts: [join(dir, 'other.sock')], metricsAddress: { host: '127.0.0.1', port } })).rejects.toThrow(
        /^failed to start daemon: listen EADDRINUSE/,
      );
    } finally {
      steps.length = 0;
      await daemon.close();
    }
    expect(steps.slice(0, 2)).toEqual(['stop-api', 'stop-metrics']);
    await expect(fetch(url)).rejects.toThrow();
  });

  it('refuses to start while another live process holds the pidfile', async () => {
    await mkdir(config.execRoot, { recursive: true });
    await writeFile(config.pidfile, String(process.ppid));
    const steps: DaemonStep[] = [];
    await expect(createDaemon(config, { trace: (s) => steps.push(s) })).rejects.toThrow(
      `failed to start daemon, ensure berthd is not running or delete ${config.pidfile}: process with PID ${process.ppid} is still running`,
    );
    expect(steps).toEqual(['lock-data-root', 'create-roots', 'pidfile', 'unlock-data-root']);
    expect(await readFile(config.pidfile, 'utf8')).toBe(String(process.ppid));
  });

  it('undoes the steps already taken when a later one fails', async () => {
    const squatter = createServer();
    await mkdir(config.execRoot, { recursive: true });
    await new Promise<void>((resolve) => squatter.listen(config.hosts[0], resolve));
    try {
      const steps: DaemonStep[] = [];
      await expect(createDaemon(config, { trace: (s) => steps.push(s) })).rejects.toThrow(`failed to start daemon: another daemon is already listening on ${config.hosts[0]}`);
      expect(steps).toEqual([
        'lock-data-root',
        'create-roots',
        'pidfile',
        'adopt-docker-volumes',
        'plugin-store',
        'containerd',
        'plugin-manager',
        'volume-drivers',
        'volumes',
        'events',
        'serve-api',
        'close-volumes',
        'shutdown-plugins',
        'close-containerd',
        'close-events',
        'close-plugin-store',
        'remove-pidfile',
        'unlock-data-root',
      ]);
      await expect(stat(config.pidfile)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });
});

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
