import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { kindOf } from '@berth/errdefs';
import { isRoot, makeTempDir, mountsUnder, removeTempDir } from '../test/support.js';
import { LocalDriver } from './local-driver.js';

// Real mounts need root; CI runs as root, so there these tests always run.
if (!isRoot) console.warn('local-driver.mount.test.ts: skipped, real mounts need root');

let base: string;
let root: string;

beforeEach(async () => {
  base = await makeTempDir();
  root = join(base, 'volumes');
});

afterEach(async () => {
  await removeTempDir(base);
});

describe.skipIf(!isRoot || process.platform !== 'linux')('LocalVolume with real mounts', () => {
  it('mounts tmpfs with options and counts users (moby TestCreateWithOpts)', async () => {
    const driver = await LocalDriver.open({ root });
    await expect(driver.create('test', { invalidopt: 'notsupported' })).rejects.toThrow('invalid option: "invalidopt"');
    const volume = await driver.create('test', { device: 'tmpfs', type: 'tmpfs', o: 'size=1m,uid=1000' });

    const dir = await volume.mount('1234');
    const mounts = await mountsUnder(dir);
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatchObject({ mountPoint: dir, fsType: 'tmpfs', source: 'tmpfs' });
    expect(mounts[0]?.superOptions).toContain('uid=1000');
    expect(mounts[0]?.superOptions).toContain('size=1024k');
    expect(volume.activeMounts).toBe(1);

    await volume.mount('1234');
    expect(volume.activeMounts).toBe(2);
    await volume.unmount('1234');
    expect(volume.activeMounts).toBe(1);
    expect(await mountsUnder(dir)).toHaveLength(1);

    const restarted = await LocalDriver.open({ root });
    const reloaded = await restarted.get('test');
    expect(reloaded?.options).toEqual(volume.options);
    expect(reloaded?.mounted).toBe(true);
    expect(reloaded?.activeMounts).toBe(0);

    await volume.unmount('1234');
    expect(volume.activeMounts).toBe(0);
    expect(await mountsUnder(dir)).toEqual([]);
  });

  it('bind-mounts a host directory and never deletes through it', async () => {
    const host = join(base, 'host');
    await mkdir(host);
    await writeFile(join(host, 'from-host'), 'hello');
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('bound', { type: 'none', o: 'bind', device: host });

    const dir = await volume.mount('c1');
    expect(await readFile(join(dir, 'from-host'), 'utf8')).toBe('hello');
    await writeFile(join(dir, 'from-container'), 'written');
    await volume.unmount('c1');
    expect(await readdir(volume.dataPath)).toEqual([]);
    expect((await readdir(host)).sort()).toEqual(['from-container', 'from-host']);

    // Mounted and idle after a restart: removal unmounts first, the host directory survives.
    await volume.mount('c2');
    const restarted = await LocalDriver.open({ root });
    await restarted.remove((await restarted.get('bound'))!);
    expect(await mountsUnder(root)).toEqual([]);
    expect(await readdir(root)).toEqual([]);
    expect((await readdir(host)).sort()).toEqual(['from-container', 'from-host']);
  });

  it('unmounts an rbind volume with its sub-mounts, leaving the source mounted', async () => {
    const host = join(base, 'host');
    await mkdir(join(host, 'sub'), { recursive: true });
    execFileSync('/bin/mount', ['-t', 'tmpfs', 'tmpfs', join(host, 'sub')]);
    await writeFile(join(host, 'sub', 'file'), 'below');
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('rb', { type: 'none', o: 'rbind', device: host });

    const dir = await volume.mount('c1');
    expect(await readFile(join(dir, 'sub', 'file'), 'utf8')).toBe('below');
    expect(await mountsUnder(volume.dataPath)).toHaveLength(2);
    await volume.unmount('c1');
    expect(await mountsUnder(volume.dataPath)).toEqual([]);
    expect(volume.mounted).toBe(false);
    expect(await mountsUnder(join(host, 'sub'))).toHaveLength(1);

    // Mounted and idle after a restart: removal unmounts the whole tree first.
    await volume.mount('c2');
    const restarted = await LocalDriver.open({ root });
    await restarted.remove((await restarted.get('rb'))!);
    expect(await mountsUnder(root)).toEqual([]);
    expect(await readdir(root)).toEqual([]);
    expect(await readFile(join(host, 'sub', 'file'), 'utf8')).toBe('below');
  });

  it('keeps counting a user whose unmount failed, so that the unmount can be retried', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('busy', { type: 'tmpfs', device: 'tmpfs' });
    const dir = await volume.mount('c1');
    // Something else mounted inside makes a plain unmount fail with "target is busy".
    await mkdir(join(dir, 'inner'));
    execFileSync('/bin/mount', ['-t', 'tmpfs', 'tmpfs', join(dir, 'inner')]);
    await expect(volume.unmount('c1')).rejects.toThrow(/^failed to unmount local volume: /);
    expect(volume.activeMounts).toBe(1);
    expect(volume.mounted).toBe(true);
    execFileSync('/bin/umount', [join(dir, 'inner')]);
    await volume.unmount('c1');
    expect(volume.activeMounts).toBe(0);
    expect(await mountsUnder(dir)).toEqual([]);
  });

  it('mounts again on live-restore when the mount did not survive', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('rebooted', { type: 'tmpfs', device: 'tmpfs' });
    await volume.mount('c1');
    execFileSync('/bin/umount', [volume.dataPath]);

    const restarted = await LocalDriver.open({ root });
    const again = (await restarted.get('rebooted'))!;
    expect(again.mounted).toBe(false);
    await again.liveRestore('c1');
    expect(again.activeMounts).toBe(1);
    expect(await mountsUnder(again.dataPath)).toHaveLength(1);
    await again.unmount('c1');
    expect(await mountsUnder(again.dataPath)).toEqual([]);
  });

  it('reports what mount said when it fails', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('broken', { type: 'none', o: 'bind', device: join(base, 'missing') });
    const err = await volume.mount('c1').catch((e: unknown) => e);
    expect(kindOf(err)).toBe('system');
    expect((err as Error).message).toMatch(/^failed to mount local volume: mount: .+/);
    expect(volume.activeMounts).toBe(0);
    expect(await mountsUnder(root)).toEqual([]);
  });

  it('refuses to remove a plain volume while something is mounted on its data', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('occupied', undefined);
    execFileSync('/bin/mount', ['-t', 'tmpfs', 'tmpfs', volume.dataPath]);
    await writeFile(join(volume.dataPath, 'inside'), 'x');
    await expect(driver.remove(volume)).rejects.toThrow(`unable to remove volume occupied: ${volume.dataPath} is still mounted`);
    expect(await readdir(volume.dataPath)).toEqual(['inside']);
  });
});
