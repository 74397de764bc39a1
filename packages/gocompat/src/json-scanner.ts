/**
 * A JSON parser that fails exactly where Go's `encoding/json` scanner fails and with its texts
 * (`invalid character 'i' looking for beginning of object key string`, `unexpected EOF`, ...):
 * clients of the Engine API see Go's messages inside moby's error bodies. Iterative, so hostile
 * nesting cannot overflow the stack; numbers keep their literal text.
 */
export type JsonValue =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'number'; readonly literal: string }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'null' }
  | { readonly kind: 'array'; readonly items: JsonValue[] }
  | { readonly kind: 'object'; readonly entries: Array<[string, JsonValue]> };

/**
 * `syntax`: Go's SyntaxError; `eof`: no value at all (io.EOF); `truncated`: the value was cut
 * short; `type`: a value of the wrong type for where it goes (Go's UnmarshalTypeError).
 */
export type GoJsonErrorCode = 'syntax' | 'eof' | 'truncated' | 'type';

export class GoJsonError extends Error {
  readonly code: GoJsonErrorCode;

  constructor(code: GoJsonErrorCode, message: string) {
    super(message);
    this.name = 'GoJsonError';
    this.code = code;
  }
}

/** Go's `maxNestingDepth`. */
const MAX_DEPTH = 10_000;

/**
 * Go's `json.Decoder.Decode` followed by `More()`: reads the first value and reports whether
 * something other than whitespace, `]` or `}` follows it (Go's own quirk, kept).
 */
export function decodeFirstValue(bytes: Uint8Array): { value: JsonValue; more: boolean } {
  const parser = new Parser(bytes, 'unexpected EOF');
  parser.skipSpace();
  if (parser.atEnd()) throw new GoJsonError('eof', 'EOF');
  const value = parser.value();
  parser.skipSpace();
  const next = parser.peek();
  return { value, more: next !== undefined && next !== 0x5d && next !== 0x7d };
}

/** Go's `json.Unmarshal` syntax check: exactly one value, nothing but whitespace around it. */
export function unmarshalValue(bytes: Uint8Array): JsonValue {
  const parser = new Parser(bytes, 'unexpected end of JSON input');
  parser.skipSpace();
  if (parser.atEnd()) throw new GoJsonError('truncated', 'unexpected end of JSON input');
  const value = parser.value();
  parser.skipSpace();
  const next = parser.peek();
  if (next !== undefined) throw syntaxError(next, 'after top-level value');
  return value;
}

type Frame = { kind: 'array'; items: JsonValue[] } | { kind: 'object'; entries: Array<[string, JsonValue]>; key: string };

class Parser {
  #pos = 0;
  readonly #bytes: Uint8Array;
  readonly #truncatedText: string;

  constructor(bytes: Uint8Array, truncatedText: string) {
    this.#bytes = bytes;
    this.#truncatedText = truncatedText;
  }

  atEnd(): boolean {
    return this.#pos >= this.#bytes.length;
  }

  peek(): number | undefined {
    return this.#bytes[this.#pos];
  }

