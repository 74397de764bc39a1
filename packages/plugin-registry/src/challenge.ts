/** One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`. */
export interface AuthChallenge {
  /** Lowercased: `basic`, `bearer`, … */
  readonly scheme: string;
  /** Parameter names lowercased; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parses `WWW-Authenticate` values (RFC 9110 §11.6.1): several challenges may share one header,
 * parameters are `name=token` or `name="quoted \" string"`. A token68 credential (`Negotiate abc==`)
 * is kept as the parameter `""`. Malformed tails are dropped rather than thrown: the header comes
 * from the registry and an unusable challenge just means no credentials are sent.
 */
export function parseChallenges(headers: string | readonly string[] | undefined): AuthChallenge[] {
  if (headers === undefined) return [];
  const out: AuthChallenge[] = [];
  for (const header of typeof headers === 'string' ? [headers] : headers) parseInto(header, out);
  return out;
}

function parseInto(text: string, out: AuthChallenge[]): void {
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < text.length && TOKEN.test(text[i] ?? '')) i++;
    return text.slice(start, i);
  };
  const readQuoted = (): string => {
    let value = '';
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\' && i + 1 < text.length) i++;
      value += text[i];
      i++;
    }
    i++; // closing quote
    return value;
  };
  let current: { scheme: string; params: Record<string, string> } | undefined;
  while (i < text.length) {
    skipSpace();
    if (text[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const word = readToken();
    if (word === '') return;
    skipSpace();
    if (text[i] === '=' && current !== undefined) {
      // A parameter of the current challenge.
      i++;
      skipSpace();
      const value = text[i] === '"' ? readQuoted() : readToken();
      current.params[word.toLowerCase()] = value;
      continue;
    }
    // A new challenge: `scheme` then parameters or a token68.
    i = start + word.length;
    current = { scheme: word.toLowerCase(), params: {} };
    out.push(current);
    skipSpace();
    // A token68 credential stands alone up to the next `,` or the end (`realm=x` does not).
    const token68 = /^([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)/.exec(text.slice(i));
    if (token68 !== null) {
      current.params[''] = token68[1] ?? '';
      i += token68[1]?.length ?? 0;
    }
  }
}
