import { describe, expect, it } from 'vitest';
import { decodeFirstValue, GoJsonError, quoteChar, unmarshalValue } from './json-scanner.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8');

function decodeError(s: string): string {
  try {
    decodeFirstValue(bytes(s));
  } catch (err) {
    if (err instanceof GoJsonError) return err.message;
    throw err;
  }
  throw new Error(`no error for ${s}`);
}

describe('decodeFirstValue (json.Decoder)', () => {
  it('reports syntax errors with the texts of Go', () => {
    const cases: Array<[string, string]> = [
      ['{i', `invalid character 'i' looking for beginning of object key string`],
      ['x', `invalid character 'x' looking for beginning of value`],
      ['{"a" 1}', `invalid character '1' after object key`],
      ['{"a":1 "b"}', `invalid character '"' after object key:value pair`],
      ['{"a":1,}', `invalid character '}' looking for beginning of object key string`],
      ['[1 2]', `invalid character '2' after array element`],
      ['[1,]', `invalid character ']' looking for beginning of value`],
      ['"a\nb"', `invalid character '\\n' in string literal`],
      ['"\\x"', `invalid character 'x' in string escape code`],
      ['"\\u12g4"', `invalid character 'g' in \\u hexadecimal character escape`],
      ['-a', `invalid character 'a' in numeric literal`],
      ['1.e', `invalid character 'e' after decimal point in numeric literal`],
      ['1e+x', `invalid character 'x' in exponent of numeric literal`],
      ['tru3', `invalid character '3' in literal true (expecting 'e')`],
      ['nul', 'unexpected EOF'],
      ['fx', `invalid character 'x' in literal false (expecting 'a')`],
      ["{'a':1}", `invalid character '\\'' looking for beginning of object key string`],
      ['{"a":\x01}', `invalid character '\\x01' looking for beginning of value`],
    ];
    for (const [input, message] of cases) expect(decodeError(input), input).toBe(message);
  });

  it('tells an empty body (EOF) from a truncated one (unexpected EOF)', () => {
    expect(() => decodeFirstValue(bytes(' \n\t'))).toThrow(expect.objectContaining({ code: 'eof', message: 'EOF' }));
    for (const s of ['{', '{"a"', '{"a":', '[1,', '"abc', '-', '1.', '1e']) {
      expect(() => decodeFirstValue(bytes(s)), s).toThrow(expect.objectContaining({ code: 'truncated', message: 'unexpected EOF' }));
    }
  });

  it('stops after the first value; More() ignores a following ] or } as Go does', () => {
    expect(decodeFirstValue(bytes('{} x')).more).toBe(true);
    expect(decodeFirstValue(bytes('{}{}')).more).toBe(true);
    expect(decodeFirstValue(bytes('{} }')).more).toBe(false);
    expect(decodeFirstValue(bytes('{}]')).more).toBe(false);
    expect(decodeFirstValue(bytes('{}  \n')).more).toBe(false);
    expect(decodeFirstValue(bytes('12x')).value).toEqual({ kind: 'number', literal: '12' });
  });

  it('decodes strings like Go: escapes, surrogate pairs, lone surrogates as U+FFFD', () => {
    const value = (s: string): unknown => decodeFirstValue(bytes(s)).value;
    expect(value('"a\\"b\\\\c\\/d\\n"')).toEqual({ kind: 'string', value: 'a"b\\c/d\n' });
    expect(value('"\\ud83d\\ude00 é"')).toEqual({ kind: 'string', value: '😀 é' });
    expect(value('"\\ud83dx"')).toEqual({ kind: 'string', value: '\ufffdx' });
    expect(value('{"k":[true,false,null,-1.5e3]}')).toEqual({
      kind: 'object',
      entries: [['k', { kind: 'array', items: [{ kind: 'bool', value: true }, { kind: 'bool', value: false }, { kind: 'null' }, { kind: 'number', literal: '-1.5e3' }] }]],
    });
  });

  it('refuses nesting deeper than Go does, without exhausting the stack', () => {
    expect(decodeError('['.repeat(20_000))).toBe(`invalid character '[' exceeded max depth`);
    expect(decodeFirstValue(bytes(`${'['.repeat(9_999)}${']'.repeat(9_999)}`)).more).toBe(false);
  });
});

describe('unmarshalValue (json.Unmarshal)', () => {
  it('requires exactly one value', () => {
    expect(() => unmarshalValue(bytes('{} x'))).toThrow(`invalid character 'x' after top-level value`);
    expect(() => unmarshalValue(bytes(''))).toThrow('unexpected end of JSON input');
    expect(() => unmarshalValue(bytes('{"a":'))).toThrow('unexpected end of JSON input');
    expect(unmarshalValue(bytes(' {"a":"b"} '))).toEqual({ kind: 'object', entries: [['a', { kind: 'string', value: 'b' }]] });
  });
});

describe('quoteChar', () => {
  it('quotes bytes as Go rune literals', () => {
    expect(quoteChar(0x61)).toBe(`'a'`);
    expect(quoteChar(0x09)).toBe(`'\\t'`);
    expect(quoteChar(0x7f)).toBe(`'\\x7f'`);
    expect(quoteChar(0x85)).toBe(`'\\u0085'`);
    expect(quoteChar(0xc3)).toBe(`'Ã'`);
  });
});
