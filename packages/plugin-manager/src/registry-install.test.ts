import { mkdir, mkdtemp, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Harness, minimalContext, rejection, until, VOLUME_CONFIG } from '../test/helpers.js';
import { computePrivileges, parsePluginConfig, type Plugin } from '@berth/plugin-store';
import type { ContentStoreLike, PluginManager, RootfsInstallOptions } from './index.js';

const sha = (c: string): string => `sha256:${c.repeat(64)}`;

/** A content store in memory: what the manager's garbage collection sees. */
class MemoryStore implements ContentStoreLike {
  readonly blobs = new Set<string>();
  ingestsCleared = 0;
  async list(): Promise<string[]> {
    return [...this.blobs];
  }
  async delete(digest: string): Promise<void> {
    this.blobs.delete(digest);
  }
  async removeIngests(): Promise<void> {
    this.ingestsCleared++;
  }
}

const CONFIG = parsePluginConfig(
  JSON.stringify({
    ...VOLUME_CONFIG,
    Network: { Type: 'host' },
    Linux: { Capabilities: ['CAP_SYS_ADMIN'] },
  }),
);

describe('PluginManager: plugins from a registry', () => {
  let h: Harness;
  let store: MemoryStore;
  let m: PluginManager<Plugin>;

  beforeEach(async () => {
    h = await Harness.create();
    store = new MemoryStore();
    m = await h.open({ contentStore: store });
  });
  afterEach(async () => {
    await h.dispose();
  });

  /** A fetched rootfs under the manager's tmp dir, as `fetchPlugin` leaves it. */
  async function fetched(files: Record<string, string>): Promise<string> {
    await mkdir(m.tmpDir, { recursive: true });
    const dir = await mkdtemp(path.join(m.tmpDir, '.rootfs'));
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
    return dir;
  }

  async function options(files: Record<string, string>, overrides: Partial<RootfsInstallOptions> = {}): Promise<RootfsInstallOptions> {
    return {
      rootfsDir: await fetched(files),
      config: CONFIG,
      configDigest: sha('c'),
      manifestDigest: sha('d'),
      blobsums: [sha('a')],
      pluginReference: 'localhost:5000/berth/vol:1',
      privileges: computePrivileges(CONFIG),
      ...overrides,
    };
  }

  it('exposes its tmp and storage directories in moby\'s layout', () => {
    expect(m.root).toBe(h.root);
    expect(m.tmpDir).toBe(path.join(h.root, 'tmp'));
    expect(m.storageDir).toBe(path.join(h.root, 'storage'));
    expect(store.ingestsCleared).toBe(1);
  });

  it('validates a name before a fetch: normalised, or the store\'s conflict', async () => {
    expect(m.validateName('localhost:5000/berth/vol')).toBe('localhost:5000/berth/vol:latest');
    expect(m.validateName('docker.io/library/x:2')).toBe('x:2');
    await m.createFromContext('taken', minimalContext());
    expect(() => m.validateName('taken')).toThrow(expect.objectContaining({ kind: 'conflict', message: 'plugin taken:latest already exists' }));
    expect(() => m.validateName('Bad')).toThrow(expect.objectContaining({ kind: 'invalid-parameter' }));
    expect(() => m.validateName(`x@${sha('1')}`)).toThrow('cannot use digest in plugin tag');
  });

  it('installs a fetched rootfs disabled, with moby\'s Config, Blobsums and Manifest persisted', async () => {
    const opts = await options({ 'bin/plugin': 'v1' });
    const p = await m.installFromRootfs('localhost:5000/berth/vol:1', opts);
    expect(p.object).toMatchObject({
      Name: 'localhost:5000/berth/vol:1',
      Enabled: false,
      PluginReference: 'localhost:5000/berth/vol:1',
      Settings: { Env: ['DEBUG=0'], Mounts: [], Args: [], Devices: [] },
      Config: { Network: { Type: 'host' } },
    });
    const dir = path.join(h.root, p.id);
    expect(await readFile(path.join(dir, 'rootfs/bin/plugin'), 'utf8')).toBe('v1');
    const saved = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(saved).toMatchObject({ Config: sha('c'), Manifest: sha('d'), Blobsums: [sha('a')], Rootfs: path.join(dir, 'rootfs') });
    expect(m.image(p.name)).toEqual({ configDigest: sha('c'), manifestDigest: sha('d'), blobsums: [sha('a')] });
    expect(await readdir(m.tmpDir)).toEqual([]);
    // No `create` event: the route logs `pull` itself, right after the fetch.
    expect(h.events).toEqual([]);
    m.logPullEvent('localhost:5000/berth/vol:1', p.name);
    expect(h.events).toEqual([['localhost:5000/berth/vol:1', 'localhost:5000/berth/vol:1', 'pull']]);

    // The record survives a restart.
    const again = await h.open({ contentStore: store });
    expect(again.image(p.id)).toEqual({ configDigest: sha('c'), manifestDigest: sha('d'), blobsums: [sha('a')] });
  });

  it('refuses a taken name (400) and wrong privileges, consuming the rootfs and leaving nothing', async () => {
    await m.createFromContext('vol', minimalContext());
    const taken = await rejection(m.installFromRootfs('vol', await options({ x: '1' })));
    expect(taken).toMatchObject({ kind: 'invalid-parameter', message: 'plugin vol:latest already exists' });

    const wrong = await options({ x: '1' }, { privileges: [{ Name: 'network', Description: '', Value: ['host'] }] });
    expect(await rejection(m.installFromRootfs('other', wrong))).toMatchObject({ kind: 'system', message: 'incorrect privileges' });
    // Descriptions and order do not count; names and values do.
    const reordered = [...computePrivileges(CONFIG)].reverse().map((p) => ({ ...p, Description: '' }));
    await m.installFromRootfs('ok', await options({ x: '1' }, { privileges: reordered }));

    expect(await readdir(m.tmpDir)).toEqual([]);
    expect(m.list().map((p) => p.Name).sort()).toEqual(['ok:latest', 'vol:latest']);
    expect((await h.leftovers()).plugins).toHaveLength(2);
  });

  it('upgrades a disabled plugin in place: same ID, name and Settings; new rootfs, config and reference', async () => {
    const p = await m.installFromRootfs('vol:1', await options({ 'bin/plugin': 'v1', 'v1-only': 'x' }));
    await m.set('vol:1', ['DEBUG=1']);
    const v2Config = parsePluginConfig(JSON.stringify({ ...VOLUME_CONFIG, Description: 'v2', Network: { Type: 'host' }, Linux: { Capabilities: ['CAP_SYS_ADMIN'] } }));
    const upgraded = await m.upgradeRootfs(
      'vol:1',
      await options({ 'bin/plugin': 'v2', v2: 'yes' }, {
        config: v2Config,
        configDigest: sha('e'),
        manifestDigest: sha('f'),
        blobsums: [sha('b')],
        pluginReference: 'localhost:5000/berth/vol:2',
      }),
    );
    expect(upgraded).toBe(p);
    expect(m.inspect('vol:1')).toMatchObject({
      Id: p.id,
      Name: 'vol:1',
      PluginReference: 'localhost:5000/berth/vol:2',
      Settings: { Env: ['DEBUG=1'] },
      Config: { Description: 'v2' },
    });
    const dir = path.join(h.root, p.id);
    expect((await readdir(path.join(dir, 'rootfs'))).sort()).toEqual(['bin', 'v2']);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'rootfs']);
    expect(m.image('vol:1')).toEqual({ configDigest: sha('e'), manifestDigest: sha('f'), blobsums: [sha('b')] });
    const saved = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { plugin: { PluginReference: string; Config: { Description: string } } };
    expect(saved.plugin.PluginReference).toBe('localhost:5000/berth/vol:2');
    expect(saved.plugin.Config.Description).toBe('v2');
    expect(await readdir(m.tmpDir)).toEqual([]);
  });

  it('refuses to upgrade an enabled plugin and keeps the old rootfs when the privileges are wrong', async () => {
    const p = await m.installFromRootfs('vol', await options({ 'bin/plugin': 'v1' }));
    await m.enable('vol');
    expect(await rejection(m.upgradeRootfs('vol', await options({ 'bin/plugin': 'v2' })))).toMatchObject({
      kind: 'conflict',
      message: 'plugin must be disabled before upgrading: plugin vol:latest is enabled',
    });
    await m.disable('vol');
    const wrong = await rejection(m.upgradeRootfs('vol', await options({ 'bin/plugin': 'v2' }, { privileges: [] })));
    expect(wrong.message).toBe('incorrect privileges');
    const dir = path.join(h.root, p.id);
    expect(await readFile(path.join(dir, 'rootfs/bin/plugin'), 'utf8')).toBe('v1');
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'rootfs']);
    expect(await readdir(m.tmpDir)).toEqual([]);
    expect(m.image('vol')?.manifestDigest).toBe(sha('d'));
  });

  describe('a crash during an upgrade is finished or undone by the next open', () => {
    /** Lays out the directory as a crash at `step` leaves it. */
    async function crashAt(step: 'staged' | 'old-moved' | 'new-moved' | 'committed'): Promise<{ id: string; dir: string }> {
      const p = await m.installFromRootfs('vol', await options({ 'bin/plugin': 'v1' }));
      const dir = path.join(h.root, p.id);
      const staged = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { plugin: { Config: { Description: string } } };
      staged.plugin.Config.Description = 'v2';
      await writeFile(path.join(dir, 'config.json.upgrade'), JSON.stringify(staged));
      if (step === 'staged') return { id: p.id, dir };
      await rename(path.join(dir, 'rootfs'), path.join(dir, 'rootfs-old'));
      if (step === 'old-moved') return { id: p.id, dir };
      await mkdir(path.join(dir, 'rootfs/bin'), { recursive: true });
      await writeFile(path.join(dir, 'rootfs/bin/plugin'), 'v2');
      if (step === 'new-moved') return { id: p.id, dir };
      await rename(path.join(dir, 'config.json.upgrade'), path.join(dir, 'config.json'));
      return { id: p.id, dir };
    }

    for (const [step, version, description] of [
      ['staged', 'v1', 'test volume plugin'],
      ['old-moved', 'v1', 'test volume plugin'],
      ['new-moved', 'v1', 'test volume plugin'],
      ['committed', 'v2', 'v2'],
    ] as const) {
      it(`after "${step}": ${version}`, async () => {
        const { id, dir } = await crashAt(step);
        const again = await h.open({ contentStore: store });
        expect(again.inspect(id).Config.Description).toBe(description);
        expect(await readFile(path.join(dir, 'rootfs/bin/plugin'), 'utf8')).toBe(version);
        expect((await readdir(dir)).sort()).toEqual(['config.json', 'rootfs']);
      });
    }
  });

  it('collects blobs no plugin references after a remove, and waits for leases', async () => {
    for (const c of ['a', 'b', 'c', 'd', 'e']) store.blobs.add(sha(c));
    await m.installFromRootfs('vol', await options({ x: '1' }));
    await m.gc();
    expect([...store.blobs].sort()).toEqual([sha('a'), sha('c'), sha('d')]);

    // While a fetch holds a lease, its blobs (not referenced yet) are kept.
    let release!: () => void;
    const held = m.withContentLease(() => new Promise<void>((resolve) => (release = resolve)));
    store.blobs.add(sha('9'));
    await m.gc();
    expect(store.blobs.has(sha('9'))).toBe(true);
    release();
    await held;
    await until(() => !store.blobs.has(sha('9')), 2_000, 'the deferred collection');

    await m.remove('vol');
    await until(() => store.blobs.size === 0, 2_000, 'the collection after remove');
  });

  it('records the image a push built: Config.rootfs names its layer', async () => {
    const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
    expect(m.image('vol')).toBeUndefined();
    await m.recordImage('vol', { configDigest: sha('c'), manifestDigest: sha('d'), blobsums: [sha('a')] });
    expect(m.image('vol')).toEqual({ configDigest: sha('c'), manifestDigest: sha('d'), blobsums: [sha('a')] });
    expect(p.object.Config.rootfs).toEqual({ type: 'layers', diff_ids: [sha('a')] });
    const again = await h.open({ contentStore: store });
    expect(again.inspect('vol').Config.rootfs).toEqual({ type: 'layers', diff_ids: [sha('a')] });
    expect(again.image('vol')?.manifestDigest).toBe(sha('d'));
  });
});
