import { lstat, mkdir, open, rm, symlink } from 'node:fs/promises';
import path from 'node:path';

/** What moby's `initlayer.Setup` puts into a rootfs: mount points and files runc binds over. */
const INIT_LAYER: ReadonlyArray<readonly [string, 'dir' | 'file' | { symlink: string }]> = [
  ['/dev/pts', 'dir'],
  ['/dev/shm', 'dir'],
  ['/proc', 'dir'],
  ['/sys', 'dir'],
  ['/.dockerenv', 'file'],
  ['/etc/resolv.conf', 'file'],
  ['/etc/hosts', 'file'],
  ['/etc/hostname', 'file'],
  ['/dev/console', 'file'],
  ['/etc/mtab', { symlink: '/proc/mounts' }],
];

/**
 * Prepares a plugin rootfs before each start (moby's `initlayer.Setup`). The rootfs comes from the
 * user, and this runs as root on the host, so no symlink in it is ever followed: a symlink (or a
 * file) where a directory is needed is removed first, as moby unlinks every path component.
 */
export async function setupInitLayer(rootfs: string): Promise<void> {
  for (const [target, kind] of INIT_LAYER) {
    const parts = target.split('/').filter(Boolean);
    let current = rootfs;
    for (const part of parts.slice(0, -1)) {
      current = path.join(current, part);
      await ensureRealDir(current);
    }
    const full = path.join(rootfs, ...parts);
    const info = await lstat(full).catch(() => undefined);
    if (info !== undefined) {
      const fits =
        (kind === 'dir' && info.isDirectory()) ||
        (kind === 'file' && !info.isDirectory() && !info.isSymbolicLink()) ||
        (typeof kind === 'object' && info.isSymbolicLink());
      if (fits) continue;
      await rm(full, { recursive: true, force: true });
    }
    if (kind === 'dir') await mkdir(full, { mode: 0o755 });
    else if (kind === 'file') await (await open(full, 'wx', 0o755)).close();
    else await symlink(kind.symlink, full);
  }
}

async function ensureRealDir(dir: string): Promise<void> {
  const info = await lstat(dir).catch(() => undefined);
  if (info?.isDirectory() === true) return;
  if (info !== undefined) await rm(dir, { force: true });
  await mkdir(dir, { mode: 0o755 });
}
