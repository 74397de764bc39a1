import { lstat, mkdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers.js';
import { setupInitLayer } from './init-layer.js';

describe('setupInitLayer', () => {
  it('creates the mount points and files, never writing through a symlink', async () => {
    const dir = await tempDir();
    try {
      const rootfs = path.join(dir, 'rootfs');
      const outside = path.join(dir, 'outside');
      await mkdir(outside);
      await mkdir(rootfs);
      // A hostile rootfs: /etc points out of it, /proc is a file.
      await symlink(outside, path.join(rootfs, 'etc'));
      await writeFile(path.join(rootfs, 'proc'), 'x');
      await setupInitLayer(rootfs);
      for (const d of ['dev/pts', 'dev/shm', 'proc', 'sys', 'etc']) expect((await lstat(path.join(rootfs, d))).isDirectory(), d).toBe(true);
      for (const f of ['.dockerenv', 'etc/resolv.conf', 'etc/hosts', 'etc/hostname', 'dev/console']) {
        expect((await lstat(path.join(rootfs, f))).isFile(), f).toBe(true);
      }
      expect(await readlink(path.join(rootfs, 'etc/mtab'))).toBe('/proc/mounts');
      expect(await (await import('node:fs/promises')).readdir(outside)).toEqual([]);
      // Files the plugin ships are kept; a second run changes nothing.
      await writeFile(path.join(rootfs, 'etc/hosts'), 'mine');
      await setupInitLayer(rootfs);
      expect(await readFile(path.join(rootfs, 'etc/hosts'), 'utf8')).toBe('mine');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
