import { describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { decodeRegistryAuth, encodeRegistryAuth } from './auth-config.js';

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('decodeRegistryAuth', () => {
  it('reads what the docker CLI sends (base64url JSON, padded or not, Go-style keys)', () => {
    const body = { username: 'u', password: 'p?>', serveraddress: 'localhost:5000' };
    const padded = Buffer.from(JSON.stringify(body)).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
    expect(decodeRegistryAuth(padded)).toEqual({ username: 'u', password: 'p?>', serverAddress: 'localhost:5000' });
    expect(decodeRegistryAuth(b64url({ Username: 'u', PASSWORD: 'p', IdentityToken: 't', registrytoken: 'r' }))).toEqual({
      username: 'u',
      password: 'p',
      identityToken: 't',
      registryToken: 'r',
    });
    expect(decodeRegistryAuth(b64url({ auth: Buffer.from('me:se:cret').toString('base64') }))).toEqual({ username: 'me', password: 'se:cret' });
  });

  it('treats an empty header and "{}" as no credentials', () => {
    expect(decodeRegistryAuth(undefined)).toEqual({});
    expect(decodeRegistryAuth('')).toEqual({});
    expect(decodeRegistryAuth('e30=')).toEqual({});
  });

  it('refuses garbage with moby\'s prefix', () => {
    for (const bad of ['!!!', b64url([1]), Buffer.from('{nope').toString('base64url'), b64url({ username: 1 })]) {
      let err: unknown;
      try {
        decodeRegistryAuth(bad);
      } catch (e) {
        err = e;
      }
      expect(kindOf(err)).toBe('invalid-parameter');
      expect((err as Error).message).toMatch(/^invalid X-Registry-Auth header: /);
    }
  });

  it('round-trips with encodeRegistryAuth', () => {
    const auth = { username: 'a', password: 'b', serverAddress: 'r:1', identityToken: 'i', registryToken: 't' };
    expect(decodeRegistryAuth(encodeRegistryAuth(auth))).toEqual(auth);
  });
});
