import { describe, expect, it } from 'vitest';
import { BerthError, conflict, isConflict, kindOf, notFound, wrap } from './index.js';

describe('BerthError', () => {
  it('keeps the kind through wrapping and prefixes the text', () => {
    const err = wrap(notFound('no such volume'), 'get v1');
    expect(err.message).toBe('get v1: no such volume');
    expect(err.kind).toBe('not-found');
  });

  it('resolves the outermost typed kind of a cause chain', () => {
    const inner = conflict('volume is in use');
    const plain = new Error('outer', { cause: inner });
    expect(kindOf(plain)).toBe('conflict');
    expect(isConflict(plain)).toBe(true);
    expect(kindOf(new Error('untyped'))).toBe('system');
  });

  it('maps aborts, timeouts and Node system errors to kinds', () => {
    expect(BerthError.from(AbortSignal.abort().reason).kind).toBe('canceled');
    const timeout = new DOMException('timed out', 'TimeoutError');
    expect(BerthError.from(timeout).kind).toBe('deadline-exceeded');
    const enoent = Object.assign(new Error('ENOENT: x'), { code: 'ENOENT' });
    expect(BerthError.from(enoent).kind).toBe('not-found');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(BerthError.from(refused).kind).toBe('unavailable');
  });

  it('recognises errors by brand, not by class identity', () => {
    const foreign = Object.assign(new Error('x'), { kind: 'conflict', [Symbol.for('@berth/errdefs.BerthError')]: true });
    expect(BerthError.is(foreign)).toBe(true);
    expect(BerthError.is({ kind: 'conflict' })).toBe(false);
  });
});
