import { describe, expect, it } from 'vitest';
import { parseGoDuration, parseStoreUrl } from './cluster-config.js';

describe('parseStoreUrl and parseGoDuration', () => {
  it('take etcd URLs and Go durations', () => {
    expect(parseStoreUrl('ETCD://a,b:1/')).toEqual({ addresses: ['a:2379', 'b:1'], prefix: undefined });
    expect(parseGoDuration('15s')).toBe(15_000);
    expect(parseGoDuration('1h2m0.5s')).toBe(3_720_500);
    expect(parseGoDuration('250us')).toBe(0.25);
    expect(() => parseGoDuration('')).toThrow('time: invalid duration ""');
    expect(() => parseGoDuration('5')).toThrow('time: invalid duration "5"');
  });
});
