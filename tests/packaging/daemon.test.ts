import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { npmEnv, packWithDeps } from './pack.js';
import { ScopedRegistry } from './scoped-registry.js';

const run = promisify(execFile);

/** One request over a unix socket; the answer's status and body. */
function call(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// The program users run is an npm package too: installed globally, alone, into a prefix of its own.
describe('@berth/daemon installed with npm install -g', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('gives a berthd that starts and serves the Engine API', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'berth-pack-daemon-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const registry = await ScopedRegistry.serve(await packWithDeps(work, 'daemon'));
    cleanups.push(() => registry.close());
    const prefix = path.join(work, 'prefix');
    await run(
      'npm',
      ['install', '--global', '--prefix', prefix, `--@berth:registry=${registry.url}`, '--prefer-online', '--no-audit', '--no-fund', '--loglevel=error', '@berth/daemon'],
      { env: npmEnv(), maxBuffer: 64 << 20 },
    );
    expect(registry.requests).toContain('GET /@berth%2fdaemon');
    const berthd = path.join(prefix, 'bin', 'berthd');
    expect((await stat(berthd)).mode & 0o111).not.toBe(0);
    // Only what npm installed: no workspace, no pnpm links.
    expect((await run(berthd, ['--version'], { env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` } })).stdout).toBe('berthd version 0.0.0\n');

    const state = path.join(work, 'state');
    const socket = path.join(state, 'berth.sock');
    const child = spawn(berthd, ['--data-root', path.join(state, 'data'), '--exec-root', path.join(state, 'exec'), '-H', `unix://${socket}`, '--config-file', '/dev/null'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: work },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const deadline = Date.now() + 30_000;
    while (!(await call(socket, 'GET', '/_ping').then((r) => r.status === 200, () => false))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`berthd did not serve:\n${output}`);
      await sleep(100);
    }
    expect(output).toContain(`export DOCKER_HOST=unix://${socket}`);
    expect(await call(socket, 'POST', '/volumes/create', { Name: 'from-npm', Labels: { b: '2', a: '1' } })).toMatchObject({ status: 201 });
    const volume = await call(socket, 'GET', '/volumes/from-npm');
    expect(volume.body).toContain('"Labels":{"a":"1","b":"2"}');
    expect(JSON.parse((await call(socket, 'GET', '/system/df')).body)).toMatchObject({ Volumes: [{ Name: 'from-npm', UsageData: { Size: 0, RefCount: 0 } }] });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
