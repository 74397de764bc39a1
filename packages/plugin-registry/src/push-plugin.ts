import { Readable, pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import { invalidParameter, notFound, system } from '@berth/errdefs';
import { familiarName, parseNormalizedNamed, tagNameOnly, type NamedReference, type PluginConfig, type RegistryAuth } from '@berth/plugin-store';
import type { BlobInfo, ContentStore } from './content-store.js';
import { parseImageManifest, type Descriptor } from './manifest.js';
import {
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_PLUGIN_CONFIG,
} from './media-types.js';
import { Progress, type ProgressHandler } from './progress.js';
import { RegistryClient, type RegistryOptions } from './registry-client.js';
import { packRootfs } from './rootfs-tar.js';

export interface BuildPluginImageOptions {
  readonly store: ContentStore;
  /** The plugin's config; `rootfs` is replaced by the layer written here. */
  readonly config: PluginConfig;
  /** Builds the one layer from this directory (tar, gzip)… */
  readonly rootfsDir?: string | undefined;
  /** …or uses this gzip layer, already in the store. */
  readonly layerDigest?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface PluginImage {
  readonly manifestDigest: string;
  readonly manifestSize: number;
  readonly configDigest: string;
  readonly layerDigests: readonly string[];
}

/**
 * Writes a plugin's blobs as moby's `CreateFromContext` and `buildManifest` do: one gzip layer
 * of the rootfs, the config (media type `application/vnd.docker.plugin.v1+json`, its `rootfs`
 * naming that layer) and a schema2 manifest. The digests are what the manager records as
 * `Blobsums`, `Config` and `Manifest`.
 */
export async function buildPluginImage(options: BuildPluginImageOptions): Promise<PluginImage> {
  const { store, signal } = options;
  let layer: BlobInfo;
  if (options.layerDigest !== undefined) {
    const info = await store.info(options.layerDigest);
    if (info === undefined) throw notFound(`layer ${options.layerDigest} is not in the content store`);
    layer = info;
  } else if (options.rootfsDir !== undefined) {
    layer = await store.write(gzipped(packRootfs(options.rootfsDir, { signal })), { signal });
  } else {
    throw invalidParameter('a plugin image needs a rootfs directory or a layer');
  }
  const config = { ...options.config, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
  const configBlob = await store.writeBytes(Buffer.from(`${JSON.stringify(config)}\n`), { signal });
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_DOCKER_MANIFEST,
    config: { mediaType: MEDIA_TYPE_PLUGIN_CONFIG, digest: configBlob.digest, size: configBlob.size },
    layers: [{ mediaType: MEDIA_TYPE_DOCKER_LAYER_GZIP, digest: layer.digest, size: layer.size }],
  };
  const manifestBlob = await store.writeBytes(Buffer.from(JSON.stringify(manifest)), { signal });
  return {
    manifestDigest: manifestBlob.digest,
    manifestSize: manifestBlob.size,
    configDigest: configBlob.digest,
    layerDigests: [layer.digest],
  };
}

export interface PushPluginOptions {
  readonly store: ContentStore;
  /** The plugin's name, which says where it goes: `localhost:5000/foo/bar:tag` (`:latest` implied). */
  readonly remote: string;
  /**
   * A schema2 manifest already in the store with all its blobs (a pulled plugin, or one whose
   * image was built before): pushed as is, so the remote digest stays the same.
   */
  readonly manifestDigest?: string | undefined;
  /** Otherwise: the config, and the rootfs directory or gzip layer to build the image from. */
  readonly config?: PluginConfig | undefined;
  readonly rootfsDir?: string | undefined;
  readonly layerDigest?: string | undefined;
  readonly auth?: RegistryAuth | undefined;
  readonly registry?: RegistryOptions | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ProgressHandler | undefined;
}

/** The aux message of a push (`types.PushResult`). */
export interface PushResult {
  readonly tag: string;
  readonly digest: string;
  readonly size: number;
}

/**
 * `docker plugin push` (moby's `Push`): the plugin's blobs go to the registry (each skipped when
 * the repository has it: `HEAD`), then the schema2 manifest by tag, with the auth scope
 * `repository(plugin):<path>:pull,push`. Progress is moby's: `The push refers to repository
 * [<name>]`, per blob `Preparing`, `Pushing`, `Pushed` or `Layer already exists`, then
 * `<tag>: digest: <digest> size: <size>` and the aux `{"Tag","Digest","Size"}`.
 */
export async function pushPlugin(options: PushPluginOptions): Promise<PushResult & { image: PluginImage }> {
  const { store, signal } = options;
  const ref = pushReference(options.remote);
  const tag = ref.tag ?? 'latest';
  const progress = new Progress(options.onProgress);

  let manifestDigest = options.manifestDigest;
  if (manifestDigest === undefined || !(await store.has(manifestDigest))) {
    if (options.config === undefined) {
      const reason = manifestDigest === undefined ? 'no manifest' : `manifest ${manifestDigest} is not in the content store`;
      throw invalidParameter(`cannot push plugin: ${reason} and no config was given`);
    }
    manifestDigest = (
      await buildPluginImage({
        store,
        config: options.config,
        rootfsDir: options.rootfsDir,
        layerDigest: options.layerDigest,
        signal,
      })
    ).manifestDigest;
  }
  const manifestBytes = await store.readBytes(manifestDigest);
  const manifest = parseImageManifest(manifestBytes, MEDIA_TYPE_DOCKER_MANIFEST);
  if (manifest.config.mediaType !== MEDIA_TYPE_PLUGIN_CONFIG) {
    throw system(`manifest ${manifestDigest} is not a plugin's: config media type ${manifest.config.mediaType}`);
  }

  progress.message(`The push refers to repository [${familiarName(ref)}]`);
  const client = new RegistryClient({ ...options.registry, ref, auth: options.auth, push: true });
  const blobs: Descriptor[] = [...manifest.layers, manifest.config];
  for (const blob of blobs) progress.update(blob.digest, 'Preparing');
  for (const blob of blobs) {
    const info = await store.info(blob.digest);
    if (info === undefined) throw notFound(`blob ${blob.digest} of manifest ${manifestDigest} is not in the content store`);
    if ((await client.headBlob(blob.digest, { signal })) !== undefined) {
      progress.update(blob.digest, 'Layer already exists');
      continue;
    }
    await client.uploadBlob(blob, () => storeStream(store, blob.digest), {
      signal,
      onProgress: (sent) => progress.bytes(blob.digest, 'Pushing', sent, blob.size),
    });
    progress.update(blob.digest, 'Pushed');
  }
  const digest = await client.putManifest(tag, MEDIA_TYPE_DOCKER_MANIFEST, manifestBytes, { signal });
  progress.message(`${tag}: digest: ${digest} size: ${manifestBytes.length}`);
  progress.aux({ Tag: tag, Digest: digest, Size: manifestBytes.length });
  return {
    tag,
    digest,
    size: manifestBytes.length,
    image: {
      manifestDigest: digest,
      manifestSize: manifestBytes.length,
      configDigest: manifest.config.digest,
      layerDigests: manifest.layers.map((l) => l.digest),
    },
  };
}

/** A plugin name as a push target: no digest (`cannot push a digest reference`), `:latest` implied. */
function pushReference(remote: string): NamedReference {
  const ref = parseNormalizedNamed(remote);
  if (ref.digest !== undefined) throw invalidParameter(`plugin has invalid name ${remote} for push: cannot push a digest reference`);
  return tagNameOnly(ref);
}

async function* storeStream(store: ContentStore, digest: string): AsyncIterable<Uint8Array> {
  const { stream } = await store.open(digest);
  yield* stream as AsyncIterable<Uint8Array>;
}

/** gzip of a byte stream (the layer of a rootfs), errors of either side ending both. */
function gzipped(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const gzip = createGzip();
  pipeline(Readable.from(source), gzip, () => undefined);
  return gzip as AsyncIterable<Uint8Array>;
}
