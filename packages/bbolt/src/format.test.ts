import { describe, expect, it } from 'vitest';
import { compareKeys, fnv1a64 } from './format.js';

describe('fnv1a64', () => {
  it('matches the FNV-1a 64 reference values', () => {
    expect(fnv1a64(new Uint8Array(0))).toBe(0xcbf29ce484222325n);
    expect(fnv1a64(Buffer.from('a'))).toBe(0xaf63dc4c8601ec8cn);
    expect(fnv1a64(Buffer.from('foobar'))).toBe(0x85944171f73967e8n);
  });
});

describe('compareKeys', () => {
  it('orders bytes as bbolt does (unsigned, shorter prefix first)', () => {
    expect(compareKeys(Buffer.from('a'), Buffer.from('b'))).toBeLessThan(0);
    expect(compareKeys(Buffer.from('ab'), Buffer.from('a'))).toBeGreaterThan(0);
    expect(compareKeys(Buffer.from([0xff]), Buffer.from([0x01]))).toBeGreaterThan(0);
    expect(compareKeys(Buffer.from('x'), Buffer.from('x'))).toBe(0);
  });
});
