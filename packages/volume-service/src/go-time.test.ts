import { afterEach, describe, expect, it } from 'vitest';
import { formatRFC3339, ZERO_TIME } from './go-time.js';

const originalTZ = process.env['TZ'];

describe('formatRFC3339', () => {
  afterEach(() => {
    if (originalTZ === undefined) delete process.env['TZ'];
    else process.env['TZ'] = originalTZ;
  });

  it('formats like Go: local zone, no fractions, Z for UTC', () => {
    const t = new Date('2026-11-27T23:40:01.987Z');
    process.env['TZ'] = 'UTC';
    expect(formatRFC3339(t)).toBe('2026-11-27T23:40:01Z');
    process.env['TZ'] = 'Europe/Paris';
    expect(formatRFC3339(t)).toBe('2026-11-28T00:40:01+01:00');
    process.env['TZ'] = 'America/St_Johns';
    expect(formatRFC3339(t)).toBe('2026-11-27T20:10:01-03:30');
  });

  it('gives the zero time when the driver knows none', () => {
    expect(formatRFC3339(undefined)).toBe(ZERO_TIME);
    expect(formatRFC3339(new Date(Number.NaN))).toBe('0001-01-01T00:00:00Z');
  });
});
