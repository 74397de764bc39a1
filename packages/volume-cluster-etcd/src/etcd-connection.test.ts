import { BrokenCircuitError } from 'cockatiel';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { describeFailure } from './etcd-connection.js';

describe('describeFailure', () => {
  it("names the cause gRPC and OpenSSL bury in their texts", () => {
    const grpc = (last: string): Error => new GRPCUnavailableError(`14 UNAVAILABLE: No connection established. Last error: ${last}. Resolution note: `);
    expect(describeFailure(grpc('Error: connect ECONNREFUSED 10.0.0.1:2379'), 3000)).toBe('etcd is unreachable (connect ECONNREFUSED 10.0.0.1:2379)');
    expect(describeFailure(grpc('Failed to connect (2026-12-06T10:00:42.933Z)'), 3000)).toBe('etcd is unreachable (Failed to connect)');
    expect(
      describeFailure(
        grpc('80ECB0DF697F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n (2026-12-06T10:00:42.922Z)'),
        3000,
      ),
    ).toBe('etcd is unreachable (sslv3 alert bad certificate)');
    expect(describeFailure(new GRPCDeadlineExceededError('x'), 3000)).toBe('etcd did not answer within 3000ms');
    expect(describeFailure(new BrokenCircuitError(), 3000)).toBe('etcd is unreachable (every member failed just now)');
    expect(describeFailure(new Error('etcdserver: permission denied'), 3000)).toBe('etcdserver: permission denied');
  });
});
