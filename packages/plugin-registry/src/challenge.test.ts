import { describe, expect, it } from 'vitest';
import { parseChallenges } from './challenge.js';

describe('parseChallenges', () => {
  it('parses the registry\'s Bearer and Basic challenges', () => {
    expect(
      parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:vieux/sshfs:pull"'),
    ).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:vieux/sshfs:pull' } },
    ]);
    expect(parseChallenges('Basic realm="basic-realm"')).toEqual([{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  });

  it('splits several challenges, unquotes escapes and keeps token68', () => {
    expect(parseChallenges(['Basic realm="a, \\"b\\"", Bearer realm=x, error="insufficient_scope"', 'Negotiate abc=='])).toEqual([
      { scheme: 'basic', params: { realm: 'a, "b"' } },
      { scheme: 'bearer', params: { realm: 'x', error: 'insufficient_scope' } },
      { scheme: 'negotiate', params: { '': 'abc==' } },
    ]);
  });

  it('survives malformed headers', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('Bearer realm="unterminated')).toEqual([{ scheme: 'bearer', params: { realm: 'unterminated' } }]);
    expect(parseChallenges(', , Basic')).toEqual([{ scheme: 'basic', params: {} }]);
  });
});
