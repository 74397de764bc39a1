import { describe, expect, it } from 'vitest';
import { initEmptySettings, parsePluginConfig, type PluginObject } from '@berth/plugin-store';
import { buildSpec, DEFAULT_CAPABILITIES } from './spec.js';

const paths = { rootfs: '/p/id/rootfs', execDir: '/run/x/id', propagatedMount: '/p/id/propagated-mount' };

function objectOf(config: object, settings?: (o: PluginObject) => void): PluginObject {
  const parsed = parsePluginConfig(JSON.stringify(config));
  const o: PluginObject = { Config: parsed, Enabled: false, Id: 'id', Name: 'x:latest', Settings: initEmptySettings(parsed) };
  settings?.(o);
  return o;
}

describe('buildSpec', () => {
  it("builds moby's InitSpec for a plain plugin", async () => {
    const spec = await buildSpec(
      objectOf({ Entrypoint: ['/bin/plugin', '-v'], Args: { Value: ['--x'] }, Env: [{ Name: 'DEBUG', Value: '0' }] }),
      paths,
    );
    expect(spec.root).toEqual({ path: '/p/id/rootfs', readonly: false });
    expect(spec.process.args).toEqual(['/bin/plugin', '-v', '--x']);
    expect(spec.process.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'DEBUG=0']);
    expect(spec.process.cwd).toBe('/');
    expect(spec.process.user).toEqual({ uid: 0, gid: 0 });
    expect(spec.process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect(spec.process.capabilities.inheritable).toEqual([]);
    expect(spec.linux.namespaces.map((n) => n.type)).toEqual(['mount', 'network', 'uts', 'pid', 'ipc']);
    expect(spec.mounts.map((m) => m.destination)).toEqual([
      '/proc',
      '/dev',
      '/dev/pts',
      '/sys',
      '/sys/fs/cgroup',
      '/dev/mqueue',
      '/dev/shm',
      '/run/docker/plugins',
    ]);
    expect(spec.mounts.at(-1)).toEqual({ destination: '/run/docker/plugins', type: 'bind', source: '/run/x/id', options: ['rbind', 'rshared'] });
    expect(spec.linux.resources.devices[0]).toEqual({ allow: false, access: 'rwm' });
    expect(spec.linux.rootfsPropagation).toBeUndefined();
  });

  it('applies host modes, mounts, the propagated mount, capabilities, devices and the work dir', async () => {
    const spec = await buildSpec(
      objectOf({
        WorkDir: '/work',
        Network: { Type: 'host' },
        IpcHost: true,
        PidHost: true,
        PropagatedMount: '/data',
        Mounts: [
          { Name: 'shm', Source: '/dev/shm', Destination: '/dev/shm', Type: 'bind', Options: ['rbind'] },
          { Name: 'state', Source: '/var/lib/x', Destination: '/state', Type: 'bind', Options: ['rbind', 'rw'] },
        ],
        Linux: { Capabilities: ['CAP_SYS_ADMIN'], Devices: [{ Name: 'null', Path: '/dev/null' }] },
      }),
      paths,
    );
    expect(spec.process.cwd).toBe('/work');
    expect(spec.linux.namespaces.map((n) => n.type)).toEqual(['mount', 'uts']);
    expect(spec.linux.rootfsPropagation).toBe('rshared');
    const byDest = (d: string) => spec.mounts.filter((m) => m.destination === d);
    expect(byDest('/data')).toEqual([{ destination: '/data', type: 'bind', source: '/p/id/propagated-mount', options: ['rbind', 'rw', 'rshared'] }]);
    // The user's /dev/shm replaces the default one.
    expect(byDest('/dev/shm')).toEqual([{ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind'] }]);
    expect(byDest('/state')).toHaveLength(1);
    expect(byDest('/etc/hosts')).toEqual([{ destination: '/etc/hosts', type: 'bind', source: '/etc/hosts', options: ['rbind', 'ro'] }]);
    expect(byDest('/etc/resolv.conf')).toHaveLength(1);
    expect(spec.process.capabilities.effective).toContain('CAP_SYS_ADMIN');
    expect(spec.process.capabilities.inheritable).toEqual(['CAP_SYS_ADMIN']);
    expect(spec.linux.devices).toEqual([expect.objectContaining({ path: '/dev/null', type: 'c', major: 1, minor: 3 })]);
    expect(spec.linux.resources.devices.at(-1)).toEqual({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
  });

  it('allows all devices, keeps bridge networking in its own namespace, and refuses mounts without a source', async () => {
    const spec = await buildSpec(objectOf({ Linux: { AllowAllDevices: true }, Network: { Type: 'bridge' } }), paths);
    expect(spec.linux.resources.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(spec.linux.namespaces.map((n) => n.type)).toContain('network');
    expect(spec.mounts.some((m) => m.destination === '/etc/hosts')).toBe(true);
    await expect(buildSpec(objectOf({ Mounts: [{ Name: 'm', Destination: '/m' }] }), paths)).rejects.toThrow(
      'mount source is not specified',
    );
    await expect(
      buildSpec(objectOf({}, (o) => (o.Settings.Devices = [{ Name: 'd', Description: '', Settable: null, Path: '/etc/passwd' }])), paths),
    ).rejects.toThrow('error gathering device information while adding custom device "/etc/passwd"');
  });
});
