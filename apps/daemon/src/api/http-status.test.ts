import { BerthError, wrap } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { statusOf } from './http-status.js';

describe('statusOf', () => {
  it('maps kinds as moby httpstatus.FromError', () => {
    const cases: Array<[ConstructorParameters<typeof BerthError>[0], number]> = [
      ['not-found', 404],
      ['invalid-parameter', 400],
      ['conflict', 409],
      ['unauthorized', 401],
      ['forbidden', 403],
      ['unavailable', 503],
      ['not-implemented', 501],
      ['not-modified', 304],
      ['canceled', 500],
      ['deadline-exceeded', 500],
      ['system', 500],
    ];
    for (const [kind, status] of cases) expect(statusOf(new BerthError(kind, 'x')), kind).toBe(status);
  });

  it('uses the outermost typed error and treats untyped ones as 500', () => {
    expect(statusOf(wrap(new BerthError('not-found', 'no such volume'), 'get v'))).toBe(404);
    expect(statusOf(new Error('boom'))).toBe(500);
    expect(statusOf('not even an error')).toBe(500);
  });
});
