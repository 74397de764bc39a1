import { describe, expect, it } from 'vitest';
import { familiarString, parseNormalizedNamed, tagNameOnly } from './index.js';

const familiarTagged = (s: string): string => familiarString(tagNameOnly(parseNormalizedNamed(s)));

describe('reference names', () => {
  it('normalises to the familiar, tagged form plugin names are stored in', () => {
    const cases: Array<[string, string]> = [
      ['foo', 'foo:latest'],
      ['foo:1.0', 'foo:1.0'],
      ['library/foo', 'foo:latest'],
      ['docker.io/library/foo', 'foo:latest'],
      ['index.docker.io/library/foo:v2', 'foo:v2'],
      ['vieux/sshfs', 'vieux/sshfs:latest'],
      ['docker.io/vieux/sshfs:next', 'vieux/sshfs:next'],
      ['localhost/foo', 'localhost/foo:latest'],
      ['localhost:5000/a/b:c', 'localhost:5000/a/b:c'],
      ['registry.example.com/team/plugin', 'registry.example.com/team/plugin:latest'],
      ['team/a__b.c-d---e', 'team/a__b.c-d---e:latest'],
      ['x.y/a__b', 'x.y/a__b:latest'],
      ['docker.io/library/x/y', 'library/x/y:latest'],
    ];
    for (const [input, expected] of cases) expect(familiarTagged(input), input).toBe(expected);
  });

  it('keeps digests and splits domain from path', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const ref = parseNormalizedNamed(`foo@${digest}`);
    expect(ref).toEqual({ domain: 'docker.io', path: 'library/foo', digest });
    expect(familiarString(ref)).toBe(`foo@${digest}`);
    expect(tagNameOnly(ref)).toBe(ref);
  });

  it('rejects what Docker rejects, with its texts', () => {
    const cases: Array<[string, string]> = [
      ['Foo', 'invalid reference format: repository name (library/Foo) must be lowercase'],
      ['a'.repeat(64), `invalid repository name (${'a'.repeat(64)}), cannot specify 64-byte hexadecimal strings`],
      ['foo/', 'invalid reference format'],
      ['a_b.c/d', 'invalid reference format'],
      ['foo:', 'invalid reference format'],
      ['-foo', 'invalid reference format'],
      ['foo@sha256:abc', 'invalid reference format'],
      [`foo@sha256:${'a'.repeat(40)}`, 'invalid checksum digest length'],
      [`foo@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
      [`${'a'.repeat(250)}/b`, 'repository name must not be more than 255 characters'],
      ['x'.repeat(5000), 'repository name must not be more than 255 characters'],
    ];
    for (const [input, text] of cases) expect(() => parseNormalizedNamed(input), input).toThrow(text);
    expect(() => parseNormalizedNamed('')).toThrow();
  });
});
