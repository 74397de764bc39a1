/**
 * Reads a field the way Go's `encoding/json` fills a struct field: keys match case-insensitively
 * and, when several keys fold to the same name, the last one in the document wins. Plugins and
 * spec files written for dockerd rely on this (`{"implements": [...]}` works there).
 */
export function goField(value: unknown, name: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const wanted = name.toLowerCase();
  let found: unknown;
  for (const [key, field] of Object.entries(value)) if (key.toLowerCase() === wanted) found = field;
  return found;
}

/** The JSON type name Go reports in "cannot unmarshal <type> into ..." errors. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return typeof value;
}
