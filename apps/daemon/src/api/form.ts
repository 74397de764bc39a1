import { invalidParameter } from '@berth/errdefs';

/**
 * The query string as Go's `url.ParseQuery` reads it (moby's `r.Form`): `&`-separated, `+` is a
 * space, a `;` or a malformed `%` escape is an error (400, as moby's `ParseForm`); the pairs that
 * did parse are still kept, as in Go.
 */
export class Form {
  readonly #values: Map<string, string[]>;
  /** Most requests have no query: they share one (a form is never changed once parsed). */
  static readonly #empty = new Form(new Map());

  private constructor(values: Map<string, string[]>) {
    this.#values = values;
  }

  static parse(rawQuery: string): Form {
    if (rawQuery === '') return Form.#empty;
    const values = new Map<string, string[]>();
    let error: string | undefined;
    for (const pair of rawQuery.split('&')) {
      if (pair.includes(';')) {
        error = 'invalid semicolon separator in query';
        continue;
      }
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      try {
        const key = unescapeQuery(eq < 0 ? pair : pair.slice(0, eq));
        const value = unescapeQuery(eq < 0 ? '' : pair.slice(eq + 1));
        values.set(key, [...(values.get(key) ?? []), value]);
      } catch (err) {
        error ??= (err as Error).message;
      }
    }
    if (error !== undefined) throw invalidParameter(error);
    return new Form(values);
  }

  /** The first value, or `''` (Go's `Form.Get`). */
  get(key: string): string {
    return this.#values.get(key)?.[0] ?? '';
  }

  has(key: string): boolean {
    return this.#values.has(key);
  }

  getAll(key: string): string[] {
    return [...(this.#values.get(key) ?? [])];
  }
}

/** moby's `httputils.BoolValue`: `""`, `0`, `no`, `false`, `none` are false, anything else true. */
export function boolValue(form: Form, key: string): boolean {
  return !['', '0', 'no', 'false', 'none'].includes(form.get(key).trim().toLowerCase());
}

/** Go's `url.QueryUnescape`; the input is the raw request line (one char per byte). */
export function unescapeQuery(s: string): string {
  return percentDecode(s.replaceAll('+', ' '), s);
}

/** Go's `url.PathUnescape`: like the query form, but `+` stays `+`. */
export function unescapePath(s: string): string {
  return percentDecode(s, s);
}

const NOT_ASCII = /[^\x00-\x7f]/;

function percentDecode(s: string, original: string): string {
  if (!s.includes('%')) return NOT_ASCII.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x25) {
      bytes.push(c & 0xff);
      continue;
    }
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
      // Go reports the escape as written (same length: only `+` was replaced), cut to three characters.
      throw new Error(`invalid URL escape ${JSON.stringify(original.slice(i, i + 3))}`);
    }
    bytes.push(Number.parseInt(hex, 16));
    i += 2;
  }
  return Buffer.from(bytes).toString('utf8');
}
