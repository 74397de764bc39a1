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
  it('creates the root 0701, takes every directory in it for a volume as moby does, and ignores files and hidden entries', async () => {
    const driver = await LocalDriver.open({ root });
    expect(await mode(root)).toBe(0o701);
    expect(driver.name).toBe('local');
    expect(await driver.scope()).toBe('local');
    for (const file of ['metadata.sqlite', 'metadata.sqlite-wal', 'metadata.sqlite-shm']) await writeFile(join(root, file), 'x');
    await mkdir(join(root, 'bare'));
    await mkdir(join(root, 'only-opts'));
    await writeFile(join(root, 'only-opts', 'opts.json'), 'null');
    await mkdir(join(root, 'only-data', '_data'), { recursive: true });
    await mkdir(join(root, '.hidden', '_data'), { recursive: true });

    const reopened = await LocalDriver.open({ root });
    expect((await reopened.list()).map((v) => v.name).sort()).toEqual(['bare', 'only-data', 'only-opts']);
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
    expect((await reopened.list()).map((v) => v.name).sort()).toEqual(['corrupt', 'healthy']);
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
    expect((await readdir(base)).sort()).toEqual(['volumes', 'volumes-staging']);
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

describe('LocalDriver staging area', () => {
  const staging = (): string => `${root}-staging`;
  const spares = async (): Promise<string[]> => (await readdir(staging())).filter((n) => n.startsWith('spare-')).sort();

  it('keeps 16 spares beside the root by default, made at open, and nothing but volumes in the root', async () => {
    const old = process.umask(0o077);
    try {
      const driver = await LocalDriver.open({ root });
      expect(await mode(staging())).toBe(0o700);
      const made = await spares();
      expect(made).toEqual(Array.from({ length: 16 }, (_, k) => `spare-${k}`).sort());
      for (const spare of made) {
        expect(await mode(join(staging(), spare))).toBe(0o701);
        expect(await mode(join(staging(), spare, '_data'))).toBe(0o755);
      }
      expect(await readdir(root)).toEqual([]);
      const before = Date.now();
      await new Promise((r) => setTimeout(r, 20));
      const plain = await driver.create('plain', undefined);
      const withOptions = await driver.create('with-options', { type: 'tmpfs', device: 'tmpfs' });
      expect((await readdir(root)).sort()).toEqual(['plain', 'with-options']);
      expect((await readdir(plain.rootPath)).sort()).toEqual(['_data']);
      expect((await readdir(withOptions.rootPath)).sort()).toEqual(['_data', 'opts.json']);
      expect(await mode(join(withOptions.rootPath, 'opts.json'))).toBe(0o600);
      expect(await mode(plain.rootPath)).toBe(0o701);
      expect(await mode(plain.dataPath)).toBe(0o755);
      // The creation time is the create's, not the spare's.
      expect((await plain.createdAt())!.getTime()).toBeGreaterThanOrEqual(before);
      // A create resolves once the spare it took is made again: the same spares, whenever none is in flight.
      expect(await spares()).toEqual(made);
      await Promise.all(Array.from({ length: 40 }, (_, i) => driver.create(`burst-${i}`, undefined)));
      expect(await spares()).toEqual(made);
      await driver.remove(plain);
      expect((await readdir(staging())).sort()).toEqual(['removing', ...made].sort());
      expect(await readdir(join(staging(), 'removing'))).toEqual([]);
    } finally {
      process.umask(old);
    }
  });

  it('keeps whole spares across a restart, and makes again the ones that are not', async () => {
    await LocalDriver.open({ root, spareDirectories: 3 });
    const spare = (k: number): string => join(staging(), `spare-${k}`);
    const before = (await stat(spare(0))).ino;
    await writeFile(join(spare(1), 'opts.json'), '{}'); // a create cut after writing its options
    await rm(join(spare(2), '_data'), { recursive: true });
    await mkdir(join(staging(), 'new-7', '_data'), { recursive: true });
    await mkdir(join(staging(), 'spare-9'));
    await LocalDriver.open({ root, spareDirectories: 3 });
    expect((await readdir(staging())).sort()).toEqual(['removing', 'spare-0', 'spare-1', 'spare-2']);
    expect((await stat(spare(0))).ino).toBe(before);
    for (const k of [1, 2]) expect(await readdir(spare(k))).toEqual(['_data']);
  });

  it('builds a volume in the staging area when no spare is ready', async () => {
    const driver = await LocalDriver.open({ root, spareDirectories: 0 });
    const volume = await driver.create('unspared', { type: 'tmpfs', device: 'tmpfs' });
    expect((await readdir(volume.rootPath)).sort()).toEqual(['_data', 'opts.json']);
    expect(await readdir(staging())).toEqual(['removing']);
  });

  it('fills in a directory of that name in place also when a spare was taken', async () => {
    const driver = await LocalDriver.open({ root, spareDirectories: 2 });
    await mkdir(join(root, 'odd'), { recursive: true });
    await writeFile(join(root, 'odd', 'note'), 'x');
    const v = await driver.create('odd', undefined);
    expect((await readdir(v.rootPath)).sort()).toEqual(['_data', 'note']);
    expect(await readdir(root)).toEqual(['odd']);
    expect(await spares()).toEqual(['spare-0', 'spare-1']);
  });

  it('stages inside the root under hidden names when the staging area cannot be used', async () => {
    await mkdir(base, { recursive: true });
    await writeFile(staging(), 'not a directory');
    const logger = recordingLogger();
    const driver = await LocalDriver.open({ root, logger });
    expect(logger.entries.some((e) => e.level === 'warn' && e.message.startsWith('cannot use the staging directory'))).toBe(true);
    const volume = await driver.create('fallback', { type: 'tmpfs', device: 'tmpfs' });
    expect(await readdir(root)).toEqual(['fallback']);
    expect((await readdir(volume.rootPath)).sort()).toEqual(['_data', 'opts.json']);
    await driver.remove(volume);
    expect(await readdir(root)).toEqual([]);
  });
});

describe('LocalDriver.recreateMissing', () => {
  it('makes a volume whose directory was lost again, unless its remove was cut short or the driver syncs its directories', async () => {
    const options = { syncDirectories: false } as const;
    let driver = await LocalDriver.open({ root, ...options });
    for (const name of ['lost', 'cut']) await driver.create(name, { type: 'tmpfs', device: 'tmpfs' });
    // What a remove cut after the rename leaves: the directory is the tombstone of its name.
    const { rename } = await import('node:fs/promises');
    await rename(join(root, 'cut'), join(`${root}-staging`, 'removing', 'cut'));
    await rm(join(root, 'lost'), { recursive: true });

    driver = await LocalDriver.open({ root, ...options });
    expect(await readdir(join(`${root}-staging`, 'removing'))).toEqual([]);
    expect(await driver.recreateMissing('cut', { type: 'tmpfs', device: 'tmpfs' })).toBeUndefined();
    const lost = await driver.recreateMissing('lost', { type: 'tmpfs', device: 'tmpfs' });
    expect(lost?.name).toBe('lost');
    expect((await readdir(join(root, 'lost'))).sort()).toEqual(['_data', 'opts.json']);
    expect(lost?.options?.mountType).toBe('tmpfs');
    expect(await readdir(root)).toEqual(['lost']);

    // A tombstone of a berth that did not name them: whose it was cannot be told.
    await mkdir(join(root, '.removing-0011223344556677', '_data'), { recursive: true });
    await rm(join(root, 'lost'), { recursive: true });
    driver = await LocalDriver.open({ root, ...options });
    expect(await driver.recreateMissing('lost', undefined)).toBeUndefined();

    const syncing = await LocalDriver.open({ root });
    expect(await syncing.recreateMissing('lost', undefined)).toBeUndefined();
    expect(await readdir(root)).toEqual([]);
  });
});

describe('LocalDriver.open scan', () => {
  it('reads opts.json on first use, and only a volume with options has one', async () => {
    await mkdir(join(root, 'data-only', '_data'), { recursive: true });
    await mkdir(join(root, 'opts-only'), { recursive: true });
    await writeFile(join(root, 'opts-only', 'opts.json'), '{"MountType":"tmpfs","MountDevice":"tmpfs"}');
    await mkdir(join(root, 'corrupt', '_data'), { recursive: true });
    await writeFile(join(root, 'corrupt', 'opts.json'), '{"MountType":');
    await writeFile(join(root, 'a-file'), 'x');
    const logger = recordingLogger();
    const driver = await LocalDriver.open({ root, logger });
    expect((await driver.list()).map((v) => v.name).sort()).toEqual(['corrupt', 'data-only', 'opts-only']);
    expect(logger.entries).toEqual([]);
    expect((await driver.get('opts-only'))?.options?.mountType).toBe('tmpfs');
    expect((await driver.get('data-only'))?.options).toBeUndefined();
    expect((await driver.get('corrupt'))?.options).toBeUndefined();
    expect(logger.entries.map((e) => e.message)).toEqual(['error while unmarshaling volume options for volume: corrupt; keeping the volume without options']);
    expect(driver.getSync('data-only')).toBe(await driver.get('data-only'));
    expect(driver.getSync('a-file')).toBeUndefined();
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

  it('fills in a directory of that name made behind its back, as moby does', async () => {
    const driver = await LocalDriver.open({ root, spareDirectories: 0 });
    await mkdir(join(root, 'odd'), { recursive: true });
    await writeFile(join(root, 'odd', 'note'), 'x');
    const v = await driver.create('odd', undefined);
    expect((await readdir(v.rootPath)).sort()).toEqual(['_data', 'note']);
    expect(await readdir(`${root}-staging`)).toEqual(['removing']);
  });
});
