import { describe, expect, it } from 'vitest';
import { goQuote } from './quote.js';

describe('goQuote', () => {
  it('quotes like Go strconv.Quote', () => {
    expect(goQuote('hello world')).toBe('"hello world"');
    expect(goQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(goQuote('a\nb\tc\x00\x7f')).toBe('"a\\nb\\tc\\x00\\x7f"');
    expect(goQuote('é中😀')).toBe('"é中😀"');
    expect(goQuote('\u00a0\u200b')).toBe('"\\u00a0\\u200b"');
    expect(goQuote('\u{e0001}')).toBe('"\\U000e0001"');
  });
});
