const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '"': '\\"',
  '\\': '\\\\',
};

/**
 * Go's `%q` (`strconv.Quote`), so that texts built from user input read exactly as moby's: printable
 * characters stay as they are, everything else is escaped the way Go escapes it.
 */
export function goQuote(value: string): string {
  let out = '"';
  for (const char of value) {
    const short = SHORT_ESCAPES[char];
    if (short !== undefined) out += short;
    else if (char === ' ' || PRINTABLE.test(char)) out += char;
    else out += escapeCodePoint(char.codePointAt(0) ?? 0);
  }
  return `${out}"`;
}

function escapeCodePoint(code: number): string {
  if (code < 0x20 || code === 0x7f) return `\\x${hex(code, 2)}`;
  if (code < 0x10000) return `\\u${hex(code, 4)}`;
  return `\\U${hex(code, 8)}`;
}

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}
