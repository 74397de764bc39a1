import { describe, expect, it } from 'vitest';
import { compareVersions } from './api-version.js';

describe('compareVersions', () => {
  it('compares dot-separated numbers as moby', () => {
    expect(compareVersions('1.4', '1.24')).toBe(-1);
    expect(compareVersions('1.41', '1.41')).toBe(0);
    expect(compareVersions('1.41.0', '1.41')).toBe(0);
    expect(compareVersions('2', '1.99')).toBe(1);
    expect(compareVersions('1..', '1.0')).toBe(0);
    expect(compareVersions('1.99999999999999999999', '1.51')).toBe(1);
    expect(compareVersions('', '0')).toBe(0);
    expect(compareVersions('1.24', '1.24.1')).toBe(-1);
    expect(compareVersions('1.x', '1')).toBe(0);
    expect(compareVersions('1. 5', '1.4')).toBe(1);
  });
});
