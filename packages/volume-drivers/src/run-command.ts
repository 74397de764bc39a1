import { spawn } from 'node:child_process';
import { BerthError } from '@berth/errdefs';

export interface CommandResult {
  /** Exit code; `null` when the process died of a signal. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunCommandOptions {
  signal?: AbortSignal | undefined;
  /** Hard deadline: the promise settles by then even if the process is stuck in the kernel. */
  timeoutMs: number;
}

const MAX_OUTPUT = 64 * 1024;

/**
 * Runs a program without a shell, in the C locale, and collects its output. A `mount` of an
 * unreachable NFS server can hang in uninterruptible sleep, so at the deadline the child is killed
 * and the promise rejects at once instead of waiting for an exit that may never come.
 */
export function runCommand(file: string, args: readonly string[], options: RunCommandOptions): Promise<CommandResult> {
  const { signal, timeoutMs } = options;
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout = (stdout + chunk).slice(0, MAX_OUTPUT)));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(0, MAX_OUTPUT)));

    const stop = (err: unknown): void => {
      cleanup();
      child.kill('SIGKILL');
      reject(err);
    };
    const onAbort = (): void => stop(BerthError.from(signal?.reason));
    const timer = setTimeout(
      () => stop(new BerthError('deadline-exceeded', `${file} did not finish within ${timeoutMs / 1000}s`)),
      timeoutMs,
    );
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      cleanup();
      reject(err);
    });
    child.once('close', (code) => {
      cleanup();
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a failed command said, for error texts: its stderr, else stdout, else the exit status. */
export function commandOutput(result: CommandResult): string {
  return result.stderr.trim() || result.stdout.trim() || (result.code === null ? 'killed by a signal' : `exit status ${result.code}`);
}
