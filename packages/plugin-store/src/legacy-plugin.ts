import { PROTOCOL_SCHEME_HTTP_V1, type CompatPlugin } from './compat-plugin.js';
import type { LegacyPluginSpec } from './discovery.js';
import type { PluginClient, TlsConfig } from './plugin-client.js';

/** What a plugin said it implements in its `Plugin.Activate` answer. */
export interface Manifest {
  readonly implements: readonly string[];
}

/** An activated legacy (v1) plugin. Paths it reports are host paths. */
export class LegacyPlugin implements CompatPlugin {
  readonly name: string;
  readonly addr: string;
  readonly tls: TlsConfig | undefined;
  /** The socket or spec file it was found through. */
  readonly source: string;
  readonly manifest: Manifest;
  readonly #client: PluginClient;

  constructor(spec: LegacyPluginSpec, client: PluginClient, manifest: Manifest) {
    this.name = spec.name;
    this.addr = spec.addr;
    this.tls = spec.tls;
    this.source = spec.source;
    this.manifest = manifest;
    this.#client = client;
  }

  client(): PluginClient {
    return this.#client;
  }

  /** Whether `Implements` lists `kind` (exact, case-sensitive: `VolumeDriver`). */
  implements(kind: string): boolean {
    return this.manifest.implements.includes(kind);
  }

  scopedPath(path: string): string {
    return path;
  }

  isV1(): boolean {
    return true;
  }

  protocol(): string {
    return PROTOCOL_SCHEME_HTTP_V1;
  }
}
