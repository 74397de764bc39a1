import { kindOf, type ErrorKind } from '@berth/errdefs';

/**
 * Error kind → HTTP status, as moby's `httpstatus.FromError`; the only place berth maps kinds to
 * status codes. Cancellations and deadlines are 500 there too.
 */
const STATUS: Record<ErrorKind, number> = {
  'not-found': 404,
  'invalid-parameter': 400,
  conflict: 409,
  unauthorized: 401,
  forbidden: 403,
  unavailable: 503,
  'not-implemented': 501,
  'not-modified': 304,
  canceled: 500,
  'deadline-exceeded': 500,
  system: 500,
};

/** The status of the outermost typed error in the cause chain; untyped errors are 500. */
export function statusOf(err: unknown): number {
  return STATUS[kindOf(err)];
}
