import { mkdir, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isInvalidParameter, kindOf } from '@berth/errdefs';
import { FakeMounter, makeTempDir, recordingLogger, removeTempDir } from '../test/support.js';
import { LocalDriver } from './local-driver.js';
import type { LocalVolume } from './local-volume.js';

let base: string;
let root: string;

beforeEach(async () => {
  base = await makeTempDir();
  root = join(base, 'volumes');
});

afterEach(async () => {
  await removeTempDir(base);
});

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (err: unknown) => err,
  );
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o7777;

describe('LocalDriver.open', () => {
  it('creates the root 0701 and ignores regular files and non-volume directories', async () => {
    const driver = await LocalDriver.open({ root });
    expect(await mode(root)).toBe(0o701);
    expect(driver.name).toBe('local');
    expect(await driver.scope()).toBe('local');
    for (const file of ['metadata.sqlite', 'metadata.sqlite-wal', 'metadata.sqlite-shm']) await writeFile(join(root, file), 'x');
    await mkdir(join(root, 'not-a-volume'));
    await mkdir(join(root, 'only-opts'));
    await writeFile(join(root, 'only-opts', 'opts.json'), 'null');
    await mkdir(join(root, 'only-data', '_data'), { recursive: true });

    const reopened = await LocalDriver.open({ root });
    expect((await reopened.list()).map((v) => v.name)).toEqual(['only-data', 'only-opts']);
  });

  it('finds volumes and their options again (moby TestInitializeWithVolumes)', async () => {
    const driver = await LocalDriver.open({ root, mounter: new FakeMounter() });
    const plain = await driver.create('testing', undefined);
    await driver.create('withopts', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });

    const reopened = await LocalDriver.open({ root, mounter: new FakeMounter() });
    const found = await reopened.get('testing');
    expect(await found?.path()).toBe(await plain.path());
    expect(found?.cachedPath()).toBe(join(root, 'testing', '_data'));
    expect((await reopened.get('withopts'))?.options).toEqual({
      mountType: 'tmpfs',
      mountDevice: 'tmpfs',
      mountOpts: 'size=1m',
      quotaSize: 0,
    });
    expect(await reopened.get('missing')).toBeUndefined();
  });

  it('treats null and all-empty opts.json as no options (moby TestReloadNoOpts)', async () => {
    const driver = await LocalDriver.open({ root });
    await driver.create('test1', undefined);
    await driver.create('test2', undefined);
    await writeFile(join(root, 'test2', 'opts.json'), 'null', { mode: 0o600 });
    await driver.create('test3', undefined);
    await writeFile(join(root, 'test3', 'opts.json'), '{"MountType":"","MountOpts":"","MountDevice":"","Quota":{"Size":0}}');
    await driver.create('test4', {});
    await expect(stat(join(root, 'test4', 'opts.json'))).rejects.toMatchObject({ code: 'ENOENT' });

    const logger = recordingLogger();
    const reopened = await LocalDriver.open({ root, logger });
    for (const name of ['test1', 'test2', 'test3', 'test4']) {
      const volume = await reopened.get(name);
      expect(volume?.options).toBeUndefined();
      await expect(volume?.mount('1234')).resolves.toBe(join(root, name, '_data'));
    }
    expect(logger.entries.filter((e) => e.level === 'warn')).toEqual([]);
  });

  it('keeps a volume whose opts.json is corrupt, without options and with its data (beyond moby)', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('corrupt', { type: 'tmpfs', device: 'tmpfs' });
    await writeFile(join(volume.dataPath, 'precious'), 'data');
    await writeFile(join(root, 'corrupt', 'opts.json'), '{"MountType": "tmp');
    await driver.create('healthy', undefined);

    const logger = recordingLogger();
    const reopened = await LocalDriver.open({ root, logger });
    expect((await reopened.list()).map((v) => v.name)).toEqual(['corrupt', 'healthy']);
    const kept = await reopened.get('corrupt');
    expect(kept?.options).toBeUndefined();
    expect(await readFile(join(root, 'corrupt', '_data', 'precious'), 'utf8')).toBe('data');
    expect(await readFile(join(root, 'corrupt', 'opts.json'), 'utf8')).toBe('{"MountType": "tmp');
    const warning = logger.entries.find((e) => e.level === 'warn');
    expect(warning?.message).toMatch(/^error while unmarshaling volume options for volume: corrupt/);
    expect(warning?.fields).toMatchObject({ volume: 'corrupt', path: join(root, 'corrupt', 'opts.json') });
  });
});

