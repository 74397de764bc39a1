import { invalidParameter } from '@berth/errdefs';
import { goQuote } from '@berth/gocompat';

/** moby's `names.RestrictedNameChars`: what a local volume name may contain. */
export const RESTRICTED_NAME_CHARS = '[a-zA-Z0-9][a-zA-Z0-9_.-]';

/** moby's `names.RestrictedNamePattern`. */
export const RESTRICTED_NAME_PATTERN = new RegExp(`^${RESTRICTED_NAME_CHARS}+$`);

/** A local volume name is one directory entry, so it is bounded by the file system's NAME_MAX. */
export const MAX_LOCAL_VOLUME_NAME_LENGTH = 255;

/**
 * Throws an `invalid-parameter` error, with moby's texts, unless `name` can name a local volume.
 * Beyond moby: names longer than {@link MAX_LOCAL_VOLUME_NAME_LENGTH} are refused here instead of
 * failing later in `mkdir` with a server error.
 */
export function validateLocalVolumeName(name: string): void {
  // moby counts bytes; the pattern admits ASCII only, so bytes and characters agree below.
  if (Buffer.byteLength(name) === 1) {
    throw invalidParameter('volume name is too short, names should be at least two alphanumeric characters');
  }
  if (!RESTRICTED_NAME_PATTERN.test(name)) {
    throw invalidParameter(
      `${goQuote(name)} includes invalid characters for a local volume name, only ${goQuote(RESTRICTED_NAME_CHARS)} are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
  if (name.length > MAX_LOCAL_VOLUME_NAME_LENGTH) {
    throw invalidParameter(
      `volume name is too long, names should be at most ${MAX_LOCAL_VOLUME_NAME_LENGTH} characters`,
    );
  }
}
