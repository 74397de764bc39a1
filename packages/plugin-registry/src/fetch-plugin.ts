import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { BerthError, invalidParameter, system, unavailable } from '@berth/errdefs';
import {
  computePrivileges,
  DEFAULT_MAX_CONFIG_BYTES,
  familiarName,
  familiarString,
  parsePluginConfig,
  referenceString,
  type NamedReference,
  type PluginConfig,
  type PluginPrivilege,
  type RegistryAuth,
} from '@berth/plugin-store';
import type { ContentStore } from './content-store.js';
import { sha256Digest } from './digest.js';
import { applyLayer } from './layer-extract.js';
import { isIndexType, isManifestType, parseImageManifest, selectPlatform, type Descriptor } from './manifest.js';
import { configClass, LAYER_MEDIA_TYPES, MEDIA_TYPE_PLUGIN_CONFIG } from './media-types.js';
import { parseRemote } from './names.js';
import { Progress, type ProgressHandler } from './progress.js';
import { RegistryClient, type RegistryOptions } from './registry-client.js';

export interface FetchConfigOptions {
  /** `localhost:5000/foo/bar:tag`, `vieux/sshfs`, `x@sha256:…` (`:latest` implied). */
  readonly remote: string | NamedReference;
  readonly auth?: RegistryAuth | undefined;
  readonly registry?: RegistryOptions | undefined;
  /** Keeps the manifest and the config in the store too (moby's privileges call does). */
  readonly store?: ContentStore | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface FetchedPluginConfig {
  /** The remote, normalized (`tag` or `digest` set). */
  readonly ref: NamedReference;
  /** `reference.String()` of the remote: what moby records as `PluginReference`. */
  readonly reference: string;
  readonly config: PluginConfig;
  readonly configDigest: string;
  readonly manifestDigest: string;
  readonly layers: readonly Descriptor[];
  /** `computePrivileges(config)`, in moby's order. */
  readonly privileges: PluginPrivilege[];
}

export interface FetchPluginOptions extends FetchConfigOptions {
  readonly store: ContentStore;
  /** Where the rootfs directory is created: `<data-root>/plugins/tmp`, on the filesystem of the plugins. */
  readonly tmpDir: string;
  /** The JSON progress lines the docker CLI renders. */
  readonly onProgress?: ProgressHandler | undefined;
}

export interface FetchedPlugin extends FetchedPluginConfig {
  readonly layerDigests: readonly string[];
  /** `<tmpDir>/.rootfs*`, the extracted layers; the caller moves it into place or removes it. */
  readonly rootfsDir: string;
}

/**
 * Reads a plugin's manifest and config from its registry, without its layers: for
 * `GET /plugins/privileges`. Refuses anything but a plugin (moby's
 * `Encountered remote "<type>"(<class>) when fetching`).
 */
export async function fetchPluginConfig(options: FetchConfigOptions): Promise<FetchedPluginConfig> {
  const ref = parseRemote(options.remote);
  const client = new RegistryClient({ ...options.registry, ref, auth: options.auth });
  return resolvePlugin(client, ref, options.store, undefined, options.signal);
}

/**
 * `docker plugin install`'s fetch (moby's `fetch` + `applyLayer`): the manifest (schema2 or OCI,
 * through a manifest list or index for this platform), the plugin config and every layer are
 * downloaded into the content store, each verified against its digest before it becomes visible;
 * the layers are then extracted, in order, into a new directory under `tmpDir`.
 *
 * On any failure (registry gone, digest mismatch, refused archive, abort) the rootfs directory is
 * removed and no partial blob remains visible; blobs already verified stay (they are correct).
 */
export async function fetchPlugin(options: FetchPluginOptions): Promise<FetchedPlugin> {
  const { store, signal } = options;
  const ref = parseRemote(options.remote);
  const progress = new Progress(options.onProgress);
  const client = new RegistryClient({ ...options.registry, ref, auth: options.auth });
  const resolved = await resolvePlugin(client, ref, store, progress, signal);

  const missing: Descriptor[] = [];
  for (const layer of resolved.layers) {
    if (await store.has(layer.digest)) progress.update(layer.digest, 'Already exists');
    else {
      missing.push(layer);
      progress.update(layer.digest, 'Pulling fs layer');
    }
  }
  for (const layer of missing) {
    await download(client, store, layer, progress, signal);
    progress.update(layer.digest, 'Download complete');
  }

  await mkdir(options.tmpDir, { recursive: true, mode: 0o700 });
  const rootfsDir = await mkdtemp(path.join(options.tmpDir, '.rootfs'));
  try {
    await chmod(rootfsDir, 0o755);
    for (const layer of resolved.layers) {
      const blob = await store.open(layer.digest);
      await applyLayer(blob.stream, rootfsDir, {
        signal,
        onProgress: (read) => progress.bytes(layer.digest, 'Extracting', read, blob.size),
      });
      progress.update(layer.digest, 'Pull complete');
    }
  } catch (err) {
    await rm(rootfsDir, { recursive: true, force: true });
    throw err;
  }
  progress.message(`Digest: ${resolved.manifestDigest}`);
  progress.message(`Status: Downloaded newer image for ${familiarString(ref)}`);
  return { ...resolved, layerDigests: resolved.layers.map((l) => l.digest), rootfsDir };
}

/** The manifest (through an index) and the config; both kept in `store` when there is one. */
async function resolvePlugin(
  client: RegistryClient,
  ref: NamedReference,
  store: ContentStore | undefined,
  progress: Progress | undefined,
  signal: AbortSignal | undefined,
): Promise<FetchedPluginConfig> {
  const wanted = ref.digest ?? ref.tag ?? 'latest';
  let manifest = await withContext(client.getManifest(wanted, { signal }), 'error resolving plugin reference');
  if (isIndexType(manifest.mediaType)) {
    const entry = selectPlatform(manifest.bytes);
    manifest = await withContext(client.getManifest(entry.digest, { signal }), 'error resolving plugin reference');
  }
  if (!isManifestType(manifest.mediaType)) {
    throw invalidParameter(`unsupported manifest media type "${manifest.mediaType}" for ${familiarString(ref)}`);
  }
  const image = parseImageManifest(manifest.bytes, manifest.mediaType);
  if (image.config.mediaType !== MEDIA_TYPE_PLUGIN_CONFIG) {
    throw invalidParameter(`Encountered remote "${image.config.mediaType}"(${configClass(image.config.mediaType)}) when fetching`);
  }
  for (const layer of image.layers) {
    if (!LAYER_MEDIA_TYPES.has(layer.mediaType)) {
      throw invalidParameter(`unsupported plugin layer media type "${layer.mediaType}" (layer ${layer.digest})`);
    }
  }
  progress?.update(ref.tag ?? ref.digest ?? 'latest', `Pulling from ${familiarName(ref)}`);
  if (store !== undefined) await store.writeBytes(manifest.bytes, { expected: { digest: manifest.digest }, signal });

  const configBytes = await fetchConfig(client, store, image.config, signal);
  const config = parsePluginConfig(configBytes.toString('utf8'));
  return {
    ref,
    reference: referenceString(ref),
    config,
    configDigest: image.config.digest,
    manifestDigest: manifest.digest,
    layers: image.layers,
    privileges: computePrivileges(config),
  };
}

async function fetchConfig(
  client: RegistryClient,
  store: ContentStore | undefined,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  if (descriptor.size > DEFAULT_MAX_CONFIG_BYTES) {
    throw invalidParameter(`plugin config ${descriptor.digest} is larger than ${DEFAULT_MAX_CONFIG_BYTES} bytes`);
  }
  if (store !== undefined && (await store.has(descriptor.digest))) return store.readBytes(descriptor.digest);
  const blob = await client.openBlob(descriptor.digest, { signal });
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of blob.body) {
      size += chunk.length;
      if (size > descriptor.size) throw system(`plugin config ${descriptor.digest} is larger than its manifest says`);
      chunks.push(Buffer.from(chunk));
    }
  } catch (err) {
    blob.cancel();
    throw transferError(err, descriptor.digest, signal);
  }
  const bytes = Buffer.concat(chunks);
  const digest = sha256Digest(bytes);
  if (digest !== descriptor.digest) {
    throw system(`unexpected commit digest ${digest}, expected ${descriptor.digest}: failed precondition`);
  }
  if (store !== undefined) await store.writeBytes(bytes, { expected: descriptor, signal });
  return bytes;
}

async function download(
  client: RegistryClient,
  store: ContentStore,
  layer: Descriptor,
  progress: Progress,
  signal: AbortSignal | undefined,
): Promise<void> {
  const blob = await client.openBlob(layer.digest, { signal });
  if (blob.size !== undefined && blob.size !== layer.size) {
    blob.cancel();
    throw system(`layer ${layer.digest}: the registry sent ${blob.size} bytes, the manifest says ${layer.size}`);
  }
  try {
    await store.write(blob.body, {
      expected: { digest: layer.digest, size: layer.size },
      signal,
      onProgress: (written) => progress.bytes(layer.digest, 'Downloading', written, layer.size),
    });
  } catch (err) {
    blob.cancel();
    throw transferError(err, layer.digest, signal);
  }
}

/** A body that broke off (registry stopped, connection reset) is `unavailable`; aborts stay aborts. */
function transferError(err: unknown, digest: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (BerthError.is(err)) return err;
  return unavailable(`error fetching blob ${digest}: ${(err as Error).message}`, { cause: err });
}

async function withContext<T>(promise: Promise<T>, context: string): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    if (!BerthError.is(err)) throw err;
    throw new BerthError(err.kind, `${context}: ${err.message}`, { cause: err });
  }
}
