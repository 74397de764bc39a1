import { invalidParameter, system } from '@berth/errdefs';
import { assertSha256Digest } from './digest.js';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
} from './media-types.js';

/** An OCI descriptor: what a manifest says about one blob. */
export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export interface ImageManifest {
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

interface IndexEntry extends Descriptor {
  readonly platform?: { readonly os?: string; readonly architecture?: string; readonly variant?: string };
}

export const isManifestType = (mediaType: string): boolean =>
  mediaType === MEDIA_TYPE_DOCKER_MANIFEST || mediaType === MEDIA_TYPE_OCI_MANIFEST;

export const isIndexType = (mediaType: string): boolean =>
  mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST || mediaType === MEDIA_TYPE_OCI_INDEX;

/** Parses and checks a schema2 or OCI image manifest (digests are validated: they name files). */
export function parseImageManifest(bytes: Uint8Array, mediaType: string): ImageManifest {
  const doc = parseJson(bytes, 'manifest') as { schemaVersion?: unknown; config?: unknown; layers?: unknown };
  if (doc.schemaVersion !== 2) throw system(`unsupported manifest schema version ${String(doc.schemaVersion)}`);
  if (!Array.isArray(doc.layers)) throw system('invalid manifest: no layers');
  return {
    mediaType,
    config: descriptor(doc.config, 'config'),
    layers: doc.layers.map((layer) => descriptor(layer, 'layer')),
  };
}

/** The entry of a manifest list / OCI index for this host (`linux/<arch>`). */
export function selectPlatform(bytes: Uint8Array, arch: string = goArch(process.arch)): Descriptor {
  const doc = parseJson(bytes, 'manifest list') as { manifests?: unknown };
  if (!Array.isArray(doc.manifests)) throw system('invalid manifest list: no manifests');
  const entries = doc.manifests.map((m) => ({ ...(m as IndexEntry), ...descriptor(m, 'manifest') }));
  const match =
    entries.find((e) => e.platform?.os === 'linux' && e.platform.architecture === arch) ??
    (entries.length === 1 && entries[0]?.platform === undefined ? entries[0] : undefined);
  if (match === undefined) throw invalidParameter(`no matching manifest for linux/${arch} in the manifest list entries`);
  return { mediaType: match.mediaType, digest: match.digest, size: match.size };
}

/** Node's `process.arch` in Go's `GOARCH` words. */
export function goArch(arch: string): string {
  const names: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le' };
  return names[arch] ?? arch;
}

function descriptor(value: unknown, what: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw system(`invalid manifest: missing ${what} descriptor`);
  const { mediaType, digest, size } = value as { mediaType?: unknown; digest?: unknown; size?: unknown };
  if (typeof mediaType !== 'string') throw system(`invalid manifest: ${what} without media type`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw system(`invalid manifest: ${what} size`);
  return { mediaType, digest: assertSha256Digest(digest, `${what} digest`), size };
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw system(`invalid ${what}: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw system(`invalid ${what}: not a JSON object`);
  return doc;
}
