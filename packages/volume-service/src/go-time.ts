/** Go's zero `time.Time` formatted as RFC 3339: what moby shows for volumes without a creation time. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/**
 * `t.Format(time.RFC3339)` for a time in the process's local zone: no fractional seconds, `Z` for a
 * zero offset, `+hh:mm` / `-hh:mm` otherwise. `undefined` (or an invalid date) is the zero time.
 */
export function formatRFC3339(date: Date | undefined): string {
  if (date === undefined || Number.isNaN(date.getTime())) return ZERO_TIME;
  const offset = -date.getTimezoneOffset();
  const abs = Math.abs(offset);
  const zone = offset === 0 ? 'Z' : `${offset > 0 ? '+' : '-'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  const day = `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${zone}`;
}
