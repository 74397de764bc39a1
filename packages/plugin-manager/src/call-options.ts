// Options of the manager's operations.

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface EnableOptions extends CallOptions {
  /**
   * `POST /plugins/{name}/enable?timeout=`: seconds to wait for the plugin's socket, and the
   * deadline of plugin calls that name none. 0 or absent: the manager's defaults.
   */
  timeoutSeconds?: number | undefined;
}

export interface ForceOptions extends CallOptions {
  force?: boolean | undefined;
}
