import { invalidParameter } from '@berth/errdefs';
import type { RegistryAuth } from '@berth/plugin-store';

/** The header the docker CLI sends credentials in. */
export const REGISTRY_AUTH_HEADER = 'X-Registry-Auth';

/**
 * Decodes `X-Registry-Auth`: base64url (RFC 4648 §5, padding optional) of a JSON object
 * `{username, password, auth, email, serveraddress, identitytoken, registrytoken}` whose keys match
 * case-insensitively, as Go decodes them. `auth` (base64 `user:pass`) fills in a missing
 * username and password. An empty or missing header is no credentials.
 *
 * Throws `invalid-parameter` `invalid X-Registry-Auth header: …` on garbage. moby's plugin routes
 * ignore that error and go on without credentials; the caller chooses.
 */
export function decodeRegistryAuth(header: string | undefined | null): RegistryAuth {
  if (header === undefined || header === null || header.trim() === '') return {};
  const text = header.trim();
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(text)) throw invalidHeader('illegal base64 data');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch (err) {
    throw invalidHeader((err as Error).message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidHeader('json: cannot unmarshal into Go value of type registry.AuthConfig');
  }
  const fields = new Map<string, string>();
  for (const [key, field] of Object.entries(value)) {
    if (field === null || field === undefined) continue;
    if (typeof field !== 'string') {
      throw invalidHeader(`json: cannot unmarshal ${typeof field} into Go struct field AuthConfig.${key} of type string`);
    }
    fields.set(key.toLowerCase(), field);
  }
  let username = fields.get('username') ?? '';
  let password = fields.get('password') ?? '';
  const basic = fields.get('auth') ?? '';
  if (username === '' && password === '' && basic !== '') {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  return compact({
    username,
    password,
    serverAddress: fields.get('serveraddress') ?? '',
    identityToken: fields.get('identitytoken') ?? '',
    registryToken: fields.get('registrytoken') ?? '',
  });
}

/** The header value for `auth` (what a client sends; used by tests and by the daemon's own client). */
export function encodeRegistryAuth(auth: RegistryAuth): string {
  const body: Record<string, string> = {};
  if (auth.username !== undefined) body['username'] = auth.username;
  if (auth.password !== undefined) body['password'] = auth.password;
  if (auth.serverAddress !== undefined) body['serveraddress'] = auth.serverAddress;
  if (auth.identityToken !== undefined) body['identitytoken'] = auth.identityToken;
  if (auth.registryToken !== undefined) body['registrytoken'] = auth.registryToken;
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

function compact(auth: Record<keyof RegistryAuth, string>): RegistryAuth {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(auth)) if (value !== '') out[key] = value;
  return out;
}

function invalidHeader(reason: string): Error {
  return invalidParameter(`invalid X-Registry-Auth header: ${reason}`);
}
