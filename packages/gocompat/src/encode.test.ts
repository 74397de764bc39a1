import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareGoStrings, goAnyValue, goJson, goJsonText, goMap } from './encode.js';

/** Go's order: the UTF-8 bytes. */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('compareGoStrings', () => {
  it('orders strings by their UTF-8 bytes, as Go sorts map keys', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(Math.sign(compareGoStrings(a, b))).toBe(Math.sign(byBytes(a, b)));
      }),
    );
    // Where UTF-16 order and Go's differ: U+FF5E against U+1F600.
    expect(compareGoStrings('\uff5e', '\u{1f600}')).toBeLessThan(0);
    expect('\uff5e' < '\u{1f600}').toBe(false);
  });
});

describe('goJson', () => {
  it('writes map keys in Go order, structs as given', () => {
    const labels = { team: 'a', 'com.example.tier': 'gold', Zeta: '', alpha: '' };
    expect(goJson({ Name: 'v', Labels: goMap(labels), Options: goMap(null) })).toBe(
      '{"Name":"v","Labels":{"Zeta":"","alpha":"","com.example.tier":"gold","team":"a"},"Options":null}\n',
    );
  });

  it('keeps a key named __proto__', () => {
    const labels = JSON.parse('{"z":"1","__proto__":"2"}') as Record<string, string>;
    expect(goJsonText(goMap(labels))).toBe('{"__proto__":"2","z":"1"}');
    expect(goJsonText(goAnyValue(JSON.parse('{"z":{"__proto__":{"b":1,"a":2}}}')))).toBe('{"z":{"__proto__":{"a":2,"b":1}}}');
  });

  it('keeps a map already in order as it is', () => {
    const sorted = { a: '1', b: '2' };
    expect(goMap(sorted)).toBe(sorted);
  });

  it('writes index-like keys in Go order too, which no JavaScript object can hold', () => {
    const map = { b: 'x', '10': 'ten', '9': 'nine', '-1': 'minus', '01': 'zero-one' };
    expect(Object.keys(map)).toEqual(['9', '10', 'b', '-1', '01']);
    expect(goJsonText({ Labels: goMap(map), After: 1 })).toBe('{"Labels":{"-1":"minus","01":"zero-one","10":"ten","9":"nine","b":"x"},"After":1}');
    // Nested inside a plugin's Status, at any depth, and in arrays.
    const status = { z: [{ '2': 'b', '1': 'a', x: { '20': 1, '3': 2 } }], a: true };
    expect(goJsonText(goAnyValue(status))).toBe('{"a":true,"z":[{"1":"a","2":"b","x":{"20":1,"3":2}}]}');
  });

  it('matches Go for random maps', () => {
    const escape = (text: string): string => text.replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' })), (map) => {
        const expected = `{${Object.keys(map)
          .sort(byBytes)
          .map((key) => `${JSON.stringify(key)}:${JSON.stringify(map[key])}`)
          .join(',')}}`;
        expect(goJsonText(goMap(map))).toBe(escape(expected));
      }),
    );
  });

  it('escapes U+2028 and U+2029 and leaves HTML alone, as moby’s WriteJSON', () => {
    expect(goJson({ s: '<a>&\u2028\u2029' })).toBe('{"s":"<a>&\\u2028\\u2029"}\n');
  });
});
