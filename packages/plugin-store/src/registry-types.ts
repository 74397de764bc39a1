// What the plugin packages and the daemon say to each other about registries: the Engine API's
// credentials (`X-Registry-Auth`), the JSON progress lines of a pull or a push, and what every
// call to a registry carries.

/** Credentials for one registry, as the Engine API's `X-Registry-Auth` carries them (moby `registry.AuthConfig`). */
export interface RegistryAuth {
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly serverAddress?: string | undefined;
  /** An OAuth refresh token (`docker login` against a token server that issued one). */
  readonly identityToken?: string | undefined;
  /** A bearer token sent to the registry as is. */
  readonly registryToken?: string | undefined;
}

/**
 * One line of the Engine API's JSON progress stream (moby's `jsonmessage.JSONMessage`), what the
 * docker CLI renders: `{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"0123456789ab"}`.
 */
export interface JsonMessage {
  readonly status?: string;
  readonly id?: string;
  readonly progressDetail?: { readonly current?: number; readonly total?: number };
  /** Push's result: `{"Tag","Digest","Size"}`. */
  readonly aux?: unknown;
}

/** What every call to a registry carries besides its subject. */
export interface RemoteCallOptions {
  /** From `X-Registry-Auth` (`{}` when absent or undecodable, as moby's plugin routes). */
  readonly auth?: RegistryAuth | undefined;
  /** The API call's `X-Meta-*` headers, forwarded to the registry as moby does. */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly signal?: AbortSignal | undefined;
  /** The JSON progress lines of a pull, upgrade or push (what the docker CLI renders). */
  readonly onProgress?: ((message: JsonMessage) => void) | undefined;
}
