import { describe, expect, it } from 'vitest';
import { parseEventTime } from './event-time.js';

describe('parseEventTime', () => {
  it('reads unix seconds with an optional fraction into nanoseconds', () => {
    expect(parseEventTime('')).toBeUndefined();
    expect(parseEventTime('-1')).toBeUndefined();
    expect(parseEventTime('0')).toBe(0n);
    expect(parseEventTime('1700000000')).toBe(1_700_000_000_000_000_000n);
    expect(parseEventTime('1700000000.5')).toBe(1_700_000_000_500_000_000n);
    expect(parseEventTime('1.000000001')).toBe(1_000_000_001n);
    expect(parseEventTime('1.1234567899')).toBe(1_123_456_789n);
  });

  it('is a 400 for anything else', () => {
    expect(() => parseEventTime('abc')).toThrow(expect.objectContaining({ kind: 'invalid-parameter', message: 'invalid timestamp "abc": invalid seconds "abc": invalid syntax' }));
    expect(() => parseEventTime('1.x')).toThrow('invalid timestamp "1.x": invalid nanoseconds "x": invalid syntax');
    expect(() => parseEventTime('99999999999999999999')).toThrow('value out of range');
  });
});
