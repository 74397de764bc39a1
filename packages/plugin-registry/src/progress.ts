import type { JsonMessage } from '@berth/plugin-store';
import { shortDigest } from './digest.js';

export type ProgressHandler = (message: JsonMessage) => void;

/** Least time between two `Downloading`/`Pushing`/`Extracting` updates of one line. */
const UPDATE_INTERVAL_MS = 100;

/** Writes the progress lines of one pull or push, rate-limiting the byte counters per line. */
export class Progress {
  readonly #out: ProgressHandler | undefined;
  readonly #last = new Map<string, number>();

  constructor(out: ProgressHandler | undefined) {
    this.#out = out;
  }

  /** A status line without id: `Digest: sha256:…`. */
  message(status: string): void {
    this.#out?.({ status });
  }

  /** A status of one line: `<id>: Download complete`. */
  update(digestOrId: string, status: string): void {
    this.#out?.({ status, id: lineId(digestOrId) });
  }

  /** A byte counter; the first and the last are always written, the others at most every 100 ms. */
  bytes(digest: string, status: string, current: number, total: number | undefined): void {
    if (this.#out === undefined) return;
    const id = lineId(digest);
    const key = `${id}\0${status}`;
    const now = Date.now();
    const last = this.#last.get(key);
    const done = total !== undefined && current >= total;
    if (last !== undefined && !done && now - last < UPDATE_INTERVAL_MS) return;
    this.#last.set(key, now);
    this.#out({ status, progressDetail: total === undefined ? { current } : { current, total }, id });
  }

  aux(value: unknown): void {
    this.#out?.({ aux: value });
  }
}

function lineId(digestOrId: string): string {
  return digestOrId.startsWith('sha256:') ? shortDigest(digestOrId) : digestOrId;
}
