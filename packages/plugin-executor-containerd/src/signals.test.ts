import { describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { signalNumber } from './signals.js';

describe('signalNumber', () => {
  it('accepts numbers and names in the forms docker accepts', () => {
    expect(signalNumber(9)).toBe(9);
    expect(signalNumber('SIGTERM')).toBe(15);
    expect(signalNumber('TERM')).toBe(15);
    expect(signalNumber('sigkill')).toBe(9);
    expect(signalNumber('10')).toBe(10);
  });

  it.each([0, -1, 1.5, 99, 'SIGNOPE', ''])('rejects %j as invalid-parameter', (value) => {
    let caught: unknown;
    try {
      signalNumber(value);
    } catch (err) {
      caught = err;
    }
    expect(kindOf(caught)).toBe('invalid-parameter');
    expect((caught as Error).message).toBe(`invalid signal: ${value}`);
  });
});
