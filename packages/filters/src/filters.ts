import { invalidParameter, type BerthError } from '@berth/errdefs';

/** moby's `invalidFilter` text: `invalid filter`, `invalid filter 'k'`, `invalid filter 'k=[a b]'`. */
export function invalidFilter(key?: string, values?: readonly string[]): BerthError {
  let message = 'invalid filter';
  if (key !== undefined && key !== '') {
    message += ` '${key}`;
    if (values !== undefined) message += `=[${values.join(' ')}]`;
    message += `'`;
  }
  return invalidParameter(message);
}

/**
 * Filter arguments of the Engine API (`?filters=`), a mapping of keys to sets of values, parsed and
 * matched exactly as moby's `filters.Args`. Values carry the boolean of the JSON form; a value
 * given as `false` is present for `get` but does not match exactly, as in moby.
 */
export class Filters {
  readonly #fields: Map<string, Map<string, boolean>>;

  private constructor(fields: Map<string, Map<string, boolean>>) {
    this.#fields = fields;
  }

  static empty(): Filters {
    return new Filters(new Map());
  }

  static of(entries: Iterable<readonly [string, string]>): Filters {
    const filters = Filters.empty();
    for (const [key, value] of entries) filters.add(key, value);
    return filters;
  }

  /**
   * Parses the `filters` query value: `{"k":{"v":true}}` or the legacy `{"k":["v"]}`. An empty or
   * absent value is no filter; anything else unparseable is 400 `invalid filter`.
   */
  static parse(raw: string | null | undefined): Filters {
    if (raw === undefined || raw === null || raw === '') return Filters.empty();
    let decoded: unknown;
    try {
      decoded = JSON.parse(raw);
    } catch {
      throw invalidFilter();
    }
    if (decoded === null) return Filters.empty();
    if (typeof decoded !== 'object' || Array.isArray(decoded)) throw invalidFilter();
    const fields = new Map<string, Map<string, boolean>>();
    const entries = Object.entries(decoded as Record<string, unknown>);
    const current = entries.every(([, v]) => v === null || isBoolMap(v));
    const legacy = !current && entries.every(([, v]) => v === null || isStringArray(v));
    if (!current && !legacy) throw invalidFilter();
    for (const [key, value] of entries) {
      const values = new Map<string, boolean>();
      if (Array.isArray(value)) for (const v of value as string[]) values.set(v, true);
      else if (value !== null) for (const [v, b] of Object.entries(value as Record<string, boolean>)) values.set(v, b);
      fields.set(key, values);
    }
    return new Filters(fields);
  }

  add(key: string, value: string): void {
    let values = this.#fields.get(key);
    if (values === undefined) {
      values = new Map();
      this.#fields.set(key, values);
    }
    values.set(value, true);
  }

  delete(key: string, value: string): void {
    const values = this.#fields.get(key);
    if (values === undefined) return;
    values.delete(value);
    if (values.size === 0) this.#fields.delete(key);
  }

  clone(): Filters {
    return new Filters(new Map([...this.#fields].map(([k, v]) => [k, new Map(v)])));
  }

  get size(): number {
    return this.#fields.size;
  }

  keys(): string[] {
    return [...this.#fields.keys()];
  }

  get(key: string): string[] {
    return [...(this.#fields.get(key)?.keys() ?? [])];
  }

  contains(key: string): boolean {
    return this.#fields.has(key);
  }

  /** 400 `invalid filter '<key>'` for the first key not accepted. */
  validate(accepted: Iterable<string>): void {
    const allowed = new Set(accepted);
    for (const key of this.#fields.keys()) if (!allowed.has(key)) throw invalidFilter(key);
  }

  /** `true|1` / `false|0`; absent gives the default; anything else or both is `invalid filter 'k=[..]'`. */
  getBoolOrDefault(key: string, defaultValue: boolean): boolean {
    const values = this.#fields.get(key);
    if (values === undefined) return defaultValue;
    if (values.size === 0) throw invalidFilter(key);
    const isFalse = values.get('0') === true || values.get('false') === true;
    const isTrue = values.get('1') === true || values.get('true') === true;
    if (isFalse === isTrue) throw invalidFilter(key, this.get(key));
    return isTrue;
  }

  /** True when no value is set for the key, or the source equals one of them. */
  exactMatch(key: string, source: string): boolean {
    const values = this.#fields.get(key);
    if (values === undefined || values.size === 0) return true;
    return values.get(source) === true;
  }

  uniqueExactMatch(key: string, source: string): boolean {
    const values = this.#fields.get(key);
    if (values === undefined || values.size === 0) return true;
    if (values.size !== 1) return false;
    return values.get(source) === true;
  }

  /** Exact match, or any value as a regular expression found in the source (invalid patterns skipped). */
  match(key: string, source: string): boolean {
    if (this.exactMatch(key, source)) return true;
    for (const pattern of this.#fields.get(key)?.keys() ?? []) {
      const re = compile(pattern);
      if (re?.test(source)) return true;
    }
    return false;
  }

  /** Exact match, or the source starts with one of the values. */
  fuzzyMatch(key: string, source: string): boolean {
    if (this.exactMatch(key, source)) return true;
    for (const prefix of this.#fields.get(key)?.keys() ?? []) if (source.startsWith(prefix)) return true;
    return false;
  }

  /**
   * Every value `k` or `k=v` at the key must be present in the sources (value compared exactly,
   * split on the first `=`). No values: matches. Values but no sources: no match.
   */
  matchKVList(key: string, sources: Readonly<Record<string, string>> | null | undefined): boolean {
    const values = this.#fields.get(key);
    if (values === undefined || values.size === 0) return true;
    if (sources === null || sources === undefined || Object.keys(sources).length === 0) return false;
    for (const value of values.keys()) {
      const eq = value.indexOf('=');
      const k = eq < 0 ? value : value.slice(0, eq);
      if (!Object.hasOwn(sources, k)) return false;
      if (eq >= 0 && sources[k] !== value.slice(eq + 1)) return false;
    }
    return true;
  }

  toJSON(): Record<string, Record<string, boolean>> {
    return Object.fromEntries([...this.#fields].map(([k, v]) => [k, Object.fromEntries(v)]));
  }
}

const patternCache = new Map<string, RegExp | null>();

function compile(pattern: string): RegExp | null {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = null;
    }
    if (patternCache.size > 1024) patternCache.clear();
    patternCache.set(pattern, re);
  }
  return re;
}

function isBoolMap(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((b) => typeof b === 'boolean');
}

function isStringArray(v: unknown): boolean {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}
