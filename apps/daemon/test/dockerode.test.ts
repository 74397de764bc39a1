import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Berthd } from './harness.js';

/** dockerode (npm) against berthd, as a Node user drives it. */

interface DockerodeError extends Error {
  statusCode: number;
  json: { message: string } | null;
}

async function failure(promise: Promise<unknown>): Promise<{ statusCode: number; message: string | undefined }> {
  try {
    await promise;
  } catch (err) {
    const e = err as DockerodeError;
    return { statusCode: e.statusCode, message: e.json?.message };
  }
  throw new Error('expected the call to fail');
}

describe('dockerode against berthd', () => {
  let daemon: Berthd;
  let docker: Docker;

  beforeAll(async () => {
    daemon = await Berthd.start();
    docker = new Docker({ socketPath: daemon.socket });
  });

  afterAll(async () => {
    await daemon.cleanup();
  });

  it('creates, lists with filters, inspects, prunes and removes volumes', async () => {
    // dockerode answers a create with a handle on the volume; its inspect is what the daemon said.
    const handle = await docker.createVolume({ Name: 'node-data', Labels: { tier: 'gold', app: 'shop' } });
    const created = (await (handle as unknown as Docker.Volume).inspect()) as Docker.VolumeInspectInfo & { Labels: Record<string, string> };
    expect(created).toMatchObject({ Name: 'node-data', Driver: 'local', Labels: { app: 'shop', tier: 'gold' }, Options: null, Scope: 'local' });
    expect(Object.keys(created.Labels)).toEqual(['app', 'tier']);
    await docker.createVolume({ Name: 'node-other', Labels: { app: 'other' } });
    await docker.createVolume({ Name: 'node-tmp', DriverOpts: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } });

    const byLabel = await docker.listVolumes({ filters: { label: ['app=shop'] } });
    expect(byLabel.Volumes.map((v) => v.Name)).toEqual(['node-data']);
    expect(byLabel.Warnings).toBeNull();
    expect((await docker.listVolumes({ filters: { dangling: ['true'] } })).Volumes.map((v) => v.Name)).toEqual(['node-data', 'node-other', 'node-tmp']);
    expect(await failure(docker.listVolumes({ filters: { colour: ['red'] } }))).toEqual({ statusCode: 400, message: "invalid filter 'colour'" });

    expect(await docker.getVolume('node-tmp').inspect()).toMatchObject({ Name: 'node-tmp', Options: { device: 'tmpfs', o: 'size=1m', type: 'tmpfs' } });
    expect(await failure(docker.getVolume('node-missing').inspect())).toEqual({ statusCode: 404, message: 'get node-missing: no such volume' });

    expect(await docker.pruneVolumes({ filters: { label: ['app=other'], all: ['true'] } })).toEqual({ VolumesDeleted: ['node-other'], SpaceReclaimed: 0 });
    await docker.getVolume('node-tmp').remove();
    expect((await docker.listVolumes()).Volumes.map((v) => v.Name)).toEqual(['node-data']);
  });

  it('lists and inspects plugins', async () => {
    expect(await docker.listPlugins()).toEqual([]);
    expect(await failure(docker.getPlugin('no-such-plugin', undefined).inspect())).toEqual({ statusCode: 404, message: 'plugin "no-such-plugin" not found' });
  });

  it('gets df with the volumes’ usage and nothing else', async () => {
    const df = (await docker.df()) as { LayersSize: number; Images: unknown[]; Containers: unknown[]; BuildCache: unknown[]; Volumes: Array<{ Name: string; UsageData: unknown }> };
    expect(df).toMatchObject({ LayersSize: 0, Images: [], Containers: [], BuildCache: [] });
    expect(df.Volumes.map((v) => [v.Name, v.UsageData])).toEqual([['node-data', { Size: 0, RefCount: 0 }]]);
  });

  it('reads events as a stream, with nanosecond times', async () => {
    const since = Math.floor(Date.now() / 1000) - 60;
    await docker.createVolume({ Name: 'node-evt' });
    await docker.getVolume('node-evt').remove();
    const stream = (await docker.getEvents({ since, until: Date.now() / 1000 + 0.2, filters: { type: ['volume'], volume: ['node-evt'] } })) as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    const lines = text.trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { Action: string }).Action)).toEqual(['create', 'destroy']);
    for (const line of lines) {
      const nanos = /"timeNano":(\d+)/.exec(line)?.[1] as string;
      expect(nanos).toMatch(/^\d{19}$/);
      expect(BigInt(nanos) / 1_000_000_000n).toBe(BigInt((JSON.parse(line) as { time: number }).time));
    }
    expect(lines.some((l) => !/"timeNano":\d+000000\}/.test(l))).toBe(true);
  });

  it('lists containers, images and networks as empty, and refuses to create a container with berth’s 501', async () => {
    expect(await docker.listContainers({ all: true })).toEqual([]);
    expect(await docker.listImages()).toEqual([]);
    expect(await docker.listNetworks()).toEqual([]);
    expect(await failure(docker.getContainer('web').inspect())).toEqual({ statusCode: 404, message: 'No such container: web' });
    expect(await failure(docker.getImage('busybox').inspect())).toEqual({ statusCode: 404, message: 'No such image: busybox:latest' });
    expect(await failure(docker.createContainer({ Image: 'busybox', Cmd: ['true'] }))).toEqual({
      statusCode: 501,
      message: 'berthd manages volumes and plugins only: POST /containers/create is not supported',
    });
  });
});
