import { BerthError, type ErrorKind } from '@berth/errdefs';
import { status } from '@grpc/grpc-js';

/** What a failed grpc-js call hands out: an Error with the gRPC status fields. */
export interface GrpcStatusError extends Error {
  code: number;
  details: string;
}

export function isGrpcStatusError(err: unknown): err is GrpcStatusError {
  return err instanceof Error && typeof (err as Partial<GrpcStatusError>).code === 'number' && 'details' in err;
}

/**
 * containerd's errdefs travel as gRPC codes (`containerd/errdefs` `ToGRPC`); each maps back to the berth
 * kind of the same meaning. FAILED_PRECONDITION is containerd's "wrong state" ("task must be stopped
 * before deletion"), which is a conflict with the object's state rather than a bad argument.
 */
export function kindOfGrpcCode(code: number): ErrorKind {
  switch (code) {
    case status.NOT_FOUND:
      return 'not-found';
    case status.ALREADY_EXISTS:
    case status.FAILED_PRECONDITION:
    case status.ABORTED:
      return 'conflict';
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
      return 'invalid-parameter';
    case status.UNAVAILABLE:
      return 'unavailable';
    case status.DEADLINE_EXCEEDED:
      return 'deadline-exceeded';
    case status.CANCELLED:
      return 'canceled';
    case status.UNIMPLEMENTED:
      return 'not-implemented';
    case status.PERMISSION_DENIED:
      return 'forbidden';
    case status.UNAUTHENTICATED:
      return 'unauthorized';
    default:
      return 'system';
  }
}

/**
 * A BerthError for anything a containerd call threw. The text is containerd's own (`details`), not
 * grpc-js's `"5 NOT_FOUND: …"` rendering; the original error stays as `cause`.
 */
export function fromGrpcError(err: unknown): BerthError {
  if (BerthError.is(err)) return err;
  if (!isGrpcStatusError(err)) return BerthError.from(err);
  const message = err.details !== '' ? err.details : err.message;
  return new BerthError(kindOfGrpcCode(err.code), message, { cause: err });
}
