// Go's `encoding/json` output, as moby's `WriteJSON` writes the Engine API's answers: HTML escaping
// off, U+2028/U+2029 escaped, and the keys of every map (`Labels`, `Options`, `Status`, event
// `Attributes`, `/info`'s `IndexConfigs`) sorted by their bytes, whatever order they were inserted
// in. Structs keep their field order and are not touched.

import { randomBytes } from 'node:crypto';

/** JSON as Go's encoder writes it for moby's `WriteJSON`: one line, newline terminated. */
export function goJson(value: unknown): string {
  return `${goJsonText(value)}\n`;
}

/** `goJson` without the newline (one event of a stream, one value inside another). */
export function goJsonText(value: unknown): string {
  const base = rawMaps.length;
  let text = JSON.stringify(value);
  if (rawMaps.length > base) {
    text = text.replace(RAW_MAP_PATTERN, (token, index: string) => rawMaps[Number(index)] ?? token);
    rawMaps.length = base;
  }
  // Scanned once; replaced only in the rare answer that has them.
  return LINE_SEPARATORS.test(text) ? text.replace(LINE_SEPARATORS_ALL, (c) => `\\u${c.charCodeAt(0).toString(16)}`) : text;
}

const LINE_SEPARATORS = /[\u2028\u2029]/;
const LINE_SEPARATORS_ALL = /[\u2028\u2029]/g;

/**
 * Go's order of strings: by their UTF-8 bytes, which is the order of their code points. JavaScript's
 * `<` compares UTF-16 code units instead, which disagrees only when a surrogate (a code point above
 * U+FFFF) meets a code unit in U+E000..U+FFFF; those are moved into code point order here.
 */
export function compareGoStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * A Go `map[string]T` as Go encodes it: keys in Go's order, for `goJson`. The map itself when its
 * keys already are (the common case costs one pass and no copy), else a sorted copy. `null` stays
 * `null`. JavaScript enumerates keys that look like array indexes (`"7"`, `"10"`) first and in
 * numeric order, in any object: a map with such keys is rendered to JSON here, in Go's order, and
 * `goJson` splices that text in.
 */
export function goMap<T>(map: Readonly<Record<string, T>>): Record<string, T>;
export function goMap<T>(map: Readonly<Record<string, T>> | null): Record<string, T> | null;
export function goMap<T>(map: Readonly<Record<string, T>> | null): Record<string, T> | null {
  if (map === null) return null;
  const keys = Object.keys(map);
  // Index-like keys, when there are any, come first.
  if (keys.length > 0 && ARRAY_INDEX.test(keys[0] as string)) return new RawGoMap(map, keys) as unknown as Record<string, T>;
  // Keys without surrogates or U+E000..U+FFFF (nearly all) compare the same in UTF-16 and in Go:
  // the engine's own comparison is twice as fast as `compareGoStrings`.
  const compare = keys.some((key) => HIGH_CODE_UNITS.test(key)) ? compareGoStrings : compareCodeUnits;
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) sorted = compare(keys[i - 1] as string, keys[i] as string) < 0;
  if (sorted) return map as Record<string, T>;
  const out: Record<string, T> = {};
  for (const key of keys.sort(compare)) setKey(out, key, map[key] as T);
  return out;
}

const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;
const HIGH_CODE_UNITS = /[\ud800-\uffff]/;

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `out[key] = value`, where a key `__proto__` (a label may be called that) stays a key. */
function setKey<T>(out: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/** The rendered maps of the `goJsonText` calls in progress; their tokens stand in for them. */
const rawMaps: string[] = [];
const RAW_MAP_TOKEN = `go-map-${randomBytes(12).toString('hex')}-`;
const RAW_MAP_PATTERN = new RegExp(`"${RAW_MAP_TOKEN}(\\d+)"`, 'g');

/** A map rendered in Go's key order; `JSON.stringify` writes a token that `goJsonText` replaces. */
class RawGoMap {
  readonly #json: string;

  constructor(map: Readonly<Record<string, unknown>>, keys: string[]) {
    this.#json = `{${keys
      .sort(compareGoStrings)
      .map((key) => `${JSON.stringify(key)}:${goJsonText(map[key])}`)
      .join(',')}}`;
  }

  toJSON(): string {
    rawMaps.push(this.#json);
    return `${RAW_MAP_TOKEN}${rawMaps.length - 1}`;
  }
}

/**
 * A Go `interface{}` decoded from JSON (a plugin's `Status`): every object in it is a map, so each
 * gets Go's key order, at any depth.
 */
export function goAnyValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(goAnyValue);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) setKey(out, key, goAnyValue(item));
  return goMap(out);
}
