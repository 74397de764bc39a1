// Media types of the registry side of plugins (moby's `daemon/pkg/plugin`, containerd's `images`).

/** The config blob of a plugin; a manifest whose config has another type is not a plugin. */
export const MEDIA_TYPE_PLUGIN_CONFIG = 'application/vnd.docker.plugin.v1+json';

export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export const MEDIA_TYPE_DOCKER_IMAGE_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const MEDIA_TYPE_OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';

/** What a pull asks for, in moby's order (its backwards-compatible `Accept` list). */
export const MANIFEST_ACCEPT: readonly string[] = [
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
];

/** Layer types a plugin rootfs may come in (tar, or tar+gzip); anything else is refused. */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
]);

/** distribution's `mediaTypeClasses`, used in moby's `Encountered remote "<type>"(<class>)` text. */
export function configClass(mediaType: string): string {
  switch (mediaType) {
    case MEDIA_TYPE_DOCKER_IMAGE_CONFIG:
    case MEDIA_TYPE_OCI_IMAGE_CONFIG:
      return 'image';
    case MEDIA_TYPE_PLUGIN_CONFIG:
      return 'plugin';
    default:
      return 'unknown';
  }
}
