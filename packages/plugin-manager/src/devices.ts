import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { system } from '@berth/errdefs';

/** A device node as the OCI spec lists it (`linux.devices[]`). */
export interface OciDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** A device cgroup rule (`linux.resources.devices[]`). */
export interface OciDeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access: string;
}

const S_IFMT = 0o170000n;

/**
 * moby's `oci.DevicesFromPath(path, path, "rwm")`: a device node, or every device node under a
 * directory, with an `rwm` cgroup rule each. A symlink is followed only when it leads into `/dev`
 * (`/dev/disk/by-uuid/…`), so a setting cannot point the plugin at an arbitrary host file.
 */
export async function devicesFromPath(hostPath: string): Promise<{ devices: OciDevice[]; rules: OciDeviceRule[] }> {
  const resolved = await resolveDevicePath(hostPath);
  const devices: OciDevice[] = [];
  const single = await deviceAt(resolved);
  if (single !== undefined) {
    devices.push({ ...single, path: hostPath });
  } else if ((await stat(resolved).catch(() => undefined))?.isDirectory() === true) {
    for (const file of await walk(resolved)) {
      const device = await deviceAt(await resolveDevicePath(file));
      if (device !== undefined) devices.push({ ...device, path: hostPath + file.slice(resolved.length) });
    }
  }
  if (devices.length === 0) {
    throw system(`error gathering device information while adding custom device "${hostPath}": not a device node`);
  }
  return { devices, rules: devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: 'rwm' })) };
}

async function resolveDevicePath(p: string): Promise<string> {
  if (!path.isAbsolute(p)) return path.normalize(p);
  const clean = path.normalize(p);
  const info = await lstat(clean).catch(() => undefined);
  if (info?.isSymbolicLink() !== true) return clean;
  const target = await realpath(clean).catch(() => undefined);
  return target !== undefined && (target === '/dev' || target.startsWith('/dev/')) ? target : clean;
}

async function deviceAt(p: string): Promise<Omit<OciDevice, 'path'> | undefined> {
  const info = await lstat(p, { bigint: true }).catch(() => undefined);
  if (info === undefined || !(info.isCharacterDevice() || info.isBlockDevice())) return undefined;
  const rdev = info.rdev;
  // glibc's major()/minor() for Linux's 64-bit dev_t.
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return {
    type: info.isCharacterDevice() ? 'c' : 'b',
    major,
    minor,
    fileMode: Number(info.mode & ~S_IFMT),
    uid: Number(info.uid),
    gid: Number(info.gid),
  };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else out.push(full);
  }
  return out;
}
