import { PassThrough } from 'node:stream';
import { BerthError, kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { noopLogger } from '@berth/logger';
import { CONTAINERD_MISSING } from './supervisor.js';
import { LazyContainerdExecutor } from './lazy-executor.js';

const spec = { ociVersion: '1.0.2' } as never;

function executor(address: () => Promise<string>): LazyContainerdExecutor {
  return new LazyContainerdExecutor({
    address,
    namespace: 'plugins.moby',
    stateDir: '/nonexistent/plugins',
    runtimeRoot: '/nonexistent/runc',
    exitHandler: { handleExitEvent: () => undefined },
    logger: noopLogger,
  });
}

describe('LazyContainerdExecutor', () => {
  it('asks for containerd only when a plugin is started, again after a failure, and ends the output streams it was given', async () => {
    let asked = 0;
    const lazy = executor(async () => {
      asked++;
      throw new BerthError('unavailable', CONTAINERD_MISSING);
    });
    expect(asked).toBe(0);
    expect(lazy.connected).toBe(false);

    const [stdout, stderr] = [new PassThrough(), new PassThrough()];
    const err = await lazy.create('a'.repeat(64), spec, stdout, stderr).catch((e: unknown) => e);
    expect([kindOf(err), (err as Error).message]).toEqual(['unavailable', CONTAINERD_MISSING]);
    expect([stdout.writableEnded, stderr.writableEnded]).toEqual([true, true]);
    expect(lazy.connected).toBe(false);

    await expect(lazy.restore('b'.repeat(64), new PassThrough(), new PassThrough())).rejects.toThrow(CONTAINERD_MISSING);
    expect(asked).toBe(2);
  });

  it('knows no plugin to signal before it ever connected, and closes without connecting', async () => {
    let asked = 0;
    const lazy = executor(async () => {
      asked++;
      return '/nonexistent/containerd.sock';
    });
    const err = await lazy.signal('c'.repeat(64), 'SIGTERM').catch((e: unknown) => e);
    expect([kindOf(err), (err as Error).message]).toEqual(['not-found', `unknown plugin "${'c'.repeat(64)}"`]);
    await lazy.close();
    expect(asked).toBe(0);
    await expect(lazy.create('d'.repeat(64), spec, new PassThrough(), new PassThrough())).rejects.toThrow('containerd plugin executor is closed');
  });
});
