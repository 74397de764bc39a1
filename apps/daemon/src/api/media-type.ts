/**
 * Go's `mime.ParseMediaType`, reduced to what decides acceptance: the lower-cased media type, or
 * the error Go returns (its text ends up in moby's `malformed Content-Type header (...)`).
 */
export function parseMediaType(value: string): string {
  const semicolon = value.indexOf(';');
  const base = semicolon < 0 ? value : value.slice(0, semicolon);
  const mediaType = base.trim().toLowerCase();
  checkMediaType(mediaType);
  const seen = new Set<string>();
  let rest = value.slice(base.length);
  while (rest.length > 0) {
    rest = rest.trimStart();
    if (rest.length === 0) break;
    const param = consumeParam(rest);
    if (param === undefined) {
      if (rest.trim() === ';') break;
      throw new Error('mime: invalid media parameter');
    }
    if (seen.has(param.key)) throw new Error('mime: duplicate parameter name');
    seen.add(param.key);
    rest = param.rest;
  }
  return mediaType;
}

function checkMediaType(s: string): void {
  const [type, rest] = consumeToken(s);
  if (type === '') throw new Error('mime: no media type');
  if (rest === '') return;
  if (!rest.startsWith('/')) throw new Error('mime: expected slash after first token');
  const [subtype, after] = consumeToken(rest.slice(1));
  if (subtype === '') throw new Error('mime: expected token after slash');
  if (after !== '') throw new Error('mime: unexpected content after media subtype');
}

function consumeParam(v: string): { key: string; rest: string } | undefined {
  let rest = v.trimStart();
  if (!rest.startsWith(';')) return undefined;
  rest = rest.slice(1).trimStart();
  const [key, afterKey] = consumeToken(rest);
  if (key === '') return undefined;
  rest = afterKey.trimStart();
  if (!rest.startsWith('=')) return undefined;
  rest = rest.slice(1).trimStart();
  const [value, afterValue] = consumeValue(rest);
  if (value === '' && afterValue === rest) return undefined;
  return { key: key.toLowerCase(), rest: afterValue };
}

function consumeToken(v: string): [string, string] {
  let i = 0;
  while (i < v.length && isTokenChar(v.charCodeAt(i))) i++;
  return [v.slice(0, i), v.slice(i)];
}

function consumeValue(v: string): [string, string] {
  if (!v.startsWith('"')) return consumeToken(v);
  let out = '';
  for (let i = 1; i < v.length; i++) {
    const c = v[i] as string;
    if (c === '"') return [out, v.slice(i + 1)];
    const next = v[i + 1];
    if (c === '\\' && next !== undefined && TSPECIALS.includes(next)) {
      out += next;
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') return ['', v];
    out += c;
  }
  return ['', v];
}

const TSPECIALS = '()<>@,;:\\"/[]?=';

function isTokenChar(c: number): boolean {
  return c > 0x20 && c < 0x7f && !TSPECIALS.includes(String.fromCharCode(c));
}
