import type { RegistryAuth } from '@berth/plugin-store';
import { RegistryClient, type RegistryOptions } from './registry-client.js';

export interface LoginOptions {
  /** What `docker login` names: `localhost:5000`, `https://index.docker.io/v1/`, empty for Docker Hub. */
  readonly serverAddress?: string | undefined;
  readonly auth: RegistryAuth;
  readonly registry?: RegistryOptions | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The `Status` of a successful `POST /auth`. */
export const LOGIN_SUCCEEDED = 'Login Succeeded';

/**
 * `POST /auth` (`docker login` through the daemon): checks the credentials against the registry's
 * `/v2/` (basic or token auth, no repository scope). Resolves `{ status: 'Login Succeeded' }`;
 * throws `unauthorized` with moby's `login attempt to … failed with status: …` text.
 */
export async function loginRegistry(options: LoginOptions): Promise<{ status: string }> {
  const client = new RegistryClient({
    ...options.registry,
    ref: { domain: loginHost(options.serverAddress ?? options.auth.serverAddress ?? ''), path: '' },
    auth: options.auth,
    scopes: [],
  });
  await client.checkLogin({ signal: options.signal });
  return { status: LOGIN_SUCCEEDED };
}

/** `https://index.docker.io/v1/` ⇒ `docker.io`, `http://host:5000/` ⇒ `host:5000`. */
export function loginHost(serverAddress: string): string {
  const host = serverAddress.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  if (host === '' || host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'docker.io') return 'docker.io';
  return host;
}
