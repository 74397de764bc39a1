import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Filters } from '@berth/filters';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeExecutor } from '../test/fake-executor.js';
import { Harness, minimalContext, rejection, tarOf, until, VOLUME_CONFIG } from '../test/helpers.js';
import { PluginManager } from './index.js';
import { mountsUnder } from './mounts.js';

describe('PluginManager', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await Harness.create();
  });
  afterEach(async () => {
    await h.dispose();
  });

  describe('createFromContext', () => {
    it('creates a disabled plugin in moby\'s layout (TestPluginCreate)', async () => {
      const m = await h.open();
      const p = await m.createFromContext('foo', minimalContext());
      expect(p.name).toBe('foo:latest');
      expect(p.id).toMatch(/^[a-f0-9]{64}$/);
      expect(p.enabled).toBe(false);
      expect(p.object).toMatchObject({
        Name: 'foo:latest',
        PluginReference: 'foo:latest',
        Enabled: false,
        Settings: { Mounts: [], Env: [], Args: [], Devices: [] },
        Config: { Description: 'foo plugin', Entrypoint: null, rootfs: { type: 'layers', diff_ids: [expect.stringMatching(/^sha256:/)] } },
      });
      const dir = path.join(h.root, p.id);
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect((await stat(path.join(dir, 'config.json'))).mode & 0o777).toBe(0o600);
      expect((await stat(path.join(dir, 'rootfs'))).isDirectory()).toBe(true);
      const saved = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
      expect(saved.plugin).toEqual(p.object);
      expect(saved.Rootfs).toBe(path.join(dir, 'rootfs'));
      expect(h.events).toEqual([[p.id, 'foo:latest', 'create']]);
      expect(m.inspect('foo')).toBe(p.object);

      const dup = await rejection(m.createFromContext('docker.io/library/foo:latest', minimalContext()));
      expect(dup).toMatchObject({ kind: 'conflict', message: 'plugin foo:latest already exists' });
      expect(m.list()).toHaveLength(1);
      expect((await h.leftovers()).tmp).toEqual([]);
    });

    const refusals: Array<[string, string, () => AsyncIterable<Uint8Array>, string | RegExp]> = [
      ['a bad name', 'Foo', minimalContext, /^failed to parse reference Foo: invalid reference format/],
      ['a digest', `foo@sha256:${'a'.repeat(64)}`, minimalContext, 'canonical references are not permitted'],
      ['no config.json', 'foo', () => tarOf([{ name: 'rootfs/', type: 'directory' }]), 'config not found'],
      ['no rootfs', 'foo', () => tarOf([{ name: 'config.json', content: '{}' }]), 'no rootfs found: EOF'],
      ['an empty context', 'foo', () => tarOf([]), 'no rootfs found: EOF'],
      ['an invalid config', 'foo', () => tarOf([{ name: 'config.json', content: '{"Entrypoint": "x"}' }, { name: 'rootfs/', type: 'directory' }]), /^failed to parse config: json: cannot unmarshal string/],
      ['a ../ entry', 'foo', () => tarOf([{ name: 'config.json', content: '{}' }, { name: 'rootfs/../../x', content: 'x' }]), /paths must not contain/],
      ['an absolute entry', 'foo', () => tarOf([{ name: '/rootfs/x', content: 'x' }]), /absolute paths are not allowed/],
      ['a symlink out', 'foo', () => tarOf([{ name: 'config.json', content: '{}' }, { name: 'rootfs/x', type: 'symlink', linkname: '../../..' }]), /points outside the rootfs/],
      ['a hard link out', 'foo', () => tarOf([{ name: 'config.json', content: '{}' }, { name: 'rootfs/x', type: 'link', linkname: '../etc/passwd' }]), /points outside the rootfs/],
      ['a device node', 'foo', () => tarOf([{ name: 'config.json', content: '{}' }, { name: 'rootfs/null', type: 'character-device' }]), /character devices are not allowed/],
    ];
    for (const [what, name, context, message] of refusals) {
      it(`refuses ${what} with a 4xx and leaves nothing behind`, async () => {
        const m = await h.open();
        const err = await rejection(m.createFromContext(name, context()));
        expect(err.kind).toBe('invalid-parameter');
        expect(err.message).toMatch(message);
        expect(await h.leftovers()).toEqual({ plugins: [], tmp: [] });
        expect(m.list()).toEqual([]);
        expect(h.events).toEqual([]);
      });
    }
  });

  describe('names', () => {
    it('resolves name, name:tag, ID and ID prefix through the store (TestPluginIDPrefix)', async () => {
      const m = await h.open();
      const p = await m.createFromContext('vieux/sshfs', minimalContext(VOLUME_CONFIG));
      for (const ref of ['vieux/sshfs', 'vieux/sshfs:latest', 'docker.io/vieux/sshfs', p.id, p.id.slice(0, 5)]) {
        expect(m.inspect(ref).Id, ref).toBe(p.id);
      }
      await m.set(p.id.slice(0, 5), ['DEBUG=1']);
      await m.enable(p.id.slice(0, 5));
      expect(m.list(Filters.of([['enabled', 'true']])).map((o) => o.Id)).toEqual([p.id]);
      await m.disable(p.id.slice(0, 5));
      await m.remove(p.id.slice(0, 5));
      expect(m.list()).toEqual([]);
      expect(() => m.inspect(p.id.slice(0, 5))).toThrow(`plugin "${p.id.slice(0, 5)}" not found`);
      // Events carry what the caller typed.
      expect(h.events.map(([, name, action]) => `${action} ${name}`)).toEqual([
        'create vieux/sshfs:latest',
        `enable ${p.id.slice(0, 5)}`,
        `disable ${p.id.slice(0, 5)}`,
        `remove ${p.id.slice(0, 5)}`,
      ]);
    });
  });

  describe('list', () => {
    it('filters on enabled and on the capability of every interface type', async () => {
      const m = await h.open();
      const volume = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.createFromContext('both', minimalContext({ Interface: { Types: ['docker.volumedriver/1.0', 'docker.authz/1.0'] } }));
      await m.createFromContext('none', minimalContext());
      await m.enable('vol');
      const names = (f: Filters): string[] => m.list(f).map((o) => o.Name).sort();
      expect(names(Filters.empty())).toEqual(['both:latest', 'none:latest', 'vol:latest']);
      expect(names(Filters.of([['enabled', 'true']]))).toEqual(['vol:latest']);
      expect(names(Filters.of([['enabled', '0']]))).toEqual(['both:latest', 'none:latest']);
      expect(names(Filters.of([['capability', 'volumedriver']]))).toEqual(['none:latest', 'vol:latest']);
      expect(names(Filters.of([['capability', 'volume']]))).toEqual(['none:latest', 'vol:latest']);
      expect(names(Filters.of([['capability', 'volumedriver|authz']]))).toEqual(['both:latest', 'none:latest', 'vol:latest']);
      expect(() => m.list(Filters.of([['enable', 'true']]))).toThrow("invalid filter 'enable'");
      expect(() => m.list(Filters.of([['enabled', 'yes']]))).toThrow("invalid filter 'enabled=[yes]'");
      expect(volume.enabled).toBe(true);
    });
  });

  describe('enable and disable', () => {
    it('starts the plugin, waits for its socket, and stops it (TestPluginEnableDisableNegative)', async () => {
      const m = await h.open();
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      let handled = 0;
      h.store.handle('VolumeDriver', () => handled++);
      await m.enable('vol', { timeoutSeconds: 7 });
      expect(p.enabled).toBe(true);
      expect(m.isRunning('vol')).toBe(true);
      expect(p.socketPath).toBe(path.join(h.execRoot, p.id, 'plugin.sock'));
      expect(p.timeoutMs).toBe(7_000);
      expect(handled).toBe(1);
      expect(h.executor.specs.get(p.id)?.process.args).toEqual(['/bin/plugin']);
      expect(h.logs).toContainEqual(['info', `started ${p.id}`, { plugin: p.id }]);
      for (const f of ['etc/hosts', 'dev/pts', 'proc']) await stat(path.join(p.rootfs, f));
      const saved = JSON.parse(await readFile(path.join(h.root, p.id, 'config.json'), 'utf8'));
      expect(saved.plugin.Enabled).toBe(true);

      const again = await rejection(m.enable('vol'));
      expect(again).toMatchObject({ kind: 'conflict', message: 'plugin already enabled: plugin vol:latest is enabled' });

      await m.disable('vol');
      expect(p.enabled).toBe(false);
      expect(m.isRunning('vol')).toBe(false);
      expect(p.socketPath).toBeUndefined();
      expect(h.executor.calls).toContain(`signal ${p.id} SIGTERM`);
      const twice = await rejection(m.disable('vol'));
      expect(twice).toMatchObject({ kind: 'conflict', message: 'plugin is already disabled: plugin vol:latest found but disabled' });
    });

    it('refuses to disable or remove a plugin in use, naming the volumes, unless forced', async () => {
      const m = await h.open({ usersOf: (name) => (name === 'vol:latest' ? ['v1', 'v2'] : []) });
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.enable('vol');
      await h.store.get('vol', 'VolumeDriver', 'acquire');
      const inUse = await rejection(m.disable('vol'));
      expect(inUse).toMatchObject({ kind: 'conflict', message: 'plugin vol:latest is in use by volumes: v1, v2' });
      expect((await rejection(m.remove('vol'))).message).toMatch(/^plugin vol:latest is in use/);
      await m.disable('vol', { force: true });
      expect(p.enabled).toBe(false);
    });

    it('refuses to remove an enabled plugin without force, and removes it with force', async () => {
      const m = await h.open();
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.enable('vol');
      expect(await rejection(m.remove('vol'))).toMatchObject({ kind: 'conflict', message: 'plugin vol:latest is enabled' });
      await m.remove('vol', { force: true });
      expect(h.executor.isRunning(p.id)).toBe(false);
      expect(await h.leftovers()).toEqual({ plugins: [], tmp: [] });
      expect(await readdir(h.execRoot)).toEqual([]);
      expect(() => m.inspect('vol')).toThrow('plugin "vol" not found');
    });

    it('stops and keeps disabled a plugin whose socket never answers', async () => {
      h.executor.silent = true;
      const m = await h.open({ socketTimeoutMs: 100 });
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      const err = await rejection(m.enable('vol'));
      expect(err.message).toMatch(/^dial unix .*plugin\.sock: /);
      expect(p.enabled).toBe(false);
      expect(h.executor.isRunning(p.id)).toBe(false);
      expect(m.isRunning('vol')).toBe(false);
    });

    it('escalates to SIGKILL when SIGTERM is ignored', async () => {
      h.executor.ignoreTerm = true;
      const m = await h.open({ stopTimeoutMs: 50 });
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.enable('vol');
      await m.disable('vol');
      expect(h.executor.calls.filter((c) => c.startsWith('signal'))).toEqual([`signal ${p.id} SIGTERM`, `signal ${p.id} SIGKILL`]);
      expect(h.executor.isRunning(p.id)).toBe(false);
    });

    it('can force-remove a plugin whose start failed (TestCreateFailed)', async () => {
      h.executor.failCreate = new Error('Create failed');
      const m = await h.open();
      const p = await m.createFromContext('create', minimalContext(VOLUME_CONFIG));
      expect((await rejection(m.enable('create'))).message).toBe('Create failed');
      expect(p.enabled).toBe(false);
      await m.remove('create', { force: true });
      expect(await h.leftovers()).toEqual({ plugins: [], tmp: [] });
    });
  });

  describe('set', () => {
    it('applies settings while disabled and persists them (TestPluginSet)', async () => {
      const m = await h.open();
      const p = await m.createFromContext(
        'vol',
        minimalContext({
          ...VOLUME_CONFIG,
          Mounts: [{ Name: 'pmount1', Settable: ['source'], Source: '/foo', Destination: '/m1', Type: 'bind', Options: ['rbind'] }],
        }),
      );
      await m.createFromContext(
        'bad',
        minimalContext({
          Mounts: [{ Name: 'pmount2', Settable: ['source'], Destination: '/m2', Type: 'bind' }],
          Linux: { Devices: [{ Name: 'pdev2', Settable: ['path'] }] },
        }),
      );
      await m.set('vol', ['DEBUG=1', 'pmount1.source=bar']);
      expect(p.object.Settings.Env).toEqual(['DEBUG=1']);
      expect(p.object.Settings.Mounts?.[0]?.Source).toBe('bar');
      expect((await rejection(m.set('bad', ['pmount2.source=bar']))).message).toBe('plugin config has no mount source');
      expect((await rejection(m.set('bad', ['pdev2.path=/dev/x']))).message).toBe('plugin config has no device path');
      const saved = JSON.parse(await readFile(path.join(h.root, p.id, 'config.json'), 'utf8'));
      expect(saved.plugin.Settings.Env).toEqual(['DEBUG=1']);
      // A second manager sees the settings, and the plugin gets them.
      await m.shutdown();
      const again = await h.open();
      expect(again.inspect('vol').Settings.Env).toEqual(['DEBUG=1']);
      await again.enable('vol');
      expect(h.executor.specs.get(p.id)?.process.env).toContain('DEBUG=1');
      expect(h.executor.specs.get(p.id)?.mounts.find((x) => x.destination === '/m1')?.source).toBe('bar');
      const active = await rejection(again.set('vol', ['DEBUG=0']));
      expect(active).toMatchObject({ kind: 'system', message: 'cannot set on an active plugin, disable plugin before setting' });
    });
  });

  describe('reload', () => {
    it('skips broken plugin directories, finishes removals, and clears creates in progress', async () => {
      const m = await h.open();
      const good = await m.createFromContext('good', minimalContext());
      await m.shutdown();
      const noConfig = 'b'.repeat(64);
      const badConfig = 'c'.repeat(64);
      await mkdir(path.join(h.root, noConfig, 'rootfs'), { recursive: true });
      await mkdir(path.join(h.root, badConfig), { recursive: true });
      await writeFile(path.join(h.root, badConfig, 'config.json'), '{"plugin": ');
      await mkdir(path.join(h.root, `${'d'.repeat(64)}-removing`, 'rootfs'), { recursive: true });
      await mkdir(path.join(h.root, 'tmp', '.rootfs123', 'bin'), { recursive: true });

      const again = await h.open();
      expect(again.list().map((o) => o.Id)).toEqual([good.id]);
      expect((await readdir(h.root)).sort()).toEqual([badConfig, noConfig, good.id, 'tmp'].sort());
      expect(await readdir(path.join(h.root, 'tmp'))).toEqual([]);
      expect(h.logs.filter(([level]) => level === 'warn' || level === 'error').map(([level, msg, f]) => [level, msg, f?.['id']])).toEqual(
        expect.arrayContaining([
          ['warn', 'missing plugin config, skipping: this may be caused due to a failed remove and requires manual cleanup.', noConfig],
          ['error', 'error loading plugin, skipping', badConfig],
        ]),
      );
    });

    it('starts enabled plugins again, and leaves disabled ones', async () => {
      const m = await h.open();
      const on = await m.createFromContext('on', minimalContext(VOLUME_CONFIG));
      const off = await m.createFromContext('off', minimalContext(VOLUME_CONFIG));
      await m.enable('on');
      await m.shutdown();
      expect(h.executor.isRunning(on.id)).toBe(false);

      const again = await h.open();
      expect(again.inspect('on').Enabled).toBe(true);
      expect(again.isRunning('on')).toBe(true);
      expect(again.inspect('off').Enabled).toBe(false);
      expect(h.executor.isRunning(off.id)).toBe(false);
      expect(h.store.getV2Plugin('on').socketPath).toBe(path.join(h.execRoot, on.id, 'plugin.sock'));
    });

    for (const liveRestore of [false, true]) {
      it(`handles a plugin already running on startup, live restore ${liveRestore ? 'on' : 'off'} (TestPluginAlreadyRunningOnStartup)`, async () => {
        const m = await h.open({ liveRestore });
        const p = await m.createFromContext('running', minimalContext(VOLUME_CONFIG));
        await m.enable('running');
        await m.shutdown();
        // Live restore leaves it running; without, simulate a daemon that was killed.
        if (!liveRestore) await h.executor.start(p.id, path.join(h.execRoot, p.id, 'plugin.sock'));
        expect(h.executor.isRunning(p.id)).toBe(true);
        h.executor.calls.length = 0;

        const again = await h.open({ liveRestore });
        const restored = h.store.getV2Plugin(p.id);
        expect(restored.socketPath).toBe(path.join(h.execRoot, p.id, 'plugin.sock'));
        expect(again.isRunning(p.id)).toBe(true);
        expect(h.executor.calls).toEqual(
          liveRestore ? [`restore ${p.id}`] : [`restore ${p.id}`, `signal ${p.id} SIGTERM`, `create ${p.id}`],
        );
        await again.shutdown();
        expect(h.executor.isRunning(p.id)).toBe(liveRestore);
      });
    }
  });

  describe('exits', () => {
    it('restarts a plugin that exits while enabled, with back-off, keeping it enabled meanwhile', async () => {
      const restarts: Array<[string, boolean]> = [];
      const m = await h.open({
        restartPolicy: { initialDelayMs: 100, maxDelayMs: 1_000, resetAfterMs: 60_000 },
        onRestart: (name, started) => restarts.push([name, started]),
      });
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.enable('vol');
      const restartedAt: number[] = [];
      for (let i = 0; i < 3; i++) {
        const before = Date.now();
        await h.executor.crash(p.id);
        await until(() => !m.isRunning('vol'), 1_000, 'the exit to be noticed');
        expect(p.enabled).toBe(true);
        expect(m.inspect('vol').Enabled).toBe(true);
        expect(p.socketPath).toBeUndefined();
        await until(() => m.isRunning('vol'), 5_000, 'the restart');
        restartedAt.push(Date.now() - before);
      }
      expect(p.socketPath).toBeDefined();
      // 100, 200, 400 ms.
      expect(restartedAt[0]).toBeGreaterThanOrEqual(90);
      expect(restartedAt[1]).toBeGreaterThanOrEqual(190);
      expect(restartedAt[2]).toBeGreaterThanOrEqual(390);
      expect(h.logs.some(([level, msg]) => level === 'warn' && msg === 'plugin exited while enabled; restarting it')).toBe(true);
      // Told once the restart has finished (after the socket answered and the state was saved).
      await until(() => restarts.length === 3, 5_000, 'the third restart to be reported');
      expect(restarts).toEqual([
        ['vol:latest', true],
        ['vol:latest', true],
        ['vol:latest', true],
      ]);
    });

    it('keeps trying a plugin that fails to come back, and stops when it is disabled', async () => {
      const m = await h.open();
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.enable('vol');
      h.executor.failCreate = new Error('no runtime');
      await h.executor.crash(p.id);
      await until(() => h.executor.calls.filter((c) => c === `create ${p.id}`).length >= 3, 5_000, 'several attempts');
      expect(p.enabled).toBe(true);
      await m.disable('vol');
      const attempts = h.executor.calls.length;
      await new Promise((r) => setTimeout(r, 300));
      expect(h.executor.calls.length).toBe(attempts);
      expect(p.enabled).toBe(false);
    });

    it('does not restart a plugin that was disabled, or after shutdown', async () => {
      const m = await h.open();
      const p = await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
      await m.enable('vol');
      await m.disable('vol');
      await new Promise((r) => setTimeout(r, 100));
      expect(h.executor.isRunning(p.id)).toBe(false);
      await m.enable('vol');
      await m.shutdown();
      await new Promise((r) => setTimeout(r, 100));
      expect(h.executor.isRunning(p.id)).toBe(false);
      expect(h.executor.closed).toBe(true);
      expect((await rejection(m.enable('vol'))).kind).toBe('unavailable');
    });

    it('ignores exits of plugins it does not run', async () => {
      const m = await h.open();
      m.handleExitEvent('e'.repeat(64));
      expect(h.logs.at(-1)?.[1]).toBe('exit of a plugin that is not running');
    });
  });

  it.skipIf(process.getuid?.() !== 0)("removing one plugin leaves another's mounts alone (TestManagerWithPluginMounts)", async () => {
    const m = await h.open();
    const p1 = await m.createFromContext('test1', minimalContext(VOLUME_CONFIG));
    const p2 = await m.createFromContext('test2', minimalContext(VOLUME_CONFIG));
    await m.enable('test2');
    const p2Mount = path.join(p2.rootfs, 'testmount');
    await mkdir(p2Mount);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', p2Mount]);
    try {
      const p1Mount = path.join(p1.rootfs, 'testmount');
      await mkdir(p1Mount);
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', p1Mount]);
      await m.remove(p1.id, { force: true });
      expect(await mountsUnder(path.join(h.root, p1.id))).toEqual([]);
      expect(await mountsUnder(p2Mount)).toEqual([p2Mount]);
    } finally {
      execFileSync('umount', [p2Mount]);
    }
  });

  it('refuses an exec root too long for a unix socket path', async () => {
    const m = await h.open({ execRoot: path.join(h.dir, 'x'.repeat(60)) });
    await m.createFromContext('vol', minimalContext(VOLUME_CONFIG));
    expect((await rejection(m.enable('vol'))).message).toMatch(/is longer than 107 bytes: use a shorter exec root/);
  });

  it('is typed against the real store and plugin', async () => {
    // Compile-time check: `PluginManager<Plugin>` over `PluginStore` (see test/helpers.ts).
    const m: PluginManager<import('@berth/plugin-store').Plugin> = await h.open();
    expect(m).toBeInstanceOf(PluginManager);
  });

  it('reports privileges of an installed plugin', async () => {
    const m = await h.open();
    await m.createFromContext('p', minimalContext({ Network: { Type: 'host' }, Linux: { Capabilities: ['CAP_SYS_ADMIN'] } }));
    expect(m.privileges('p').map((x) => x.Name)).toEqual(['network', 'capabilities']);
  });

  it('fails open() on an unusable root', async () => {
    await writeFile(path.join(h.dir, 'file'), 'x');
    const err = await rejection(h.open({ root: path.join(h.dir, 'file', 'plugins') }));
    expect(err.message).toMatch(/^failed to restore plugins: /);
  });

  it('uses the fake executor only through the declared contract', () => {
    const e: import('./index.js').Executor = new FakeExecutor();
    expect(typeof e.create).toBe('function');
  });
});
