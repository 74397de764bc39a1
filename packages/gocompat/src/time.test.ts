import { afterEach, describe, expect, it } from 'vitest';
import { formatRFC3339, parseRFC3339, ZERO_TIME } from './time.js';

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

describe('parseRFC3339', () => {
  it('accepts what Go accepts', () => {
    expect(parseRFC3339('2016-05-20T14:49:51Z')?.toISOString()).toBe('2016-05-20T14:49:51.000Z');
    expect(parseRFC3339('2016-05-20T16:49:51.123456789+02:00')?.toISOString()).toBe('2016-05-20T14:49:51.123Z');
    expect(parseRFC3339('0001-01-01T00:00:00Z')?.getUTCFullYear()).toBe(1);
  });

  it('refuses what Go refuses', () => {
    for (const text of ['', 'yesterday', '2016-05-20 14:49:51Z', '2016-05-20T14:49:51', '2016-02-30T00:00:00Z', '2016-05-20T24:00:00Z', '1463755791']) {
      expect(parseRFC3339(text), text).toBeUndefined();
    }
  });
});
