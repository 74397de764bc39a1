import { closeSync, fstatSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';

/**
 * A file that holds disk space for the writes that must work on a full disk (see
 * `SqliteMetadataStore`): made or topped up while there is room, given back a slice at a time. Not
 * synced: it only holds space, and a crash that loses part of it costs a top-up.
 */
export class SpaceReserve {
  readonly path: string;
  readonly bytes: number;
  readonly #sliceBytes: number;

  constructor(path: string, options: { bytes: number; sliceBytes: number }) {
    this.path = path;
    this.bytes = options.bytes;
    this.#sliceBytes = options.sliceBytes;
  }

  /** What the reserve lacks to be whole. */
  lacking(): number {
    return this.bytes - (statSync(this.path, { throwIfNoEntry: false })?.size ?? 0);
  }

  /** Grows the reserve to its size (a new one from nothing); true once it is whole. What a full disk let through is kept. */
  topUp(): boolean {
    // No reserve asked for (a store that only lives for a moment): no file either.
    if (this.bytes === 0) return true;
    const fd = openSync(this.path, 'a', 0o600);
    try {
      let size = fstatSync(fd).size;
      const zeros = Buffer.alloc(64 * 1024);
      while (size < this.bytes) size += writeSync(fd, zeros, 0, Math.min(zeros.length, this.bytes - size));
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') return false;
      throw err;
    } finally {
      closeSync(fd);
    }
  }

  /** Gives one slice back to the file system: the bytes left, or `undefined` when nothing was left to give. */
  takeSlice(): number | undefined {
    const size = statSync(this.path, { throwIfNoEntry: false })?.size ?? 0;
    if (size === 0) return undefined;
    const left = Math.max(0, size - this.#sliceBytes);
    truncateSync(this.path, left);
    return left;
  }
}
