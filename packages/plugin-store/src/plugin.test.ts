import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakePlugin, tempDir } from '../test/fake-plugin.js';
import { managed } from '../test/managed-plugin.js';

describe('managed Plugin', () => {
  it('rejects a capability it lacks (TestFilterByCapNeg)', () => {
    expect(() => managed().filterByCap('foobar')).toThrow('plugin does not provide "foobar" capability');
    expect(() => managed({ types: ['other.volumedriver/1.0'] }).filterByCap('volumedriver')).toThrow();
  });

  it('accepts a capability it has, whatever its case or version (TestFilterByCapPos)', () => {
    const p = managed({ types: ['docker.volumedriver/1.0', 'docker.networkdriver/2.0'] });
    expect(p.filterByCap('volumedriver')).toBe(p);
    expect(p.filterByCap('VolumeDriver')).toBe(p);
    expect(p.filterByCap('NetworkDriver')).toBe(p);
    expect(p.types()).toEqual([
      { prefix: 'docker', capability: 'volumedriver', version: '1.0' },
      { prefix: 'docker', capability: 'networkdriver', version: '2.0' },
    ]);
  });

  it('scopes reported paths into the rootfs or the propagated mount, never outside', () => {
    const rootfs = '/var/lib/berth/plugins/aaaa/rootfs';
    const propagated = '/var/lib/berth/plugins/aaaa/propagated-mount';
    const p = managed({ propagatedMount: '/data' });
    expect(p.scopedPath('/data/vol1')).toBe(`${propagated}/vol1`);
    expect(p.scopedPath('/data')).toBe(propagated);
    expect(p.scopedPath('/mnt/vol1')).toBe(`${rootfs}/mnt/vol1`);
    expect(p.scopedPath('/database/x')).toBe(`${rootfs}/database/x`);
    expect(p.scopedPath('/data/../../../etc')).toBe(`${rootfs}/etc`);
    expect(p.scopedPath('/../../etc/shadow')).toBe(`${rootfs}/etc/shadow`);
    expect(p.scopedPath('relative/x')).toBe(`${rootfs}/relative/x`);
    expect(managed().scopedPath('/data/x')).toBe(`${rootfs}/data/x`);
  });

  it('counts references, knows its generation and protocol', () => {
    const p = managed();
    p.acquire();
    p.acquire();
    p.release();
    p.addRefCount(0);
    expect(p.refCount).toBe(1);
    expect(p.isV1()).toBe(false);
    expect(p.protocol()).toBe('moby.plugins.http/v1');
    expect(p.id).toBe('a'.repeat(64));
    expect(JSON.parse(JSON.stringify(p))).toMatchObject({ Name: 'test:latest', Enabled: false });
  });

  it('builds a client for its socket only while running', async () => {
    const p = managed();
    expect(() => p.client()).toThrow('plugin test:latest is not running');
    const dir = await tempDir();
    const socket = path.join(dir, 'plugins.sock');
    const fake = await startFakePlugin(socket, { routes: { '/VolumeDriver.List': { Volumes: [] } } });
    p.setSocketPath(socket);
    p.setTimeout(5_000);
    expect(p.timeoutMs).toBe(5_000);
    const client = p.client();
    expect(client).toBe(p.client());
    expect(await client.call('VolumeDriver.List', {})).toEqual({ Volumes: [] });
    expect(fake.received[0]?.headers.host).toBe('plugin.moby.localhost');
    p.setSocketPath(undefined);
    expect(() => p.client()).toThrow('is not running');
  });
});
