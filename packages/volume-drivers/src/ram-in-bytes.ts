import { goQuote } from '@berth/gocompat';

const BINARY_UNITS: Readonly<Record<string, number>> = {
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

// Go's strconv.ParseFloat in its decimal form; hexadecimal floats and inf/nan never reach it here.
const DECIMAL_FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses a human-readable size in binary units exactly as go-units `RAMInBytes` (v0.5): `1024`,
 * `1.5k`, `10 MiB`, `2GB`. Throws an `Error` with go-units' text (`invalid size: '<v>'`,
 * `invalid suffix: '<s>'`, or Go's `strconv.ParseFloat` text).
 */
export function ramInBytes(value: string): number {
  const sep = lastIndexOfAny(value, '0123456789. ');
  if (sep === -1) throw new Error(`invalid size: '${value}'`);
  const num = value[sep] === ' ' ? value.slice(0, sep) : value.slice(0, sep + 1);
  let suffix = value.slice(sep + 1);

  if (!DECIMAL_FLOAT.test(num)) throw new Error(`strconv.ParseFloat: parsing ${goQuote(num)}: invalid syntax`);
  let size = Number(num);
  if (!Number.isFinite(size)) throw new Error(`strconv.ParseFloat: parsing ${goQuote(num)}: value out of range`);
  if (size < 0) throw new Error(`invalid size: '${value}'`);
  if (suffix === '') return Math.trunc(size);

  const badSuffix = (): Error => new Error(`invalid suffix: '${suffix}'`);
  if (Buffer.byteLength(suffix) > 3) throw badSuffix();
  suffix = suffix.toLowerCase();
  if (suffix[0] === 'b') {
    if (suffix.length > 1) throw badSuffix();
    return Math.trunc(size);
  }
  const multiplier = BINARY_UNITS[suffix[0] ?? ''];
  if (multiplier === undefined) throw badSuffix();
  size *= multiplier;
  if (suffix.length === 2 && suffix[1] !== 'b') throw badSuffix();
  if (suffix.length === 3 && suffix.slice(1) !== 'ib') throw badSuffix();
  return Math.trunc(size);
}

function lastIndexOfAny(value: string, chars: string): number {
  for (let i = value.length - 1; i >= 0; i--) if (chars.includes(value[i] ?? '')) return i;
  return -1;
}
