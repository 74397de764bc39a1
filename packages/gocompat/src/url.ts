import { goQuote } from './quote.js';

/** The parts of a URL the local driver needs, with the host's offsets in the parsed string. */
export interface GoUrl {
  /** `host[:port]` as written (Go's `URL.Host`), `''` when the URL has no authority. */
  host: string;
  /** Go's `URL.Port()`. */
  port: string;
  /** Offset of `host` in the input. */
  hostStart: number;
}

/**
 * Parses a URL with the rules and error texts of Go's `net/url.Parse`, as far as the local driver
 * sees them (CIFS device URLs): `parse "<url>": <reason>`.
 */
export function parseGoUrl(raw: string): GoUrl {
  try {
    return parse(raw);
  } catch (err) {
    throw new Error(`parse ${goQuote(raw)}: ${(err as Error).message}`);
  }
}

function parse(raw: string): GoUrl {
  const hashAt = raw.indexOf('#');
  const url = hashAt < 0 ? raw : raw.slice(0, hashAt);
  if (hashAt >= 0) unescape(raw.slice(hashAt + 1), 'other');
  if (/[\x00-\x1f\x7f]/.test(url)) throw new Error('net/url: invalid control character in URL');

  const none: GoUrl = { host: '', port: '', hostStart: -1 };
  if (url === '' || url === '*') return none;
  const { scheme, rest: afterScheme } = splitScheme(url);
  const queryAt = afterScheme.indexOf('?');
  const rest = queryAt < 0 ? afterScheme : afterScheme.slice(0, queryAt);
  const restStart = url.length - afterScheme.length;

  if (!rest.startsWith('/')) {
    if (scheme !== '') return none; // opaque URL such as mailto:x
    if ((rest.split('/', 1)[0] ?? '').includes(':')) throw new Error('first path segment in URL cannot contain colon');
  }
  let result = none;
  let path = rest;
  if ((scheme !== '' || !rest.startsWith('///')) && rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    const authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
    path = slash < 0 ? '' : rest.slice(slash);
    const at = authority.lastIndexOf('@');
    if (at >= 0) validateUserinfo(authority.slice(0, at));
    const host = authority.slice(at + 1);
    validateHost(host);
    result = { host, port: portOf(host), hostStart: restStart + 2 + at + 1 };
  }
  unescape(path, 'other');
  return result;
}

function splitScheme(url: string): { scheme: string; rest: string } {
  for (let i = 0; i < url.length; i++) {
    const c = url[i] ?? '';
    if (/[a-zA-Z]/.test(c)) continue;
    if (/[0-9+.-]/.test(c)) {
      if (i === 0) return { scheme: '', rest: url };
      continue;
    }
    if (c === ':') {
      if (i === 0) throw new Error('missing protocol scheme');
      return { scheme: url.slice(0, i), rest: url.slice(i + 1) };
    }
    return { scheme: '', rest: url };
  }
  return { scheme: '', rest: url };
}

function validateUserinfo(userinfo: string): void {
  if (!/^[a-zA-Z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) throw new Error('net/url: invalid userinfo');
  unescape(userinfo, 'other');
}

function validateHost(host: string): void {
  let colonPort: string;
  if (host.startsWith('[')) {
    const close = host.lastIndexOf(']');
    if (close < 0) throw new Error("missing ']' in host");
    colonPort = host.slice(close + 1);
  } else {
    const colon = host.lastIndexOf(':');
    colonPort = colon < 0 ? '' : host.slice(colon);
  }
  if (!validOptionalPort(colonPort)) throw new Error(`invalid port ${goQuote(colonPort)} after host`);
  unescape(host, 'host');
}

function validOptionalPort(colonPort: string): boolean {
  return colonPort === '' || /^:[0-9]*$/.test(colonPort);
}

function portOf(host: string): string {
  const colon = host.lastIndexOf(':');
  if (colon < 0) return '';
  const colonPort = host.slice(colon);
  if (!validOptionalPort(colonPort)) return '';
  if (host.startsWith('[') && !host.slice(0, colon).endsWith(']')) return '';
  return colonPort.slice(1);
}

const HOST_CHARS = /^[a-zA-Z0-9!$&'()*+,;=:[\]<>"\-_.~]$/;

/** Checks escapes (and, in a host, the characters) the way Go's `unescape` does; decoding is not needed here. */
function unescape(value: string, mode: 'host' | 'other'): void {
  for (let i = 0; i < value.length; ) {
    const c = value[i] ?? '';
    if (c === '%') {
      const escape = value.slice(i, i + 3);
      if (!/^%[0-9a-fA-F]{2}$/.test(escape)) throw new Error(`invalid URL escape ${goQuote(escape)}`);
      if (mode === 'host' && parseInt(escape[1] ?? '', 16) < 8 && escape !== '%25') {
        throw new Error(`invalid URL escape ${goQuote(escape)}`);
      }
      i += 3;
      continue;
    }
    if (mode === 'host' && c.charCodeAt(0) < 0x80 && !HOST_CHARS.test(c)) {
      throw new Error(`invalid character ${goQuote(c)} in host name`);
    }
    i++;
  }
}
