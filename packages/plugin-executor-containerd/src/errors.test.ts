import { describe, expect, it } from 'vitest';
import { BerthError } from '@berth/errdefs';
import { status } from '@grpc/grpc-js';
import { fromGrpcError, kindOfGrpcCode } from './errors.js';

function grpcError(code: number, details: string): Error {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: {} });
}

describe('fromGrpcError', () => {
  it.each([
    [status.NOT_FOUND, 'not-found'],
    [status.ALREADY_EXISTS, 'conflict'],
    [status.FAILED_PRECONDITION, 'conflict'],
    [status.INVALID_ARGUMENT, 'invalid-parameter'],
    [status.UNAVAILABLE, 'unavailable'],
    [status.DEADLINE_EXCEEDED, 'deadline-exceeded'],
    [status.CANCELLED, 'canceled'],
    [status.UNIMPLEMENTED, 'not-implemented'],
    [status.PERMISSION_DENIED, 'forbidden'],
    [status.UNKNOWN, 'system'],
    [status.INTERNAL, 'system'],
  ] as const)('maps gRPC code %i to %s', (code, kind) => {
    expect(kindOfGrpcCode(code)).toBe(kind);
    expect(fromGrpcError(grpcError(code, 'x')).kind).toBe(kind);
  });

  it("keeps containerd's message, not grpc-js's rendering, and the original as cause", () => {
    const original = grpcError(status.NOT_FOUND, 'container "p" in namespace "plugins.moby": not found');
    const err = fromGrpcError(original);
    expect(err).toBeInstanceOf(BerthError);
    expect(err.message).toBe('container "p" in namespace "plugins.moby": not found');
    expect(err.cause).toBe(original);
  });

  it('passes BerthErrors through and normalises anything else', () => {
    const berth = new BerthError('conflict', 'x');
    expect(fromGrpcError(berth)).toBe(berth);
    expect(fromGrpcError(new Error('plain')).kind).toBe('system');
    expect(fromGrpcError(grpcError(status.UNAVAILABLE, '')).message).toBe('14 UNAVAILABLE: ');
  });
});
