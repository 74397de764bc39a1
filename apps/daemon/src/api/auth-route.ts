import type { RegistryAuth } from '@berth/plugin-store';
import { goString, goStruct } from '@berth/gocompat';
import { readJson } from './read-json.js';
import { writeJson } from './respond.js';
import { route, type Route } from './router.js';

/** moby's `registry.AuthConfig` (JSON names as the docker CLI sends them; Go matches them case-insensitively). */
const AUTH_CONFIG = goStruct('registry.AuthConfig', {
  username: goString,
  password: goString,
  auth: goString,
  email: goString,
  serveraddress: goString,
  identitytoken: goString,
  registrytoken: goString,
});

export type Login = (request: RegistryAuth, signal: AbortSignal) => Promise<{ Status: string; IdentityToken: string }>;

/**
 * `POST /auth` (moby's system router `postAuth`): `docker login` checks credentials through the
 * daemon; 200 `{"Status":"Login Succeeded","IdentityToken":""}`, or the registry's refusal
 * (401 `login attempt to <url>/v2/ failed with status: 401 Unauthorized`).
 */
export function authRoute(login: Login): Route {
  return route('POST', '/auth', async (ctx) => {
    const body = ((await readJson(ctx.req, AUTH_CONFIG)) ?? {}) as Record<string, string | undefined>;
    let { username, password } = body;
    if ((username ?? '') === '' && (password ?? '') === '' && (body.auth ?? '') !== '') {
      const decoded = Buffer.from(body.auth ?? '', 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    const result = await login(
      {
        username: nonEmpty(username),
        password: nonEmpty(password),
        serverAddress: nonEmpty(body.serveraddress),
        identityToken: nonEmpty(body.identitytoken),
        registryToken: nonEmpty(body.registrytoken),
      },
      ctx.signal,
    );
    writeJson(ctx.res, 200, result);
  });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
