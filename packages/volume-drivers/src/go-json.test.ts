import { describe, expect, it } from 'vitest';
import { goField, parseRFC3339 } from './go-json.js';

describe('goField', () => {
  it('matches keys case-insensitively, the last one winning, as Go does', () => {
    expect(goField({ mountpoint: '/a' }, 'Mountpoint')).toBe('/a');
    expect(goField({ Err: 'x', ERR: 'y' }, 'Err')).toBe('y');
    expect(goField(['Err'], 'Err')).toBeUndefined();
    expect(goField(null, 'Err')).toBeUndefined();
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
