import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthError } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { fakeClock, hang, staleSocket, startFakePlugin, tempDir } from '../test/fake-plugin.js';
import type { Clock } from './clock.js';
import { LegacyRegistry, type LegacyRegistryOptions, type PluginClient } from './index.js';

async function registry(options: LegacyRegistryOptions = {}): Promise<{ dir: string; reg: LegacyRegistry }> {
  const dir = await tempDir();
  const reg = new LegacyRegistry({
    dirs: { socketDirs: [dir], specDirs: [dir] },
    discoveryGraceMs: 0,
    clock: fakeClock(),
    ...options,
  });
  return { dir, reg };
}

const sock = (dir: string, name: string): string => path.join(dir, `${name}.sock`);

async function rejection(promise: Promise<unknown>): Promise<BerthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(BerthError.is(err), `expected a BerthError, got ${String(err)}`).toBe(true);
  return err as BerthError;
}

describe('LegacyRegistry lookups', () => {
  it('returns an activated v1 plugin, checks Implements and reports missing ones (TestGet)', async () => {
    const { dir, reg } = await registry();
    await startFakePlugin(sock(dir, 'fruit'), { implements: ['apple'] });
    const plugin = await reg.get('fruit', 'apple');
    expect(plugin.name).toBe('fruit');
    expect(plugin.isV1()).toBe(true);
    expect(plugin.scopedPath('/some/mount')).toBe('/some/mount');
    expect(plugin.protocol()).toBe('moby.plugins.http/v1');
    expect(plugin.manifest.implements).toEqual(['apple']);
    expect((await rejection(reg.get('fruit', 'banana'))).message).toBe(
      'Plugin does not implement the requested driver: plugin="fruit", requested implementation="banana"',
    );
    const missing = await rejection(reg.get('this-plugin-does-not-exist', 'no-such-implementation'));
    expect(missing.kind).toBe('not-found');
    expect(missing.message).toBe('could not find plugin this-plugin-does-not-exist in v1 plugin registry: plugin not found');
    expect((await rejection(reg.get('', 'apple'))).message).toBe('Unable to find plugin without name');
  });

  it('activates once, with an empty body, shared by concurrent lookups (TestPluginWithNoManifest)', async () => {
    const { dir, reg } = await registry();
    const fake = await startFakePlugin(sock(dir, 'fruit'), {
      routes: { '/Plugin.Activate': (_req, res) => setTimeout(() => res.end('{"Implements":["apple"]}'), 50) },
    });
    const found = await Promise.all([1, 2, 3].map(() => reg.get('fruit', 'apple')));
    await reg.get('fruit', 'apple');
    expect(new Set(found).size).toBe(1);
    expect(fake.count('/Plugin.Activate')).toBe(1);
    expect(fake.received[0]?.body).toBe('');
  });

  it('accepts loose manifests and rejects broken ones', async () => {
    const { dir, reg } = await registry();
    await startFakePlugin(sock(dir, 'lower'), { routes: { '/Plugin.Activate': { implements: ['VolumeDriver'] } } });
    await startFakePlugin(sock(dir, 'nothing'), { routes: { '/Plugin.Activate': {} } });
    await startFakePlugin(sock(dir, 'wrong'), { routes: { '/Plugin.Activate': { Implements: 'VolumeDriver' } } });
    expect((await reg.get('lower', 'VolumeDriver')).manifest.implements).toEqual(['VolumeDriver']);
    expect((await rejection(reg.get('nothing', 'VolumeDriver'))).message).toMatch(/^Plugin does not implement/);
    expect((await rejection(reg.get('wrong', 'VolumeDriver'))).message).toBe(
      'Plugin.Activate: json: cannot unmarshal string into Go struct field Manifest.Implements of type []string',
    );
  });

  it('forgets a plugin whose activation failed, so the next lookup tries again (TestPluginWaitBadPlugin)', async () => {
    const { dir, reg } = await registry();
    let healthy = false;
    const fake = await startFakePlugin(sock(dir, 'flaky'), {
      routes: {
        '/Plugin.Activate': (_req, res) =>
          healthy ? res.end('{"Implements":["VolumeDriver"]}') : res.writeHead(500).end('{"Err":"some junk happened"}'),
      },
    });
    const started = Date.now();
    expect((await rejection(reg.get('flaky', 'VolumeDriver'))).message).toBe('Plugin.Activate: some junk happened');
    expect(Date.now() - started).toBeLessThan(1000);
    healthy = true;
    expect((await reg.get('flaky', 'VolumeDriver')).name).toBe('flaky');
    expect(fake.count('/Plugin.Activate')).toBe(2);
  });

  it('never blocks other names behind a plugin that hangs', async () => {
    const { dir, reg } = await registry({ activationTimeoutMs: 1500, clock: undefined });
    await startFakePlugin(sock(dir, 'slow'), { routes: { '/Plugin.Activate': hang } });
    await startFakePlugin(sock(dir, 'fast'));
    const slow = rejection(reg.get('slow', 'VolumeDriver'));
    const started = Date.now();
    await reg.get('fast', 'VolumeDriver');
    expect(Date.now() - started).toBeLessThan(500);
    const err = await slow;
    expect(err.kind).toBe('deadline-exceeded');
    expect(err.message).toBe('Plugin.Activate: the plugin did not answer within 1.5s');
    // The hung handshake is remembered: the next lookup fails at once instead of hanging again.
    const again = Date.now();
    expect((await rejection(reg.get('slow', 'VolumeDriver'))).message).toMatch(
      /^Plugin\.Activate: the plugin did not answer within 1\.5s \(remembered as unreachable: not dialled again for \d+s, /,
    );
    expect(Date.now() - again).toBeLessThan(200);
  });

  it('stops waiting for a shared activation when the caller aborts, without cancelling it', async () => {
    const { dir, reg } = await registry();
    let answer: (() => void) | undefined;
    await startFakePlugin(sock(dir, 'p'), {
      routes: { '/Plugin.Activate': (_req, res) => (answer = () => res.end('{"Implements":["VolumeDriver"]}')) },
    });
    const controller = new AbortController();
    const first = reg.get('p', 'VolumeDriver', { signal: controller.signal });
    const second = reg.get('p', 'VolumeDriver');
    await expect.poll(() => answer).toBeDefined();
    controller.abort(new Error('gone'));
    await expect(first).rejects.toThrow('gone');
    answer?.();
    expect((await second).name).toBe('p');
  });
});

describe('LegacyRegistry handlers', () => {
  it('runs handlers on activation, and a later one on the next lookup, each once (TestPluginAddHandler)', async () => {
    const { dir, reg } = await registry();
    await startFakePlugin(sock(dir, 'net'), { implements: ['NetworkDriver', 'IpamDriver'] });
    const calls: string[] = [];
    const clients: PluginClient[] = [];
    reg.handle('NetworkDriver', (name, client) => {
      calls.push(`early:${name}`);
      clients.push(client);
    });
    const plugin = await reg.get('net', 'NetworkDriver');
    expect(calls).toEqual(['early:net']);
    expect(clients[0]).toBe(plugin.client());
    reg.handle('IpamDriver', (name) => calls.push(`late:${name}`));
    expect(calls).toEqual(['early:net']);
    await reg.get('net', 'NetworkDriver');
    await reg.get('net', 'IpamDriver');
    expect(calls).toEqual(['early:net', 'late:net']);
  });

  it('keeps going when a handler throws', async () => {
    const { dir, reg } = await registry();
    await startFakePlugin(sock(dir, 'p'));
    reg.handle('VolumeDriver', () => {
      throw new Error('handler bug');
    });
    expect((await reg.get('p', 'VolumeDriver')).name).toBe('p');
  });
});

describe('LegacyRegistry getAll', () => {
  it('returns the scanned plugins implementing the capability (TestGetAll)', async () => {
    const { dir, reg } = await registry();
    const apple = await startFakePlugin({ tcp: true }, { implements: ['apple'] });
    await writeFile(path.join(dir, 'example.json'), JSON.stringify({ Name: 'example', Addr: apple.addr }));
    await startFakePlugin(sock(dir, 'pear'), { implements: ['pear'] });
    const all = await reg.getAll('apple');
    expect(all.map((p) => p.name)).toEqual(['example']);
    expect(await reg.getAll('apple')).toEqual(all);
    expect(apple.count('/Plugin.Activate')).toBe(1);
  });

  it('leaves out dead, hung and misconfigured plugins without waiting for them', async () => {
    const { dir, reg } = await registry({ probeTimeoutMs: 300, clock: undefined });
    await startFakePlugin(sock(dir, 'good'));
    await startFakePlugin(sock(dir, 'hung'), { routes: { '/Plugin.Activate': hang } });
    await staleSocket(sock(dir, 'stale'));
    await writeFile(path.join(dir, 'broken.spec'), 'not-a-url');
    const started = Date.now();
    const leftOut: Array<[string, string]> = [];
    const all = await reg.getAll('VolumeDriver', { onLeftOut: (name, error) => leftOut.push([name, error.message]) });
    expect(all.map((p) => p.name)).toEqual(['good']);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(reg.isUnreachable('stale')).toBe(true);
    // Only the plugin still in its handshake is reported: the dead and the broken ones failed.
    expect(leftOut).toEqual([['hung', 'Plugin.Activate: the plugin did not answer within 300ms']]);
  });

  it('leaves out a plugin whose lookup is retrying a dead address', async () => {
    const dir = await tempDir();
    let release: (() => void) | undefined;
    const clock: Clock = {
      now: () => Date.now(),
      sleep: () => new Promise<void>((resolve) => (release = resolve)),
    };
    const reg = new LegacyRegistry({ dirs: { socketDirs: [dir], specDirs: [dir] }, discoveryGraceMs: 0, clock });
    await staleSocket(sock(dir, 'down'));
    const lookup = rejection(reg.get('down', 'VolumeDriver'));
    await expect.poll(() => release).toBeDefined();
    const started = Date.now();
    expect(await reg.getAll('VolumeDriver')).toEqual([]);
    expect(Date.now() - started).toBeLessThan(500);
    reg.close();
    release?.();
    expect((await lookup).kind).toBe('canceled');
  });
});

describe('LegacyRegistry: a start-up window for late plugins, then fast failure', () => {
  it('answers "not found" when nothing appears during the window, and at once after it', async () => {
    const { dir, reg } = await registry({ discoveryGraceMs: 300 });
    expect(await reg.find('nosuch', 'VolumeDriver')).toBeUndefined();
    // After the window a lookup looks once (how fast: `pnpm bench`), and no answer is remembered:
    // a plugin that appears afterwards is found by the next lookup.
    expect(await reg.find('later', 'VolumeDriver')).toBeUndefined();
    await startFakePlugin(sock(dir, 'later'));
    expect((await reg.get('later', 'VolumeDriver')).name).toBe('later');
  });

  it('answers at once for names no plugin file can have', async () => {
    const { reg } = await registry({ discoveryGraceMs: 3000 });
    const started = Date.now();
    for (const name of ['vieux/sshfs:latest', '../etc', '..']) expect(await reg.find(name, 'VolumeDriver')).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(100);
  });

  it('finds a plugin whose socket appears 500 ms after the lookup started', async () => {
    const { dir, reg } = await registry({ discoveryGraceMs: 3000 });
    setTimeout(() => void startFakePlugin(sock(dir, 'late')), 500);
    const started = Date.now();
    expect((await reg.get('late', 'VolumeDriver')).name).toBe('late');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('finds a spec written late, in a sub-directory, even half-written at first', async () => {
    const { dir, reg } = await registry({ discoveryGraceMs: 3000 });
    const fake = await startFakePlugin({ tcp: true });
    const spec = path.join(dir, 'retry', 'retry.spec');
    setTimeout(async () => {
      await mkdir(path.dirname(spec));
      await writeFile(spec, '');
      setTimeout(() => void writeFile(spec, fake.addr), 200);
    }, 200);
    expect((await reg.get('retry', 'VolumeDriver')).addr).toBe(fake.addr);
    expect(fake.count('/Plugin.Activate')).toBe(1);
  });

  it('finds a socket in a plugin directory that did not exist when the lookup started', async () => {
    const root = await tempDir();
    const socketDir = path.join(root, 'run', 'docker', 'plugins');
    const reg = new LegacyRegistry({ dirs: { socketDirs: [socketDir], specDirs: [] }, discoveryGraceMs: 5000, clock: fakeClock() });
    const lookup = reg.get('appears', 'VolumeDriver');
    setTimeout(async () => {
      await mkdir(socketDir, { recursive: true });
      await startFakePlugin(sock(socketDir, 'appears'));
    }, 200);
    expect((await lookup).name).toBe('appears');
  });

  it('waits for each unknown name on its own, and shares one verdict per name', async () => {
    const { dir, reg } = await registry({ discoveryGraceMs: 1500 });
    const names = Array.from({ length: 10 }, (_, i) => `unknown-${i}`);
    const lookups = [...names, ...names].map((name) => reg.find(name, 'VolumeDriver'));
    const late = reg.get('late-one', 'VolumeDriver');
    setTimeout(() => void startFakePlugin(sock(dir, 'late-one')), 200);
    expect((await late).name).toBe('late-one');
    expect(await Promise.all(lookups)).toEqual(Array(20).fill(undefined));
  });

  it('retries a plugin whose spec exists but which is not listening yet (moby LookupNotBlocked)', async () => {
    const dir = await tempDir();
    const up = await startFakePlugin(sock(dir, 'up'));
    await writeFile(path.join(dir, 'down.spec'), 'tcp://127.0.0.1:1');
    const clock = fakeClock();
    const realSleep = clock.sleep;
    clock.sleep = (ms, signal) => realSleep(ms, signal).then(() => new Promise((r) => setTimeout(r, 50)));
    const reg = new LegacyRegistry({ dirs: { socketDirs: [dir], specDirs: [dir] }, discoveryGraceMs: 0, clock });
    let downSettled = false;
    const down = rejection(reg.get('down', 'VolumeDriver')).finally(() => (downSettled = true));
    expect((await reg.get('up', 'VolumeDriver')).addr).toBe(up.addr);
    expect(downSettled).toBe(false);
    const err = await down;
    expect(clock.sleeps).toEqual([1000, 2000, 4000, 8000]);
    expect(err.message).toBe('Plugin.Activate: dial tcp 127.0.0.1:1: connect: connection refused');
  });
});

describe('LegacyRegistry: memory of unreachable plugins', () => {
  it('does not dial a stale socket again until it changes or the memory expires', async () => {
    const clock = fakeClock();
    const { dir, reg } = await registry({ clock, unreachableTtlMs: 10_000 });
    const socket = sock(dir, 'stale');
    await staleSocket(socket);

    const first = await rejection(reg.get('stale', 'VolumeDriver'));
    expect(first.message).toBe(`Plugin.Activate: dial unix ${socket}: connect: connection refused`);
    expect(clock.sleeps).toEqual([1000, 2000, 4000, 8000]);
    expect(reg.isUnreachable('stale')).toBe(true);

    clock.sleeps.length = 0;
    const second = await rejection(reg.get('stale', 'VolumeDriver'));
    expect(second.kind).toBe('unavailable');
    expect(second.message).toMatch(
      /^Plugin\.Activate: dial unix .*: connect: connection refused \(remembered as unreachable: not dialled again for 10s, or until its socket or spec file changes\)$/,
    );
    expect(clock.sleeps).toEqual([]);

    clock.advance(10_000);
    await rejection(reg.get('stale', 'VolumeDriver'));
    expect(clock.sleeps).toEqual([1000, 2000, 4000, 8000]);

    // The plugin comes back: a new socket file means a new process, dialled at once.
    await rm(socket);
    const fake = await startFakePlugin(socket);
    expect((await reg.get('stale', 'VolumeDriver')).name).toBe('stale');
    expect(fake.count('/Plugin.Activate')).toBe(1);
    expect(reg.isUnreachable('stale')).toBe(false);
  });

  it('fails calls to an activated plugin fast once it died', async () => {
    const clock = fakeClock();
    const { dir, reg } = await registry({ clock });
    const socket = sock(dir, 'p');
    const fake = await startFakePlugin(socket, { routes: { '/VolumeDriver.List': { Volumes: [] } } });
    const client = (await reg.get('p', 'VolumeDriver')).client();
    expect(await client.call('VolumeDriver.List', {})).toEqual({ Volumes: [] });
    await fake.close();
    await staleSocket(socket);
    await rejection(client.call('VolumeDriver.List', {}));
    clock.sleeps.length = 0;
    expect((await rejection(client.call('VolumeDriver.List', {}))).message).toMatch(/remembered as unreachable/);
    expect(clock.sleeps).toEqual([]);
  });
});
