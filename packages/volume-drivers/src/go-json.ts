/**
 * Reads a field the way Go's `encoding/json` fills a struct field: keys match case-insensitively
 * and, when several keys fold to the same name, the last one wins. Plugins written for dockerd rely
 * on this (`{"mountpoint": "/x"}` works there).
 */
export function goField(value: unknown, name: string): unknown {
  if (!isJsonObject(value)) return undefined;
  const wanted = name.toLowerCase();
  let found: unknown;
  for (const [key, field] of Object.entries(value)) if (key.toLowerCase() === wanted) found = field;
  return found;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The JSON type name Go reports in "cannot unmarshal <type> into ..." errors. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
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
