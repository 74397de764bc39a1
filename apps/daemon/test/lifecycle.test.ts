import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Berthd, runBerthd } from './harness.js';

/** Start, stop, restart and kill -9 of the real binary; configuration errors; the sockets it makes. */

const started: Berthd[] = [];
async function start(...args: Parameters<typeof Berthd.start>): Promise<Berthd> {
  const daemon = await Berthd.start(...args);
  started.push(daemon);
  return daemon;
}

afterEach(async () => {
  for (const daemon of started.splice(0)) await daemon.cleanup();
});

const filters = (f: Record<string, string[]>): string => encodeURIComponent(JSON.stringify(f));

describe('start and stop', () => {
  it('says where it listens, and stops cleanly on SIGINT and SIGTERM', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const daemon = await start();
      expect(daemon.stdout).toBe(`berthd listening on unix://${daemon.socket}\nexport DOCKER_HOST=unix://${daemon.socket}\n`);
      expect(await readFile(daemon.pidfile, 'utf8')).toBe(String(daemon.pid));
      expect((await stat(daemon.socket)).mode & 0o777).toBe(0o660);
      expect(await daemon.stop(signal)).toEqual({ code: 0, signal: null });
      await expect(stat(daemon.socket)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(daemon.pidfile)).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('gives the socket to the requested group', async () => {
    const daemon = await start({ args: ['--group', '4242'] });
    expect((await stat(daemon.socket)).gid).toBe(4242);
  });

  it('writes JSON log lines when asked', async () => {
    const daemon = await start({ args: ['--log-format', 'json', '--log-level', 'debug'] });
    await daemon.http({ path: '/_ping' });
    const lines = daemon.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(lines).toContainEqual(expect.objectContaining({ level: 'debug', msg: 'Calling GET /_ping' }));
  });
});

describe('refusing to start', () => {
  it('refuses a second daemon on the same pidfile or the same socket', async () => {
    const first = await start();
    const samePidfile = await runBerthd(['--data-root', join(first.dir, 'd2'), '--pidfile', first.pidfile, '-H', `unix://${join(first.dir, 'other.sock')}`]);
    expect(samePidfile).toEqual({
      code: 1,
      stdout: '',
      stderr: `failed to start daemon, ensure berthd is not running or delete ${first.pidfile}: process with PID ${first.pid} is still running\n`,
    });
    const sameSocket = await runBerthd(['--data-root', join(first.dir, 'd3'), '--exec-root', join(first.dir, 'e3'), '-H', `unix://${first.socket}`]);
    expect(sameSocket).toEqual({ code: 1, stdout: '', stderr: `failed to start daemon: another daemon is already listening on ${first.socket}\n` });
    expect((await first.http({ path: '/_ping' })).status).toBe(200);
  });

  it('exits 1 with a clear message on bad flags and configuration', async () => {
    expect(await runBerthd(['--nope'])).toEqual({ code: 1, stdout: '', stderr: "unknown flag: --nope\nSee 'berthd --help'.\n" });
    expect(await runBerthd(['-H', 'tcp://127.0.0.1:2375'])).toMatchObject({ code: 1, stderr: expect.stringContaining('unsupported host "tcp://127.0.0.1:2375"') });
    const dir = (await start()).dir;
    const file = join(dir, 'bad.json');
    await writeFile(file, '{"data-root": "/x", "live-restores": true}');
    expect(await runBerthd(['--config-file', file])).toEqual({
      code: 1,
      stdout: '',
      stderr: `unable to configure the Docker daemon with file ${file}: the following directives don't match any configuration option: live-restores\n`,
    });
    await writeFile(file, '{"data-root": "/x"}');
    expect(await runBerthd(['--config-file', file, '--data-root', '/y'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `unable to configure the Docker daemon with file ${file}: the following directives are specified both as a flag and in the configuration file: data-root: (from flag: /y, from file: /x)\n`,
    });
    const noGroup = await runBerthd(['--data-root', join(dir, 'g'), '--exec-root', join(dir, 'g'), '--group', 'no-such-group-here']);
    expect(noGroup).toEqual({ code: 1, stdout: '', stderr: 'failed to start daemon: group no-such-group-here not found\n' });
  });

  it('prints help and version', async () => {
    const help = await runBerthd(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage:  berthd [OPTIONS]');
    expect(await runBerthd(['--version'])).toEqual({ code: 0, stdout: 'berthd version 0.0.0\n', stderr: '' });
  });
});

describe('restarts', () => {
  it('TestDaemonRestartLocalVolumes', async () => {
    let daemon = await start();
    expect((await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'persistent', Labels: { a: 'b' } } })).status).toBe(201);
    const before = (await daemon.http({ path: '/volumes/persistent' })).json;
    daemon = await daemon.restart();
    started.push(daemon);
    expect((await daemon.http({ path: '/volumes/persistent' })).json).toEqual(before);
  });

  it('keeps a 201 create through kill -9, and takes over the stale socket and pidfile', async () => {
    let daemon = await start();
    expect((await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'acked' } })).status).toBe(201);
    daemon = await daemon.restart({ kill: true });
    started.push(daemon);
    expect((await daemon.http({ path: '/volumes/acked' })).status).toBe(200);
    expect(await readFile(daemon.pidfile, 'utf8')).toBe(String(daemon.pid));
  });

  for (const kill of [false, true]) {
    it(`keeps a mount reference across a ${kill ? 'kill -9' : 'graceful restart'}`, async () => {
      let daemon = await start();
      await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'held' } });
      await daemon.http({ method: 'POST', path: '/volumes/create', body: { Name: 'free' } });
      expect((await daemon.http({ method: 'POST', path: '/volumes/held/mount', body: { ID: 'job-42' } })).status).toBe(200);

      daemon = await daemon.restart({ kill });
      started.push(daemon);

      expect(await daemon.http({ method: 'DELETE', path: '/volumes/held?force=1' })).toMatchObject({
        status: 409,
        json: { message: 'remove held: volume is in use - [job-42]' },
      });
      const names = async (f: Record<string, string[]>): Promise<string[]> =>
        ((await daemon.http({ path: `/volumes?filters=${filters(f)}` })).json as { Volumes: Array<{ Name: string }> }).Volumes.map((v) => v.Name);
      expect(await names({ dangling: ['false'] })).toEqual(['held']);
      expect(await names({ dangling: ['true'] })).toEqual(['free']);
      const pruned = await daemon.http({ method: 'POST', path: `/volumes/prune?filters=${filters({ all: ['true'] })}` });
      expect(pruned.json).toEqual({ VolumesDeleted: ['free'], SpaceReclaimed: 0 });

      expect((await daemon.http({ method: 'POST', path: '/volumes/held/unmount', body: { ID: 'job-42' } })).status).toBe(204);
      expect((await daemon.http({ method: 'DELETE', path: '/volumes/held' })).status).toBe(204);
    });
  }
});
