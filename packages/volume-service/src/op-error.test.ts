import { conflict, kindOf, notFound } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { errNoSuchVolume, isCommunicationError, isNotExist, nameConflict, opError } from './op-error.js';

describe('opError', () => {
  it("formats as moby's OpErr and keeps the wrapped kind", () => {
    const err = opError('remove', 'v1', conflict('volume is in use'), ['c2', 'c1']);
    expect(err.message).toBe('remove v1: volume is in use - [c2, c1]');
    expect(kindOf(err)).toBe('conflict');
    expect(opError('list', '', new Error('x')).message).toBe('list: x');
    expect(kindOf(opError('create', 'v', new Error('untyped')))).toBe('system');
  });

  it('recognises sentinels through wrapping', () => {
    const err = opError('get', 'v', new Error('outer', { cause: errNoSuchVolume }));
    expect(isNotExist(err)).toBe(true);
    expect(isNotExist(notFound('no such volume'))).toBe(false);
    const dup = nameConflict("driver 'd1' already has volume 'v'");
    expect(dup.message).toBe("driver 'd1' already has volume 'v': volume name must be unique");
    expect(kindOf(dup)).toBe('conflict');
  });

  it('tells driver-unreachable errors from driver answers', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isCommunicationError(refused)).toBe(true);
    expect(isCommunicationError(new DOMException('t', 'TimeoutError'))).toBe(true);
    expect(isCommunicationError(new Error('VolumeDriver.Get: no such volume'))).toBe(false);
    expect(isCommunicationError(notFound('gone'))).toBe(false);
  });
});
