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

/**
 * Why Go's `strconv.ParseUint(s, 10, bits)` refuses `s` (`invalid syntax`, `value out of range`,
 * the text moby quotes without the function's prefix), or `undefined` when it parses.
 */
export function parseUintReason(s: string, bits: number): string | undefined {
  if (!/^[0-9]+$/.test(s)) return 'invalid syntax';
  return BigInt(s) >= 1n << BigInt(bits) ? 'value out of range' : undefined;
}

/** Go's `strconv.ParseBool`; anything else is a 400 `strconv.ParseBool: parsing "x": invalid syntax`. */
export function parseBool(s: string): boolean {
  if (TRUE_TEXTS.has(s)) return true;
  if (FALSE_TEXTS.has(s)) return false;
  throw invalidParameter(`strconv.ParseBool: parsing ${goQuote(s)}: invalid syntax`);
}

const TRUE_TEXTS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_TEXTS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);
