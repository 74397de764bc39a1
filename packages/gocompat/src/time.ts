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

// Go's strict RFC 3339 (`time.RFC3339` as `time.Time.UnmarshalJSON` parses it since Go 1.20).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** The time an RFC 3339 string names, or `undefined` when it is not one Go would accept. */
export function parseRFC3339(text: string): Date | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const zoneHours = Number(m[9] ?? 0);
  const zoneMinutes = Number(m[10] ?? 0);
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59 || zoneHours > 23 || zoneMinutes > 59) return undefined;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years below 100 to 19xx.
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCDate() !== day) return undefined; // 31 February
  const millis = Math.floor(Number(`0.${m[7] ?? '0'}`) * 1000);
  const offset = (m[8] === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes);
  date.setUTCHours(hour, minute - offset, second, millis);
  return date;
}
