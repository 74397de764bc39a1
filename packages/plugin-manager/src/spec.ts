import { system } from '@berth/errdefs';
import { devicesFromPath, type OciDevice, type OciDeviceRule } from './devices.js';
import type { PluginObject } from '@berth/plugin-store';

// The OCI runtime spec of a managed plugin, built like moby's `v2.Plugin.InitSpec` on top of
// `oci.DefaultSpec()`.

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[] };
  };
  root: { path: string; readonly: boolean };
  mounts: OciMount[];
  linux: {
    namespaces: Array<{ type: string }>;
    devices: OciDevice[];
    resources: { devices: OciDeviceRule[] };
    maskedPaths: string[];
    readonlyPaths: string[];
    rootfsPropagation?: string;
  };
}

/** Where a plugin finds its exec dir (and puts its socket): `/run/docker/plugins`. */
export const PLUGIN_RUNTIME_DESTINATION = '/run/docker/plugins';
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export interface SpecPaths {
  /** `<root>/<id>/rootfs`. */
  rootfs: string;
  /** `<exec-root>/<id>`, bound at `/run/docker/plugins`; the plugin's socket appears there. */
  execDir: string;
  /** `<root>/<id>/propagated-mount`, bound at `Config.PropagatedMount` when set. */
  propagatedMount: string;
}

function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777'] },
  ];
}

/** The device cgroup of `oci.DefaultSpec()`: deny all, then null, zero, full, random, urandom, tty, console, ptmx. */
function defaultDeviceRules(): OciDeviceRule[] {
  const allow = (major: number, minor: number): OciDeviceRule => ({ allow: true, type: 'c', major, minor, access: 'rwm' });
  return [
    { allow: false, access: 'rwm' },
    allow(1, 5),
    allow(1, 3),
    allow(1, 9),
    allow(1, 8),
    allow(5, 0),
    allow(5, 1),
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
  ];
}

const MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/sys/devices/virtual/powercap',
  '/sys/firmware',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * The spec moby's `InitSpec` builds from a plugin's config and settings:
 * - root = the rootfs, writable; args = `Entrypoint` + `Settings.Args`; env = `PATH` + `Settings.Env`;
 *   cwd = `WorkDir` or `/`; user root (moby ignores `Config.User`, and so does berth).
 * - mounts: the defaults, `PropagatedMount` (rbind, rshared, with rshared rootfs propagation),
 *   `Config.Mounts`, the exec dir at `/run/docker/plugins`, and for any `Network.Type` the host's
 *   `/etc/hosts` and `/etc/resolv.conf` read-only. Default `/dev/…` mounts that a user mount
 *   replaces are dropped. A mount without a source is `mount source is not specified`.
 * - namespaces: mount, network, uts, pid, ipc; `Network.Type` `host`, `PidHost` and `IpcHost`
 *   drop theirs.
 * - capabilities: the default set plus `Linux.Capabilities`; devices from `Settings.Devices`
 *   (directories expanded), `AllowAllDevices` allowing every device.
 */
export async function buildSpec(object: PluginObject, paths: SpecPaths): Promise<OciSpec> {
  const { Config: config, Settings: settings } = object;
  const namespaces = ['mount', 'network', 'uts', 'pid', 'ipc'];
  const drop = (type: string): void => {
    const at = namespaces.indexOf(type);
    if (at >= 0) namespaces.splice(at, 1);
  };

  // Default `/dev/…` mounts that a user mount replaces are left out (moby's loop meant to do this).
  const userMounts = new Set((settings.Mounts ?? []).map((m) => m.Destination));
  const mounts = defaultMounts().filter((m) => !(m.destination.startsWith('/dev/') && userMounts.has(m.destination)));
  let rootfsPropagation: string | undefined;
  if (config.PropagatedMount !== '') {
    mounts.push({
      destination: config.PropagatedMount,
      type: 'bind',
      source: paths.propagatedMount,
      options: ['rbind', 'rw', 'rshared'],
    });
    rootfsPropagation = 'rshared';
  }

  const declared = [
    ...(config.Mounts ?? []),
    { Destination: PLUGIN_RUNTIME_DESTINATION, Type: 'bind', Source: paths.execDir, Options: ['rbind', 'rshared'] },
  ];
  if (config.Network.Type !== '') {
    if (config.Network.Type === 'host') drop('network');
    for (const file of ['/etc/hosts', '/etc/resolv.conf']) {
      declared.push({ Destination: file, Type: 'bind', Source: file, Options: ['rbind', 'ro'] });
    }
  }
  if (config.PidHost) drop('pid');
  if (config.IpcHost) drop('ipc');
  for (const m of declared) {
    if (m.Source === null) throw system('mount source is not specified');
    mounts.push({ destination: m.Destination, type: m.Type, source: m.Source, options: [...(m.Options ?? [])] });
  }

  let rules = defaultDeviceRules();
  if (config.Linux.AllowAllDevices) rules = [{ allow: true, access: 'rwm' }];
  const devices: OciDevice[] = [];
  for (const device of settings.Devices ?? []) {
    if (device.Path === null) throw system('plugin config has no device path');
    const found = await devicesFromPath(device.Path);
    devices.push(...found.devices);
    rules.push(...found.rules);
  }

  const extraCaps = config.Linux.Capabilities ?? [];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [...(config.Entrypoint ?? []), ...(settings.Args ?? [])],
      env: [`PATH=${DEFAULT_PATH_ENV}`, ...(settings.Env ?? [])],
      cwd: config.WorkDir === '' ? '/' : config.WorkDir,
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES, ...extraCaps],
        effective: [...DEFAULT_CAPABILITIES, ...extraCaps],
        permitted: [...DEFAULT_CAPABILITIES, ...extraCaps],
        inheritable: [...extraCaps],
      },
    },
    root: { path: paths.rootfs, readonly: false },
    mounts,
    linux: {
      namespaces: namespaces.map((type) => ({ type })),
      devices,
      resources: { devices: rules },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      ...(rootfsPropagation === undefined ? {} : { rootfsPropagation }),
    },
  };
}
