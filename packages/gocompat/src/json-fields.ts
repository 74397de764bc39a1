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
