import { describe, expect, it } from 'vitest';
import { generateVolumeName } from './random-name.js';

describe('generateVolumeName', () => {
  it('gives 64 lowercase hex characters whose short form is not a number', () => {
    const names = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const name = generateVolumeName();
      expect(name).toMatch(/^[0-9a-f]{64}$/);
      expect(name.slice(0, 12)).not.toMatch(/^[0-9]{12}$/);
      names.add(name);
    }
    expect(names.size).toBe(500);
  });
});
