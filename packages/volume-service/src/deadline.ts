import { BerthError } from '@berth/errdefs';

/**
 * Runs `fn` with a signal that aborts after `ms` or when `signal` aborts, and settles by then even if
 * `fn` ignores its signal (a hung plugin). The timeout rejects with a `deadline-exceeded` error
 * whose text is `message`.
 */
export async function withDeadline<T>(
  ms: number,
  message: string,
  signal: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let forward: (() => void) | undefined;
  // One listener (on the caller's signal, if any) and one timer: each settles the race and aborts `fn`.
  const aborted = new Promise<never>((_, reject) => {
    const abort = (reason: unknown): void => {
      controller.abort(reason);
      reject(reason);
    };
    timer = setTimeout(() => abort(new BerthError('deadline-exceeded', message)), ms);
    if (signal !== undefined) {
      forward = () => abort(signal.reason);
      signal.addEventListener('abort', forward, { once: true });
    }
  });
  try {
    return await Promise.race([fn(controller.signal), aborted]);
  } finally {
    clearTimeout(timer);
    if (forward !== undefined) signal?.removeEventListener('abort', forward);
  }
}
