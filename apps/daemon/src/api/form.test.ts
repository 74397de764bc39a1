import { describe, expect, it } from 'vitest';
import { boolValue, Form, unescapePath } from './form.js';

describe('Form', () => {
  it('parses the query as Go url.ParseQuery', () => {
    const form = Form.parse('filters=%7B%22a%22%3A1%7D&force=1&x=a+b&x=2&empty&=v');
    expect(form.get('filters')).toBe('{"a":1}');
    expect(form.get('x')).toBe('a b');
    expect(form.getAll('x')).toEqual(['a b', '2']);
    expect(form.has('empty')).toBe(true);
    expect(form.get('missing')).toBe('');
    expect(Form.parse('name=%C3%A9').get('name')).toBe('é');
  });

  it('rejects what Go rejects, with its texts and as a 400', () => {
    expect(() => Form.parse('a=%zz')).toThrow(expect.objectContaining({ kind: 'invalid-parameter', message: 'invalid URL escape "%zz"' }));
    expect(() => Form.parse('a=1%2')).toThrow('invalid URL escape "%2"');
    expect(() => Form.parse('a=1;b=2')).toThrow('invalid semicolon separator in query');
  });
});

describe('boolValue', () => {
  it('is false only for "", 0, no, false, none', () => {
    const form = Form.parse('a=&b=0&c=NO&d=%20false%20&e=none&f=1&g=yes&h=anything');
    for (const key of ['a', 'b', 'c', 'd', 'e', 'missing']) expect(boolValue(form, key), key).toBe(false);
    for (const key of ['f', 'g', 'h']) expect(boolValue(form, key), key).toBe(true);
  });
});

describe('unescapePath', () => {
  it('keeps + and decodes escapes', () => {
    expect(unescapePath('/volumes/a+b%2Fc')).toBe('/volumes/a+b/c');
    expect(() => unescapePath('/volumes/%g0')).toThrow('invalid URL escape "%g0"');
  });
});
