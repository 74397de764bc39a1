/**
 * The closed set of error kinds. They mirror moby's errdefs classes; the daemon alone maps them to
 * HTTP status codes.
 */
export type ErrorKind =
  | 'not-found'
  | 'invalid-parameter'
  | 'conflict'
  | 'unauthorized'
  | 'forbidden'
  | 'unavailable'
  | 'not-implemented'
  | 'not-modified'
  | 'canceled'
  | 'deadline-exceeded'
  | 'system';

const KINDS: ReadonlySet<string> = new Set<ErrorKind>([
  'not-found',
  'invalid-parameter',
  'conflict',
  'unauthorized',
  'forbidden',
  'unavailable',
  'not-implemented',
  'not-modified',
  'canceled',
  'deadline-exceeded',
  'system',
]);

const BRAND = Symbol.for('@berth/errdefs.BerthError');

export interface BerthErrorOptions {
  cause?: unknown;
}

/**
 * The one error class of berth. `message` is the full text a user sees (moby's wording);
 * `kind` decides the HTTP status in the daemon. Identity is checked by brand, not `instanceof`,
 * so two copies of this package still recognise each other's errors.
 */
export class BerthError extends Error {
  readonly kind: ErrorKind;
  readonly [BRAND] = true;

  constructor(kind: ErrorKind, message: string, options?: BerthErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BerthError';
    this.kind = kind;
  }

  static is(value: unknown): value is BerthError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true &&
      KINDS.has((value as { kind?: unknown }).kind as string)
    );
  }

  /**
   * Normalises anything thrown into a BerthError: BerthErrors pass through, aborts and timeouts
   * become `canceled` / `deadline-exceeded`, Node system errors get the kind their code implies,
   * anything else is `system` (moby's untyped error, a 500).
   */
  static from(reason: unknown, fallback: ErrorKind = 'system'): BerthError {
    if (BerthError.is(reason)) return reason;
    const kind = kindOfForeign(reason) ?? fallback;
    const message = reason instanceof Error ? reason.message : String(reason);
    return new BerthError(kind, message, { cause: reason });
  }
}

function kindOfForeign(reason: unknown): ErrorKind | undefined {
  if (!(reason instanceof Error)) return undefined;
  if (reason.name === 'TimeoutError') return 'deadline-exceeded';
  if (reason.name === 'AbortError') {
    const cause = (reason as { cause?: unknown }).cause;
    return cause instanceof Error && cause.name === 'TimeoutError' ? 'deadline-exceeded' : 'canceled';
  }
  switch ((reason as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'not-found';
    case 'EEXIST':
      return 'conflict';
    case 'EACCES':
    case 'EPERM':
      return 'forbidden';
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ENOTCONN':
    case 'EHOSTUNREACH':
      return 'unavailable';
    case 'ETIMEDOUT':
      return 'deadline-exceeded';
    default:
      return undefined;
  }
}

/**
 * The kind of the outermost typed error in a cause chain, like moby's `cerrdefs.Resolve`:
 * untyped errors are `system`.
 */
export function kindOf(err: unknown): ErrorKind {
  let current: unknown = err;
  for (let depth = 0; depth < 32 && current !== undefined && current !== null; depth++) {
    if (BerthError.is(current)) return current.kind;
    current = (current as { cause?: unknown }).cause;
  }
  return 'system';
}

export function isKind(err: unknown, kind: ErrorKind): boolean {
  return kindOf(err) === kind;
}

export const isNotFound = (err: unknown): boolean => isKind(err, 'not-found');
export const isInvalidParameter = (err: unknown): boolean => isKind(err, 'invalid-parameter');
export const isConflict = (err: unknown): boolean => isKind(err, 'conflict');
export const isUnavailable = (err: unknown): boolean => isKind(err, 'unavailable');

export const notFound = (message: string, options?: BerthErrorOptions): BerthError =>
  new BerthError('not-found', message, options);
export const invalidParameter = (message: string, options?: BerthErrorOptions): BerthError =>
  new BerthError('invalid-parameter', message, options);
export const conflict = (message: string, options?: BerthErrorOptions): BerthError =>
  new BerthError('conflict', message, options);
export const unavailable = (message: string, options?: BerthErrorOptions): BerthError =>
  new BerthError('unavailable', message, options);
export const system = (message: string, options?: BerthErrorOptions): BerthError =>
  new BerthError('system', message, options);

/**
 * Prefixes an error's text and keeps its kind (moby's `errors.Wrap` over a typed error):
 * `wrap(err, "create v1")` gives `create v1: <text>`.
 */
export function wrap(err: unknown, prefix: string, kind?: ErrorKind): BerthError {
  const inner = BerthError.from(err);
  return new BerthError(kind ?? inner.kind, `${prefix}: ${inner.message}`, { cause: inner });
}
