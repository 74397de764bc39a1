import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Berthd } from './harness.js';
import { call, diskMatchesApi, listVolumes, type ListedVolume } from './state-check.js';

/**
 * Issue 11, acceptance 2: the metadata commit is the durable point of a create (no directory fsync
 * on the request path), so a restore must make good what a machine crash on a file system that does
 * not keep directory changes in order with that commit can leave: a record whose directory is gone
 * is re-created (empty, with its options, and logged); a directory without a record is adopted, as
 * moby lists every directory of its local driver. A record whose directory left through a remove cut
 * short is dropped instead: `durability.test.ts`.
 */

let daemon: Berthd | undefined;
afterEach(async () => {
  await daemon?.cleanup();
  daemon = undefined;
});

const TMPFS = { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' };
const get = async (d: Berthd, name: string): Promise<{ status: number; volume: ListedVolume }> => {
  const res = await call(d, { path: `/volumes/${name}` });
  return { status: res.status, volume: res.json as ListedVolume };
};

describe('restore of a data-root whose directories and records disagree', () => {
  it('re-creates the directory of a volume whose record outlived it, with its labels and options, and says so', async () => {
    const first = await Berthd.start();
    daemon = first;
    for (const body of [
      { Name: 'lost-plain', Labels: { team: 'a' } },
      { Name: 'lost-tmpfs', Labels: { team: 'b' }, DriverOpts: TMPFS },
      { Name: 'kept', Labels: { team: 'c' } },
    ]) {
      expect((await call(first, { method: 'POST', path: '/volumes/create', body })).status).toBe(201);
    }
    const before = new Map((await listVolumes(first)).map((v) => [v.Name, v]));
    await first.kill();
    const root = join(first.dataRoot, 'volumes');
    // What a machine crash that kept the records but not the directories leaves.
    for (const name of ['lost-plain', 'lost-tmpfs']) await rm(join(root, name), { recursive: true });

    const second = await Berthd.start({ dir: first.dir });
    daemon = second;
    for (const name of ['lost-plain', 'lost-tmpfs']) {
      expect(second.stderr).toContain(`Re-created the directory of volume ${name}, empty: its record outlived it`);
    }
    const listed = new Map((await listVolumes(second)).map((v) => [v.Name, v]));
    expect([...listed.keys()].sort()).toEqual(['kept', 'lost-plain', 'lost-tmpfs']);
    expect(listed.get('lost-plain')).toMatchObject({ Labels: { team: 'a' }, Options: null, Driver: 'local' });
    expect(listed.get('lost-tmpfs')).toMatchObject({ Labels: { team: 'b' }, Options: TMPFS });
    expect(listed.get('kept')).toEqual(before.get('kept'));
    expect((await readdir(join(root, 'lost-plain'))).sort()).toEqual(['_data']);
    expect((await readdir(join(root, 'lost-tmpfs'))).sort()).toEqual(['_data', 'opts.json']);
    expect(JSON.parse(await readFile(join(root, 'lost-tmpfs', 'opts.json'), 'utf8'))).toMatchObject({ MountType: 'tmpfs', MountDevice: 'tmpfs' });
    expect((await diskMatchesApi(second)).problems).toEqual([]);

    // Whole again: a restart changes nothing, and the volumes work.
    await second.stop();
    const third = await Berthd.start({ dir: first.dir });
    daemon = third;
    expect(third.stderr).not.toContain('Re-created');
    expect(new Map((await listVolumes(third)).map((v) => [v.Name, v]))).toEqual(listed);
    expect((await call(third, { method: 'POST', path: '/volumes/lost-plain/mount', body: { ID: 'job' } })).status).toBe(200);
    expect((await call(third, { method: 'POST', path: '/volumes/lost-plain/unmount', body: { ID: 'job' } })).status).toBe(204);
    for (const name of listed.keys()) expect((await call(third, { method: 'DELETE', path: `/volumes/${name}` })).status).toBe(204);
    expect((await diskMatchesApi(third)).problems).toEqual([]);
  });

  it('adopts a directory without a record, as moby lists it: no labels, its options, its data, its creation time kept', async () => {
    const first = await Berthd.start();
    daemon = first;
    expect((await call(first, { method: 'POST', path: '/volumes/create', body: { Name: 'known', Labels: { a: 'b' } } })).status).toBe(201);
    await first.stop();
    const root = join(first.dataRoot, 'volumes');
    // Made by hand, or by a dockerd, or left by a create whose record a machine crash lost.
    await mkdir(join(root, 'stray', '_data'), { recursive: true });
    await writeFile(join(root, 'stray', '_data', 'keep'), 'data');
    await mkdir(join(root, 'stray-tmpfs', '_data'), { recursive: true });
    await writeFile(join(root, 'stray-tmpfs', 'opts.json'), JSON.stringify({ MountType: 'tmpfs', MountOpts: 'size=1m', MountDevice: 'tmpfs', Quota: { Size: 0 } }));

    const second = await Berthd.start({ dir: first.dir });
    daemon = second;
    expect(second.stderr).toMatch(/Adopted 2 volumes of the local driver that had no record/);
    const listed = new Map((await listVolumes(second)).map((v) => [v.Name, v]));
    expect([...listed.keys()].sort()).toEqual(['known', 'stray', 'stray-tmpfs']);
    expect(listed.get('stray')).toMatchObject({ Driver: 'local', Labels: null, Options: null, Mountpoint: join(root, 'stray', '_data'), Scope: 'local' });
    expect(listed.get('stray-tmpfs')).toMatchObject({ Labels: null, Options: TMPFS });
    const stray = await get(second, 'stray');
    expect(stray.status).toBe(200);
    expect(stray.volume.CreatedAt).not.toBe('0001-01-01T00:00:00Z');
    expect(stray.volume).toEqual(listed.get('stray'));
    expect((await diskMatchesApi(second)).problems).toEqual([]);

    // Its record is kept: the same after a kill -9, without adopting it again.
    await second.kill();
    const third = await Berthd.start({ dir: first.dir });
    daemon = third;
    expect(third.stderr).not.toMatch(/Adopted/);
    expect(new Map((await listVolumes(third)).map((v) => [v.Name, v]))).toEqual(listed);
    expect(await readFile(join(root, 'stray', '_data', 'keep'), 'utf8')).toBe('data');
    expect((await call(third, { method: 'DELETE', path: '/volumes/stray' })).status).toBe(204);
    expect(existsSync(join(root, 'stray'))).toBe(false);
    expect((await diskMatchesApi(third)).problems).toEqual([]);
  });
});
