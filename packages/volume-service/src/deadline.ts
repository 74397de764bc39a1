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
  const forward = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
    timer = setTimeout(() => controller.abort(new BerthError('deadline-exceeded', message)), ms);
  });
  try {
    return await Promise.race([fn(controller.signal), aborted]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', forward);
  }
}
