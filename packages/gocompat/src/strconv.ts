import { invalidParameter, type BerthError } from '@berth/errdefs';
import { goQuote } from './quote.js';

// Go's `strconv` as far as moby's handlers expose its texts.

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * Go's `strconv.Atoi` on a 64-bit platform: an optional sign and decimal digits, nothing else.
 * Errors carry Go's text (`strconv.Atoi: parsing "x": invalid syntax`, `... value out of range`) and
 * are 400s, as moby answers them.
 */
export function atoi(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s)) throw numError(s, 'invalid syntax');
  const value = BigInt(s);
  if (value > INT64_MAX || value < INT64_MIN) throw numError(s, 'value out of range');
  return Number(value);
}

function numError(s: string, reason: string): BerthError {
  return invalidParameter(`strconv.Atoi: parsing ${goQuote(s)}: ${reason}`);
}
