import { describe, expect, it } from 'vitest';
import { ramInBytes } from './ram-in-bytes.js';

describe('ramInBytes', () => {
  it('parses sizes in binary units like go-units', () => {
    expect(ramInBytes('0')).toBe(0);
    expect(ramInBytes('1234')).toBe(1234);
    expect(ramInBytes('32kb')).toBe(32 * 1024);
    expect(ramInBytes('32Kb')).toBe(32 * 1024);
    expect(ramInBytes('32KiB')).toBe(32 * 1024);
    expect(ramInBytes('1M')).toBe(1024 * 1024);
    expect(ramInBytes('1.5 g')).toBe(1.5 * 1024 ** 3);
    expect(ramInBytes('2t')).toBe(2 * 1024 ** 4);
    expect(ramInBytes('1p')).toBe(1024 ** 5);
    expect(ramInBytes('12b')).toBe(12);
    expect(ramInBytes('0.5')).toBe(0);
  });

  it('rejects what go-units rejects, with its texts', () => {
    expect(() => ramInBytes('hello')).toThrow("invalid size: 'hello'");
    expect(() => ramInBytes('')).toThrow("invalid size: ''");
    expect(() => ramInBytes('-1')).toThrow("invalid size: '-1'");
    expect(() => ramInBytes('32kbb')).toThrow("invalid suffix: 'kbb'");
    expect(() => ramInBytes('32bk')).toThrow("invalid suffix: 'bk'");
    expect(() => ramInBytes('32x')).toThrow("invalid suffix: 'x'");
    expect(() => ramInBytes('32kibi')).toThrow("invalid suffix: 'kibi'");
    expect(() => ramInBytes('1.2.3')).toThrow('strconv.ParseFloat: parsing "1.2.3": invalid syntax');
    expect(() => ramInBytes('5  k')).toThrow('strconv.ParseFloat: parsing "5 ": invalid syntax');
  });
});
