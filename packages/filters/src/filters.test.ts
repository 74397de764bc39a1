import { describe, expect, it } from 'vitest';
import { Filters } from './index.js';

describe('Filters.parse', () => {
  it('accepts the current and the legacy JSON forms', () => {
    expect(Filters.parse('{"label":{"a=b":true}}').get('label')).toEqual(['a=b']);
    expect(Filters.parse('{"label":["a=b","c"]}').get('label')).toEqual(['a=b', 'c']);
    expect(Filters.parse('').size).toBe(0);
    expect(Filters.parse(undefined).size).toBe(0);
  });

  it('rejects what is neither form with moby text', () => {
    for (const bad of ['{', '[]', '"x"', '{"a":"b"}', '{"a":[1]}', '{"a":{"b":"c"}}']) {
      expect(() => Filters.parse(bad)).toThrow(/^invalid filter$/);
    }
  });
});

describe('Filters matching', () => {
  it('validates accepted keys', () => {
    expect(() => Filters.of([['FOO', '1']]).validate(['dangling'])).toThrow("invalid filter 'FOO'");
    expect(() => Filters.of([['dangling', '1']]).validate(['dangling'])).not.toThrow();
  });

  it('parses bools as moby does', () => {
    expect(Filters.of([['dangling', 'true']]).getBoolOrDefault('dangling', false)).toBe(true);
    expect(Filters.of([['dangling', '0']]).getBoolOrDefault('dangling', true)).toBe(false);
    expect(Filters.empty().getBoolOrDefault('dangling', true)).toBe(true);
    expect(() => Filters.of([['dangling', 'invalid']]).getBoolOrDefault('dangling', false)).toThrow(
      "invalid filter 'dangling=[invalid]'",
    );
    expect(() => Filters.of([['all', '1'], ['all', '0']]).getBoolOrDefault('all', false)).toThrow(
      "invalid filter 'all=[1 0]'",
    );
    expect(() => Filters.parse('{"all":{}}').getBoolOrDefault('all', false)).toThrow("invalid filter 'all'");
  });

  it('matches names exactly or as a regexp, labels as a KV list', () => {
    const f = Filters.of([['name', 'testisin']]);
    expect(f.match('name', 'atestisinb')).toBe(true);
    expect(f.match('name', 'other')).toBe(false);
    expect(Filters.of([['name', '[']]).match('name', 'x')).toBe(false);
    const l = Filters.of([['label', 'foo'], ['label', 'bar=1']]);
    expect(l.matchKVList('label', { foo: '', bar: '1' })).toBe(true);
    expect(l.matchKVList('label', { foo: '', bar: '2' })).toBe(false);
    expect(l.matchKVList('label', null)).toBe(false);
    expect(Filters.empty().matchKVList('label', null)).toBe(true);
  });

  it('treats a value sent as false as present but not matching exactly', () => {
    const f = Filters.parse('{"driver":{"local":false}}');
    expect(f.get('driver')).toEqual(['local']);
    expect(f.exactMatch('driver', 'local')).toBe(false);
  });

  it('fuzzy-matches by prefix', () => {
    const f = Filters.of([['volume', 'abc']]);
    expect(f.fuzzyMatch('volume', 'abcdef')).toBe(true);
    expect(f.fuzzyMatch('volume', 'xabc')).toBe(false);
  });
});
