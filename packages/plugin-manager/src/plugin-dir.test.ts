import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers.js';
import { atomicRemoveAll, loadPluginFile, newPluginId, savePluginFile } from './plugin-dir.js';
import { initEmptySettings, parsePluginConfig, type PluginObject } from '@berth/plugin-store';

const gone = async (p: string): Promise<boolean> =>
  stat(p).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  );

describe('plugin directory', () => {
  let dir: string;
  afterEach(async () => {
    const { rm } = await import('node:fs/promises');
    await rm(dir, { recursive: true, force: true });
  });

  it('removes a directory (TestAtomicRemoveAllNormal)', async () => {
    dir = await tempDir();
    const target = path.join(dir, 'p');
    await mkdir(path.join(target, 'sub'), { recursive: true });
    await atomicRemoveAll(target);
    expect(await gone(target)).toBe(true);
    expect(await gone(`${target}-removing`)).toBe(true);
  });

  it('finishes an earlier removal first (TestAtomicRemoveAllAlreadyExists)', async () => {
    dir = await tempDir();
    const target = path.join(dir, 'p');
    await mkdir(target);
    await mkdir(path.join(`${target}-removing`, 'leftover'), { recursive: true });
    await atomicRemoveAll(target);
    expect(await gone(target)).toBe(true);
    expect(await gone(`${target}-removing`)).toBe(true);
  });

  it('is fine with nothing to remove (TestAtomicRemoveAllNotExist)', async () => {
    dir = await tempDir();
    await atomicRemoveAll('/not-exist');
    const target = path.join(dir, 'p');
    await mkdir(path.join(`${target}-removing`, 'foo'), { recursive: true });
    await atomicRemoveAll(target);
    expect(await gone(`${target}-removing`)).toBe(true);
  });

  it("persists atomically with mode 0600 in moby's format, keeping moby's extra fields", async () => {
    dir = await tempDir();
    const id = newPluginId();
    expect(id).toMatch(/^[a-f0-9]{64}$/);
    const config = parsePluginConfig('{"description":"foo plugin"}');
    const object: PluginObject = { Config: config, Enabled: true, Id: id, Name: 'foo:latest', Settings: initEmptySettings(config) };
    await mkdir(path.join(dir, id));
    await savePluginFile(dir, object, { Config: 'sha256:abc', Blobsums: ['sha256:def'] });
    const file = path.join(dir, id, 'config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const raw = JSON.parse(await readFile(file, 'utf8'));
    expect(raw).toMatchObject({ plugin: object, Rootfs: path.join(dir, id, 'rootfs'), Config: 'sha256:abc', Blobsums: ['sha256:def'] });
    const loaded = await loadPluginFile(dir, id);
    expect(loaded.object).toEqual(object);
    expect(loaded.extras).toMatchObject({ Config: 'sha256:abc', Blobsums: ['sha256:def'] });
  });

  it("reads moby's files case-insensitively and refuses ones that are not plugins", async () => {
    dir = await tempDir();
    const id = newPluginId();
    await mkdir(path.join(dir, id));
    const file = path.join(dir, id, 'config.json');
    await writeFile(file, JSON.stringify({ Plugin: { id, name: 'x:latest', enabled: true, config: { interface: { socket: 's.sock' } } } }));
    const { object } = await loadPluginFile(dir, id);
    expect(object).toMatchObject({ Id: id, Name: 'x:latest', Enabled: true, Config: { Interface: { Socket: 's.sock', Types: null } } });
    await writeFile(file, '{"plugin": {"Id": "other"}}');
    await expect(loadPluginFile(dir, id)).rejects.toThrow('belongs to plugin "other"');
    await writeFile(file, '{not json');
    await expect(loadPluginFile(dir, id)).rejects.toThrow(/error decoding/);
    await writeFile(file, JSON.stringify({ plugin: { Id: id, Enabled: 'yes' } }));
    await expect(loadPluginFile(dir, id)).rejects.toThrow('json: cannot unmarshal string into Go struct field Plugin.Enabled of type bool');
  });
});
