import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { system } from '@berth/errdefs';

export interface SocketWaitOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Dial again this often. */
  pollMs: number;
  /** Settles when the plugin's process has exited: there is no point waiting any longer. */
  exited?: Promise<void> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Waits until something accepts connections on the unix socket (moby dials after 500 ms, then
 * three more times 3 s apart; berth dials every `pollMs` until `timeoutMs`, so a plugin that is
 * quick to listen is used at once). Fails when the plugin exits first.
 */
export async function waitForSocket(socketPath: string, options: SocketWaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let exited = false;
  void options.exited?.then(() => {
    exited = true;
  });
  let last: Error | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    if (exited) throw system(`plugin exited before it listened on ${socketPath}`);
    try {
      await dial(socketPath);
      return;
    } catch (err) {
      last = err as Error;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await Promise.race([
      sleep(Math.min(options.pollMs, left), undefined, { signal: options.signal }),
      options.exited ?? new Promise<void>(() => undefined),
    ]);
  }
  throw system(`dial unix ${socketPath}: ${last?.message ?? 'timed out'}`, { cause: last });
}

function dial(socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
}