  skipSpace(): void {
    while (isSpace(this.#bytes[this.#pos])) this.#pos++;
  }

  value(): JsonValue {
    const stack: Frame[] = [];
    for (;;) {
      let value = this.#beginValue(stack);
      if (value === undefined) continue;
      // A complete value: hand it to the enclosing containers until one needs another value.
      for (;;) {
        const frame = stack.at(-1);
        if (frame === undefined) return value;
        if (frame.kind === 'array') frame.items.push(value);
        else frame.entries.push([frame.key, value]);
        const c = this.#nextNonSpace();
        this.#pos++;
        if (frame.kind === 'array') {
          if (c === 0x2c) break;
          if (c !== 0x5d) throw syntaxError(c, 'after array element');
          stack.pop();
          value = { kind: 'array', items: frame.items };
        } else {
          if (c === 0x2c) {
            frame.key = this.#objectKey();
            break;
          }
          if (c !== 0x7d) throw syntaxError(c, 'after object key:value pair');
          stack.pop();
          value = { kind: 'object', entries: frame.entries };
        }
      }
    }
  }

  /** Starts a value: returns it when it is complete, or pushes a container and returns undefined. */
  #beginValue(stack: Frame[]): JsonValue | undefined {
    const c = this.#nextNonSpace();
    switch (c) {
      case 0x7b: {
        this.#push(stack, c);
        this.#pos++;
        if (this.#nextNonSpace() === 0x7d) {
          this.#pos++;
          return { kind: 'object', entries: [] };
        }
        stack.push({ kind: 'object', entries: [], key: this.#objectKeyAfterSpace() });
        return undefined;
      }
      case 0x5b: {
        this.#push(stack, c);
        this.#pos++;
        if (this.#nextNonSpace() === 0x5d) {
          this.#pos++;
          return { kind: 'array', items: [] };
        }
        stack.push({ kind: 'array', items: [] });
        return undefined;
      }
      case 0x22:
        return { kind: 'string', value: this.#string() };
      case 0x74:
        this.#literal('true');
        return { kind: 'bool', value: true };
      case 0x66:
        this.#literal('false');
        return { kind: 'bool', value: false };
      case 0x6e:
        this.#literal('null');
        return { kind: 'null' };
      default:
        if (c === 0x2d || isDigit(c)) return { kind: 'number', literal: this.#number() };
        throw syntaxError(c, 'looking for beginning of value');
    }
  }

  #push(stack: Frame[], c: number): void {
    if (stack.length + 1 > MAX_DEPTH) throw syntaxError(c, 'exceeded max depth');
  }

  /** After `,` in an object: a key string, then `:`. */
  #objectKey(): string {
    this.#nextNonSpace();
    return this.#objectKeyAfterSpace();
  }

  #objectKeyAfterSpace(): string {
    const c = this.#current();
    if (c !== 0x22) throw syntaxError(c, 'looking for beginning of object key string');
    const key = this.#string();
    const colon = this.#nextNonSpace();
    if (colon !== 0x3a) throw syntaxError(colon, 'after object key');
    this.#pos++;
    return key;
  }

  #nextNonSpace(): number {
    this.skipSpace();
    return this.#current();
  }

  #current(): number {
    const c = this.#bytes[this.#pos];
    if (c === undefined) throw new GoJsonError('truncated', this.#truncatedText);
    return c;
  }

  #string(): string {
    const bytes = this.#bytes;
    this.#pos++;
    let out = '';
    let units: number[] = [];
    let segment = this.#pos;
    const flushRaw = (end: number): void => {
      if (end > segment) {
        out += flushUnits(units) + Buffer.from(bytes.buffer, bytes.byteOffset + segment, end - segment).toString('utf8');
        units = [];
      }
    };
    for (;;) {
      const c = this.#current();
      if (c === 0x22) {
        flushRaw(this.#pos);
        this.#pos++;
        return out + flushUnits(units);
      }
      if (c < 0x20) throw syntaxError(c, 'in string literal');
      if (c !== 0x5c) {
        this.#pos++;
        continue;
      }
      flushRaw(this.#pos);
      this.#pos++;
      const e = this.#current();
      this.#pos++;
      const simple = SIMPLE_ESCAPES.get(e);
      if (simple !== undefined) {
        out += flushUnits(units) + simple;
        units = [];
      } else if (e === 0x75) {
        let unit = 0;
        for (let i = 0; i < 4; i++) {
          const h = this.#current();
          const digit = hexValue(h);
          if (digit < 0) throw syntaxError(h, 'in \\u hexadecimal character escape');
          unit = unit * 16 + digit;
          this.#pos++;
        }
        units.push(unit);
      } else {
        throw syntaxError(e, 'in string escape code');
      }
      segment = this.#pos;
    }
  }

  #literal(word: string): void {
    this.#pos++;
    for (let i = 1; i < word.length; i++) {
      const c = this.#current();
      if (c !== word.charCodeAt(i)) throw syntaxError(c, `in literal ${word} (expecting '${word[i]}')`);
      this.#pos++;
    }
  }

  #number(): string {
    const start = this.#pos;
    if (this.#bytes[this.#pos] === 0x2d) {
      this.#pos++;
      const c = this.#current();
      if (!isDigit(c)) throw syntaxError(c, 'in numeric literal');
    }
    if (this.#bytes[this.#pos] === 0x30) this.#pos++;
    else this.#digits();
    if (this.#bytes[this.#pos] === 0x2e) {
      this.#pos++;
      const c = this.#current();
      if (!isDigit(c)) throw syntaxError(c, 'after decimal point in numeric literal');
      this.#digits();
    }
    const e = this.#bytes[this.#pos];
    if (e === 0x65 || e === 0x45) {
      this.#pos++;
      let c = this.#current();
      if (c === 0x2b || c === 0x2d) {
        this.#pos++;
        c = this.#current();
      }
      if (!isDigit(c)) throw syntaxError(c, 'in exponent of numeric literal');
      this.#digits();
    }
    return Buffer.from(this.#bytes.subarray(start, this.#pos)).toString('latin1');
  }

  #digits(): void {
    while (isDigit(this.#bytes[this.#pos])) this.#pos++;
  }
}

const SIMPLE_ESCAPES = new Map<number, string>([
  [0x22, '"'],
  [0x5c, '\\'],
  [0x2f, '/'],
  [0x62, '\b'],
  [0x66, '\f'],
  [0x6e, '\n'],
  [0x72, '\r'],
  [0x74, '\t'],
]);

/** `\u` escapes as Go decodes them: valid surrogate pairs combine, lone halves become U+FFFD. */
function flushUnits(units: number[]): string {
  let out = '';
  for (let i = 0; i < units.length; i++) {
    const u = units[i] as number;
    const next = units[i + 1];
    if (u >= 0xd800 && u < 0xdc00 && next !== undefined && next >= 0xdc00 && next < 0xe000) {
      out += String.fromCharCode(u, next);
      i++;
    } else if (u >= 0xd800 && u < 0xe000) {
      out += '\ufffd';
    } else {
      out += String.fromCharCode(u);
    }
  }
  return out;
}

function syntaxError(c: number, context: string): GoJsonError {
  return new GoJsonError('syntax', `invalid character ${quoteChar(c)} ${context}`);
}

/** Go's `quoteChar`: the byte as a Go rune literal. */
export function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 92: '\\\\' };
  const escaped = named[c];
  if (escaped !== undefined) return `'${escaped}'`;
  if (c < 0x20 || c === 0x7f) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  // Go quotes the byte as the rune of the same number: U+0080..U+00FF.
  if ((c >= 0x80 && c < 0xa1) || c === 0xad) return `'\\u${c.toString(16).padStart(4, '0')}'`;
  return `'${String.fromCharCode(c)}'`;
}

function isSpace(c: number | undefined): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isDigit(c: number | undefined): c is number {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
