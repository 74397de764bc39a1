import type { NamedReference, PluginConfig, PluginPrivilege, RemoteCallOptions } from '@berth/plugin-store';

// How plugins travel to and from registries, as the manager uses it: declared here, satisfied
// structurally by `@berth/plugin-registry`'s `PluginDistribution`.

/** A plugin fetched into the content store, its layers extracted. */
export interface FetchedImage {
  /** `reference.String()` of the remote: what moby records as `PluginReference`. */
  readonly reference: string;
  readonly config: PluginConfig;
  readonly configDigest: string;
  readonly manifestDigest: string;
  readonly layerDigests: readonly string[];
  /** A new directory under the `tmpDir` asked for, holding the extracted layers. */
  readonly rootfsDir: string;
}

/** An image written to the content store for a push. */
export interface BuiltImage {
  readonly configDigest: string;
  readonly manifestDigest: string;
  readonly layerDigests: readonly string[];
}

/** moby's `distribution` as the plugin manager drives it (`plugin/fetch_linux.go`, `Push`). */
export interface Distribution {
  /** The manifest and config of a remote plugin, without its layers: what it asks for. */
  fetchConfig(remote: NamedReference, options: RemoteCallOptions): Promise<{ readonly privileges: readonly PluginPrivilege[] }>;
  /** Manifest, config and layers into the content store; the layers extracted into a new directory under `tmpDir`. */
  fetch(remote: NamedReference, options: RemoteCallOptions & { readonly tmpDir: string }): Promise<FetchedImage>;
  /** Whether the recorded image can be pushed as it is (every blob at hand, in a pushable format). */
  isPushable(image: { readonly manifestDigest: string }): Promise<boolean>;
  /** An image of the plugin's rootfs and config, written to the content store. */
  buildImage(options: { readonly config: PluginConfig; readonly rootfsDir: string; readonly signal?: AbortSignal | undefined }): Promise<BuiltImage>;
  /** Sends the image whose manifest is `manifestDigest` to the repository `remote` names. */
  push(remote: string, manifestDigest: string, options: RemoteCallOptions): Promise<void>;
}
