// What the plugin packages and the daemon say to each other about registries: the Engine API's
// credentials (`X-Registry-Auth`) and the JSON progress lines of a pull or a push.

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
