import { invalidParameter } from '@berth/errdefs';

/**
 * Parses `since` / `until` of `GET /events` (unix seconds with an optional fraction, moby's
 * `timestamp.ParseTimestamps`) into unix nanoseconds. Empty and `-1` mean "not given". A malformed
 * value is a 400 with the text of current moby (older dockerd answered 500).
 */
export function parseEventTime(value: string): bigint | undefined {
  if (value === '') return undefined;
  const dot = value.indexOf('.');
  const secText = dot < 0 ? value : value.slice(0, dot);
  const fracText = dot < 0 ? '' : value.slice(dot + 1);
  if (!/^[+-]?\d+$/.test(secText)) {
    throw invalidParameter(`invalid timestamp ${JSON.stringify(value)}: invalid seconds ${JSON.stringify(secText)}: invalid syntax`);
  }
  const seconds = BigInt(secText);
  if (seconds > 9223372036854775807n || seconds < -9223372036854775808n) {
    throw invalidParameter(`invalid timestamp ${JSON.stringify(value)}: invalid seconds ${JSON.stringify(secText)}: value out of range`);
  }
  if (fracText !== '' && !/^\d+$/.test(fracText)) {
    throw invalidParameter(`invalid timestamp ${JSON.stringify(value)}: invalid nanoseconds ${JSON.stringify(fracText)}: invalid syntax`);
  }
  // moby reads a seconds part of -1 as "not given", whatever the fraction.
  if (seconds === -1n) return undefined;
  const nanos = BigInt(fracText.padEnd(9, '0').slice(0, 9));
  return seconds * 1_000_000_000n + nanos;
}
