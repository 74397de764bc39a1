import { describe, expect, it } from 'vitest';
import { parseMediaType } from './media-type.js';

describe('parseMediaType', () => {
  it('lower-cases the media type and accepts parameters', () => {
    expect(parseMediaType('Application/JSON; charset=utf-8')).toBe('application/json');
    expect(parseMediaType('application/json;charset="utf-8";')).toBe('application/json');
    expect(parseMediaType('text')).toBe('text');
  });

  it('fails as Go mime does', () => {
    expect(() => parseMediaType('')).toThrow('mime: no media type');
    expect(() => parseMediaType('application json')).toThrow('mime: expected slash after first token');
    expect(() => parseMediaType('application/')).toThrow('mime: expected token after slash');
    expect(() => parseMediaType('application/json x')).toThrow('mime: unexpected content after media subtype');
    expect(() => parseMediaType('application/json; charset')).toThrow('mime: invalid media parameter');
    expect(() => parseMediaType('application/json; a=1; A=2')).toThrow('mime: duplicate parameter name');
  });
});
