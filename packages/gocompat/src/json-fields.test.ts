import { describe, expect, it } from 'vitest';
import { goField } from './json-fields.js';

describe('goField', () => {
  it('matches keys case-insensitively, the last one winning, as Go does', () => {
    expect(goField({ mountpoint: '/a' }, 'Mountpoint')).toBe('/a');
    expect(goField({ Err: 'x', ERR: 'y' }, 'Err')).toBe('y');
    expect(goField(['Err'], 'Err')).toBeUndefined();
    expect(goField(null, 'Err')).toBeUndefined();
  });
});