describe('LocalDriver.create', () => {
  it('accepts and refuses names as moby does, never writing outside the root (moby TestCreate)', async () => {
    const driver = await LocalDriver.open({ root });
    const valid = ['name', 'name-with-dash', 'name_with_underscore', 'ab', 'thing.d', 'x'.repeat(255)];
    const invalid = ['x', '.hello', './hello', '/testvol', '~', '..', '.', '...', 'name/with/slash', 'name/with/../../slash', './name', '../name', './', '../', 'a\0b', ''];
    for (const name of valid) expect((await driver.create(name, undefined)).name).toBe(name);
    for (const name of invalid) {
      const err = await errorOf(driver.create(name, undefined));
      expect(isInvalidParameter(err), name).toBe(true);
    }
    expect((await readdir(root)).sort()).toEqual([...valid].sort());
    expect((await readdir(base)).sort()).toEqual(['volumes']);
    await LocalDriver.open({ root });
  });

  it('refuses the names of files others keep in the root as reserved', async () => {
    const driver = await LocalDriver.open({ root, reservedNames: ['metadata.sqlite', 'metadata.sqlite-wal'] });
    await writeFile(join(root, 'metadata.sqlite'), 'x');
    for (const name of ['metadata.sqlite', 'metadata.sqlite-wal']) {
      const err = await errorOf(driver.create(name, undefined));
      expect(isInvalidParameter(err)).toBe(true);
      expect(err).toHaveProperty('message', `volume name "${name}" is reserved: berth keeps a file of that name in ${root}`);
    }
    expect((await driver.create('metadata.sqlite2', undefined)).name).toBe('metadata.sqlite2');
    expect((await readdir(root)).sort()).toEqual(['metadata.sqlite', 'metadata.sqlite2']);
  });

  it('refuses names longer than a directory entry with a clean error', async () => {
    const driver = await LocalDriver.open({ root });
    const err = await errorOf(driver.create('x'.repeat(256), undefined));
    expect(kindOf(err)).toBe('invalid-parameter');
    expect(err).toHaveProperty('message', 'volume name is too long, names should be at most 255 characters');
  });

  it('validates with moby texts before looking for an existing volume (moby TestVolCreateValidation)', async () => {
    const driver = await LocalDriver.open({ root });
    const cases: Array<[string, Record<string, string> | undefined, string]> = [
      ['a', { type: 'foo', device: 'foo' }, 'volume name is too short, names should be at least two alphanumeric characters'],
      [
        'hello world',
        { type: 'foo', device: 'foo' },
        '"hello world" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
      ],
      ['vol-2', { hello: 'world' }, 'invalid option: "hello"'],
      ['vol-3', { size: 'hello' }, "invalid size: 'hello'"],
      ['vol-4', { size: '1234' }, 'quota size requested but no quota support'],
      ['vol-5', { device: 'foo' }, 'missing required option: "type"'],
      ['vol-6', { type: 'foo' }, 'missing required option: "device"'],
      ['vol-7', { o: 'foo', type: 'foo' }, 'missing required option: "device"'],
      ['vol-8', { o: 'foo', device: 'foo' }, 'missing required option: "type"'],
      ['vol-13', { type: 'cifs', device: '//some.example.com:2345/thepath', o: 'foo' }, "port not allowed in CIFS device URL, include 'port' in 'o='"],
      ['vol-14', { type: 'cifs', device: ':::', o: 'foo' }, 'error parsing mount device url: parse ":::": missing protocol scheme'],
    ];
    for (const [name, opts, text] of cases) {
      const err = await errorOf(driver.create(name, opts));
      expect(kindOf(err), text).toBe('invalid-parameter');
      expect(err).toHaveProperty('message', text);
    }
    const valid: Array<Record<string, string> | undefined> = [
      undefined,
      { type: 'foo', device: 'foo' },
      { type: 'foo', device: 'foo', o: 'foo' },
      { type: 'cifs', device: '//some.example.com/thepath', o: 'foo' },
    ];
    for (const [i, opts] of valid.entries()) {
      const volume = await driver.create(`valid-${i}`, opts);
      await driver.remove(volume);
    }
    expect(await readdir(root)).toEqual([]);

    await driver.create('ab', undefined);
    await expect(driver.create('ab', { hello: 'world' })).rejects.toThrow('invalid option: "hello"');
  });

  it('returns an existing volume unchanged', async () => {
    const driver = await LocalDriver.open({ root });
    const first = await driver.create('same', { type: 'tmpfs', device: 'tmpfs' });
    const again = await driver.create('same', { type: 'nfs', device: 'elsewhere' });
    expect(again).toBe(first);
    expect(again.options?.mountType).toBe('tmpfs');
    const [a, b] = await Promise.all([driver.create('racing', undefined), driver.create('racing', undefined)]);
    expect(a).toBe(b);
  });

  it('lays the volume out as moby does', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('laid-out', { type: 'none', o: 'bind', device: '/srv/x' });
    expect(volume.driverName).toBe('local');
    expect(volume.status()).toBeUndefined();
    expect(await mode(join(root, 'laid-out'))).toBe(0o701);
    expect(await mode(join(root, 'laid-out', '_data'))).toBe(0o755);
    expect(await mode(join(root, 'laid-out', 'opts.json'))).toBe(0o600);
    expect(JSON.parse(await readFile(join(root, 'laid-out', 'opts.json'), 'utf8'))).toEqual({
      MountType: 'none',
      MountOpts: 'bind',
      MountDevice: '/srv/x',
      Quota: { Size: 0 },
    });
    expect((await readdir(join(root, 'laid-out'))).sort()).toEqual(['_data', 'opts.json']);
    await driver.create('plain', undefined);
    expect(await readdir(join(root, 'plain'))).toEqual(['_data']);
  });

  it('stops before doing anything when the caller aborted', async () => {
    const driver = await LocalDriver.open({ root });
    await expect(driver.create('aborted', undefined, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(await driver.get('aborted')).toBeUndefined();
    expect(await readdir(root)).toEqual([]);
  });
});

describe('LocalDriver.createDeferred', () => {
  it('answers once the volume is in place, and keeps its name locked until it is durable', async () => {
    const driver = await LocalDriver.open({ root });
    const { volume, durable } = await driver.createDeferred('deferred', { type: 'tmpfs', device: 'tmpfs' });
    expect((await readdir(volume.rootPath)).sort()).toEqual(['_data', 'opts.json']);
    expect(await driver.get('deferred')).toBe(volume);
    const order: string[] = [];
    const removing = driver.remove(volume).then(() => order.push('removed'));
    await durable.then(() => order.push('durable'));
    await removing;
    expect(order).toEqual(['durable', 'removed']);
    expect(await readdir(root)).toEqual([]);
  });

  it('answers an existing volume with nothing left to wait for', async () => {
    const driver = await LocalDriver.open({ root });
    const first = await driver.create('there', undefined);
    const again = await driver.createDeferred('there', undefined);
    expect(again.volume).toBe(first);
    await again.durable;
  });

  it('validates before taking the lock, with moby texts', async () => {
    const driver = await LocalDriver.open({ root });
    await expect(driver.createDeferred('ab', { hello: 'world' })).rejects.toThrow('invalid option: "hello"');
    await expect(driver.createDeferred('xy', undefined, { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(await readdir(root)).toEqual([]);
  });
});

describe('LocalDriver spare directories', () => {
  const spares = async (): Promise<string[]> => (await readdir(root)).filter((n) => n.startsWith('.creating-')).sort();

  it('keeps none by default', async () => {
    const driver = await LocalDriver.open({ root });
    await driver.create('aa', undefined);
    await driver.settled();
    expect(await readdir(root)).toEqual(['aa']);
  });

  it('makes them after the first create, hands them to creates, and refills them', async () => {
    const old = process.umask(0o077);
    let driver: LocalDriver;
    try {
      driver = await LocalDriver.open({ root, spareDirectories: 4 });
      expect(await spares()).toEqual([]); // none at start
      await driver.create('first', undefined);
      await driver.settled();
      const made = await spares();
      expect(made).toHaveLength(4);
      for (const spare of made) {
        expect(await mode(join(root, spare))).toBe(0o701);
        expect(await mode(join(root, spare, '_data'))).toBe(0o755);
      }
      const before = Date.now();
      await new Promise((r) => setTimeout(r, 20));
      const plain = await driver.create('plain', undefined);
      const withOptions = await driver.create('with-options', { type: 'tmpfs', device: 'tmpfs' });
      // Taken, not made: two of the spares are gone (renamed into place).
      const left = new Set(await spares());
      expect(made.filter((spare) => !left.has(spare))).toHaveLength(2);
      expect((await readdir(plain.rootPath)).sort()).toEqual(['_data']);
      expect((await readdir(withOptions.rootPath)).sort()).toEqual(['_data', 'opts.json']);
      expect(await mode(join(withOptions.rootPath, 'opts.json'))).toBe(0o600);
      expect(await mode(plain.rootPath)).toBe(0o701);
      expect(await mode(plain.dataPath)).toBe(0o755);
      // The creation time is the create's, not the spare's.
      expect((await plain.createdAt())!.getTime()).toBeGreaterThanOrEqual(before);
      for (let i = 0; i < 6; i++) await driver.create(`more-${i}`, undefined);
      await driver.settled();
      expect((await spares()).length).toBeGreaterThan(0);
      expect((await driver.list()).map((v) => v.name)).toEqual(['first', 'more-0', 'more-1', 'more-2', 'more-3', 'more-4', 'more-5', 'plain', 'with-options']);
    } finally {
      process.umask(old);
    }
    // A restart sweeps the spares and never lists them.
    const reopened = await LocalDriver.open({ root });
    expect(await spares()).toEqual([]);
    expect((await reopened.list()).length).toBe(9);
  });

  it('fills in a directory of that name in place also when a spare was taken', async () => {
    const driver = await LocalDriver.open({ root, spareDirectories: 2 });
    await driver.create('warm', undefined);
    await driver.settled();
    await mkdir(join(root, 'odd'), { recursive: true });
    await writeFile(join(root, 'odd', 'note'), 'x');
    const v = await driver.create('odd', undefined);
    expect((await readdir(v.rootPath)).sort()).toEqual(['_data', 'note']);
    await driver.settled();
    expect((await readdir(root)).filter((n) => !n.startsWith('.creating-')).sort()).toEqual(['odd', 'warm']);
  });
});

describe('LocalDriver.open scan', () => {
  it('takes a directory with _data or opts.json for a volume, reads opts.json only when there, and nothing else', async () => {
    await mkdir(join(root, 'data-only', '_data'), { recursive: true });
    await mkdir(join(root, 'opts-only'), { recursive: true });
    await writeFile(join(root, 'opts-only', 'opts.json'), '{"MountType":"tmpfs","MountDevice":"tmpfs"}');
    await mkdir(join(root, 'dangling'), { recursive: true });
    await symlink('/nonexistent-berth-target', join(root, 'dangling', '_data'));
    await mkdir(join(root, 'neither', 'other'), { recursive: true });
    await writeFile(join(root, 'a-file'), 'x');
    const driver = await LocalDriver.open({ root });
    expect((await driver.list()).map((v) => v.name)).toEqual(['dangling', 'data-only', 'opts-only']);
    expect((await driver.get('opts-only'))?.options?.mountType).toBe('tmpfs');
    expect((await driver.get('data-only'))?.options).toBeUndefined();
    expect(driver.getSync('data-only')).toBe(await driver.get('data-only'));
    expect(driver.getSync('neither')).toBeUndefined();
  });
});

describe('LocalVolume.createdAt', () => {
  it('is the ctime of the volume directory and ignores changes in _data', async () => {
    const driver = await LocalDriver.open({ root });
    const volume = await driver.create('timed', undefined);
    const createdAt = await volume.createdAt();
    expect(createdAt).toEqual((await stat(join(root, 'timed'))).ctime);

    await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(volume.dataPath, 'file'), 'x');
    await utimes(volume.dataPath, new Date(0), new Date(0));
    expect(await volume.createdAt()).toEqual(createdAt);
    expect((await stat(volume.dataPath)).ctime.getTime()).toBeGreaterThan(createdAt!.getTime());

    expect(volume.createdAtSync()).toEqual(createdAt);

    await rm(join(root, 'timed'), { recursive: true });
    expect(await volume.createdAt()).toBeUndefined();
    expect(volume.createdAtSync()).toBeUndefined();
  });
});

describe('LocalDriver.remove', () => {
  it('removes volumes, also when _data or everything was deleted out of band (moby TestRemove)', async () => {
    const driver = await LocalDriver.open({ root });
    const first = await driver.create('testing', undefined);
    await mkdir(join(first.dataPath, 'deep', 'er'), { recursive: true });
    await writeFile(join(first.dataPath, 'deep', 'er', 'file'), 'x', { mode: 0o400 });
    await driver.remove(first);

    const second = await driver.create('testing2', undefined);
    await rm(second.dataPath, { recursive: true });
    await driver.remove(second);

    const third = await driver.create('testing3', { type: 'tmpfs', device: 'tmpfs' });
    await rm(third.rootPath, { recursive: true });
    await driver.remove(third);

    expect(await driver.list()).toEqual([]);
    expect(await readdir(root)).toEqual([]);
    await driver.remove(first);
  });

  it('refuses data outside the volume, through a symlink', async () => {
    const driver = await LocalDriver.open({ root });
    const outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep'), 'x');
    const volume = await driver.create('linked', undefined);
    await rm(volume.dataPath, { recursive: true });
    await symlink(outside, volume.dataPath);
    const err = await errorOf(driver.remove(volume));
    expect(kindOf(err)).toBe('system');
    expect(err).toHaveProperty('message', `unable to remove a directory outside of the local volume root ${root}: ${outside}`);

    const other = await driver.create('other', undefined);
    await writeFile(join(other.dataPath, 'keep'), 'x');
    const sneaky = await driver.create('sneaky', undefined);
    await rm(sneaky.dataPath, { recursive: true });
    await symlink(other.dataPath, sneaky.dataPath);
    await expect(driver.remove(sneaky)).rejects.toThrow(/^unable to remove a directory outside of the local volume root/);
    await rm(other.dataPath, { recursive: true });
    await symlink('..', other.dataPath);
    await expect(driver.remove(other)).rejects.toThrow(`unable to remove a directory outside of the local volume root ${root}: ${root}`);

    expect(await readFile(join(outside, 'keep'), 'utf8')).toBe('x');
    expect((await readdir(root)).sort()).toEqual(['linked', 'other', 'sneaky']);
  });

  it('removes a volume whose directory was replaced by a symlink: the link goes, never what it points to', async () => {
    const driver = await LocalDriver.open({ root });
    const outside = join(base, 'outside');
    await mkdir(join(outside, '_data'), { recursive: true });
    await writeFile(join(outside, 'opts.json'), '{}');
    await writeFile(join(outside, 'keep'), 'x');
    const empty = join(base, 'outside-empty');
    await mkdir(empty);
    for (const [name, target] of [['swapped', outside], ['swapped-empty', empty]] as const) {
      const volume = await driver.create(name, undefined);
      await rm(volume.rootPath, { recursive: true });
      await symlink(target, volume.rootPath);
      await driver.remove(volume);
      expect(await driver.get(name)).toBeUndefined();
    }
    expect(await readdir(root)).toEqual([]);
    expect((await readdir(outside)).sort()).toEqual(['_data', 'keep', 'opts.json']);
    expect(await readdir(empty)).toEqual([]);
  });

  it('refuses volumes of other drivers and resolves wrappers by name', async () => {
    const driver = await LocalDriver.open({ root });
    const foreign = { name: 'x', driverName: 'other' } as unknown as LocalVolume;
    await expect(driver.remove(foreign)).rejects.toThrow('unknown volume type Object of driver other');
    const elsewhere = await LocalDriver.open({ root: join(base, 'elsewhere') });
    await expect(driver.remove(await elsewhere.create('theirs', undefined))).rejects.toThrow(/^unknown volume type LocalVolume/);

    const volume = await driver.create('wrapped', undefined);
    await driver.remove({ name: 'wrapped', driverName: 'local' } as unknown as LocalVolume);
    expect(await driver.get('wrapped')).toBeUndefined();
    await expect(stat(volume.rootPath)).rejects.toMatchObject({ code: 'ENOENT' });
    await driver.remove({ name: '../escape', driverName: 'local' } as unknown as LocalVolume);
    expect((await readdir(base)).sort()).toEqual(['elsewhere', 'volumes']);
  });
});

describe('LocalVolume mounts (in-memory mount table)', () => {
  it('mounts on first use, counts users and unmounts after the last', async () => {
    const mounter = new FakeMounter();
    const logger = recordingLogger();
    const driver = await LocalDriver.open({ root, mounter, logger });
    const volume = await driver.create('counted', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' });
    expect(await volume.mount('a')).toBe(volume.dataPath);
    expect(mounter.table.get(volume.dataPath)).toEqual({ device: 'tmpfs', target: volume.dataPath, type: 'tmpfs', options: 'size=1m' });
    await volume.mount('b');
    expect(volume.activeMounts).toBe(2);
    expect(mounter.calls).toEqual([`mount ${volume.dataPath}`]);

    const busy = await errorOf(driver.remove(volume));
    expect(kindOf(busy)).toBe('system');
    expect(busy).toHaveProperty('message', 'volume has active mounts');

    await volume.unmount('b');
    expect(volume.activeMounts).toBe(1);
    expect(volume.mounted).toBe(true);
    await volume.unmount('a');
    expect(volume.activeMounts).toBe(0);
    expect(volume.mounted).toBe(false);
    expect(mounter.table.size).toBe(0);

    await volume.unmount('c');
    expect(logger.entries.some((e) => e.level === 'error' && e.message === 'an attempt to decrement a zero mount count')).toBe(true);
    await driver.remove(volume);
  });

  it('does not count plain volumes', async () => {
    const mounter = new FakeMounter();
    const driver = await LocalDriver.open({ root, mounter });
    const volume = await driver.create('plain', undefined);
    await volume.mount('a');
    await volume.unmount('a');
    await volume.unmount('a');
    expect(volume.activeMounts).toBe(0);
    expect(mounter.calls).toEqual([]);
  });

  it('masks the password in mount errors and counts nothing', async () => {
    const mounter = new FakeMounter();
    mounter.failWith = 'mount error(13): Permission denied (username=me,password=hunter2)';
    const driver = await LocalDriver.open({ root, mounter });
    const volume = await driver.create('secret', { type: 'cifs', device: '//10.0.0.1/share', o: 'username=me,password=hunter2' });
    const err = await errorOf(volume.mount('a'));
    expect(kindOf(err)).toBe('system');
    expect(err).toHaveProperty('message', 'failed to mount local volume: mount error(13): Permission denied (username=me,password=********)');
    expect(volume.activeMounts).toBe(0);
    expect(volume.mounted).toBe(false);
  });

  it('reuses a mount found at start-up and remounts on live-restore after a reboot', async () => {
    const mounter = new FakeMounter();
    const driver = await LocalDriver.open({ root, mounter });
    const volume = await driver.create('survivor', { type: 'tmpfs', device: 'tmpfs' });
    await volume.mount('a');

    const restarted = await LocalDriver.open({ root, mounter });
    const again = (await restarted.get('survivor'))!;
    expect(again.mounted).toBe(true);
    expect(again.activeMounts).toBe(0);
    await again.liveRestore('a');
    expect(again.activeMounts).toBe(1);
    expect(mounter.calls).toEqual([`mount ${volume.dataPath}`]);

    mounter.table.clear(); // a reboot
    const rebooted = await LocalDriver.open({ root, mounter });
    const fresh = (await rebooted.get('survivor'))!;
    expect(fresh.mounted).toBe(false);
    await fresh.liveRestore('a');
    expect(fresh.mounted).toBe(true);
    expect(fresh.activeMounts).toBe(1);
    expect(mounter.table.has(volume.dataPath)).toBe(true);
    await fresh.unmount('a');
    expect(mounter.table.size).toBe(0);
  });

  it('unmounts an idle mounted volume before removing it', async () => {
    const mounter = new FakeMounter();
    const driver = await LocalDriver.open({ root, mounter });
    await driver.create('idle', { type: 'tmpfs', device: 'tmpfs' });
    mounter.table.set(join(root, 'idle', '_data'), { device: 'tmpfs', target: join(root, 'idle', '_data'), type: 'tmpfs', options: '' });
    const restarted = await LocalDriver.open({ root, mounter });
    await restarted.remove((await restarted.get('idle'))!);
    expect(mounter.table.size).toBe(0);
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses to remove while something else is mounted in the volume', async () => {
    const mounter = new FakeMounter();
    const driver = await LocalDriver.open({ root, mounter });
    const volume = await driver.create('nested', undefined);
    const inner = join(volume.dataPath, 'sub');
    await mkdir(inner);
    mounter.table.set(inner, { device: '/srv', target: inner, type: 'none', options: 'bind' });
    const err = await errorOf(driver.remove(volume));
    expect(kindOf(err)).toBe('system');
    expect(err).toHaveProperty('message', `unable to remove volume nested: ${inner} is still mounted`);
    expect(await driver.get('nested')).toBe(volume);
    expect(await readdir(volume.dataPath)).toEqual(['sub']);
  });

  it('refuses to mount a volume with a size quota when there is no quota support', async () => {
    const driver = await LocalDriver.open({ root });
    await driver.create('quota', undefined);
    await writeFile(join(root, 'quota', 'opts.json'), '{"Quota":{"Size":1048576}}');
    const reopened = await LocalDriver.open({ root });
    await expect((await reopened.get('quota'))!.mount('a')).rejects.toThrow('size quota requested for volume but no quota support');
  });

  it('serialises one volume but never blocks another', async () => {
    const mounter = new FakeMounter();
    const driver = await LocalDriver.open({ root, mounter });
    const slow = await driver.create('slow', { type: 'nfs', device: ':/export', o: 'addr=10.0.0.1' });
    const other = await driver.create('other', { type: 'tmpfs', device: 'tmpfs' });
    let open!: () => void;
    mounter.gate = new Promise((r) => (open = r));
    const mounting = slow.mount('a');
    const order: string[] = [];
    const waiting = slow.unmount('a').then(() => order.push('slow unmounted'));
    await new Promise((r) => setTimeout(r, 10));

    mounter.gate = undefined;
    await other.mount('b');
    await driver.create('created-meanwhile', undefined);
    order.push('others done');
    expect(slow.activeMounts).toBe(0);

    open();
    await mounting;
    await waiting;
    expect(order).toEqual(['others done', 'slow unmounted']);
    expect(slow.activeMounts).toBe(0);
    expect(mounter.table.has(slow.dataPath)).toBe(false);
  });
});

describe('LocalDriver crash safety', () => {
  it('sweeps what an interrupted create or remove left, and never lists it', async () => {
    await mkdir(join(root, '.creating-0011223344556677', '_data'), { recursive: true });
    await writeFile(join(root, '.creating-0011223344556677', 'opts.json'), '{"MountType":"tmpfs","MountDevice":"tmpfs"}');
    await mkdir(join(root, '.removing-8899aabbccddeeff', '_data', 'big'), { recursive: true });
    await mkdir(join(root, 'kept', '_data'), { recursive: true });
    const driver = await LocalDriver.open({ root });
    expect((await driver.list()).map((v) => v.name)).toEqual(['kept']);
    expect(await readdir(root)).toEqual(['kept']);
  });

  it('sweeps a leftover that is a symlink without following it', async () => {
    const outside = join(base, 'outside');
    await mkdir(join(outside, '_data'), { recursive: true });
    await writeFile(join(outside, '_data', 'keep'), 'x');
    await mkdir(root, { recursive: true });
    await symlink(outside, join(root, '.removing-0123456789abcdef'));
    await symlink(join(base, 'nowhere'), join(root, '.creating-0123456789abcdef'));
    await LocalDriver.open({ root });
    expect(await readdir(root)).toEqual([]);
    expect(await readFile(join(outside, '_data', 'keep'), 'utf8')).toBe('x');
  });

  it('makes a volume appear whole: nothing but complete volumes in the root after create and remove', async () => {
    const driver = await LocalDriver.open({ root });
    const v = await driver.create('whole', { type: 'tmpfs', device: 'tmpfs' });
    expect((await readdir(root)).sort()).toEqual(['whole']);
    expect((await readdir(v.rootPath)).sort()).toEqual(['_data', 'opts.json']);
    await driver.remove(v);
    expect(await readdir(root)).toEqual([]);
  });

  it('fills in a directory of that name that is not a volume, as moby does', async () => {
    await mkdir(join(root, 'odd'), { recursive: true });
    await writeFile(join(root, 'odd', 'note'), 'x');
    const driver = await LocalDriver.open({ root });
    const v = await driver.create('odd', undefined);
    expect((await readdir(v.rootPath)).sort()).toEqual(['_data', 'note']);
  });
});
