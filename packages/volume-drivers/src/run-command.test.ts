import { describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { commandOutput, runCommand } from './run-command.js';

describe('runCommand', () => {
  it('collects output and the exit code, without a shell', async () => {
    const result = await runCommand('/bin/sh', ['-c', 'echo out; echo "$0" >&2; exit 3', '$(nope)'], { timeoutMs: 5000 });
    expect(result).toEqual({ code: 3, stdout: 'out\n', stderr: '$(nope)\n' });
    expect(commandOutput(result)).toBe('$(nope)');
    expect(commandOutput({ code: 32, stdout: '', stderr: '' })).toBe('exit status 32');
  });

  it('gives up at the deadline', async () => {
    const started = Date.now();
    const err = await runCommand('/bin/sleep', ['10'], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(kindOf(err)).toBe('deadline-exceeded');
    expect((err as Error).message).toBe('/bin/sleep did not finish within 0.1s');
  });

  it('stops when the caller aborts', async () => {
    const controller = new AbortController();
    const running = runCommand('/bin/sleep', ['10'], { timeoutMs: 10_000, signal: controller.signal });
    controller.abort();
    await expect(running).rejects.toSatisfy((err) => kindOf(err) === 'canceled');
  });

  it('rejects when the program is missing', async () => {
    await expect(runCommand('/nonexistent/binary', [], { timeoutMs: 1000 })).rejects.toThrow(/ENOENT/);
  });
});
