import { lstat } from 'node:fs/promises';
import type { Clock } from './clock.js';

/** What a plugin client learns before it dials (see `UnreachableMemory`). */
export interface DialTicket {
  /** Why the plugin must not be dialled now, or `undefined` when it may be. */
  readonly refusal: string | undefined;
  /** The incarnation of the plugin's files this ticket was issued for. */
  readonly identity: string;
}

/** What a plugin client asks before it dials and reports after a call. */
export interface ReachabilityGate {
  beforeDial(): Promise<DialTicket>;
  /** A call gave up because nobody accepted the connection. */
  unreachable(ticket: DialTicket, reason: string): void;
  /** The plugin answered. */
  reachable(): void;
}

interface Mark {
  readonly until: number;
  readonly identity: string;
  readonly reason: string;
}

/**
 * Remembers legacy plugins whose address nobody answers (a stale socket left by a dead process:
 * ECONNREFUSED), so that for `ttlMs` they are not dialled again by every request — a back-off run
 * costs about 15 s, a dead TCP address up to the dial timeout. A mark is dropped as soon as the
 * files behind the address change (new inode or mtime: the plugin started again), and once it
 * expires the next request probes again.
 */
export class UnreachableMemory {
  readonly #marks = new Map<string, Mark>();
  readonly #ttlMs: number;
  readonly #clock: Clock;

  constructor(options: { ttlMs: number; clock: Clock }) {
    this.#ttlMs = options.ttlMs;
    this.#clock = options.clock;
  }

  /** A gate for one plugin: `key` names it, `files` identify its current incarnation. */
  gate(key: string, files: readonly string[]): ReachabilityGate {
    return {
      beforeDial: async () => {
        const identity = await fileIdentity(files);
        const mark = this.#marks.get(key);
        if (mark === undefined) return { refusal: undefined, identity };
        const left = mark.until - this.#clock.now();
        if (left <= 0 || identity !== mark.identity) {
          if (this.#marks.get(key) === mark) this.#marks.delete(key);
          return { refusal: undefined, identity };
        }
        const refusal =
          `${mark.reason} (remembered as unreachable: not dialled again for ${Math.ceil(left / 1000)}s, ` +
          'or until its socket or spec file changes)';
        return { refusal, identity };
      },
      unreachable: (ticket, reason) => {
        if (this.#ttlMs <= 0) return;
        const now = this.#clock.now();
        for (const [other, mark] of this.#marks) if (mark.until <= now) this.#marks.delete(other);
        this.#marks.set(key, { until: now + this.#ttlMs, identity: ticket.identity, reason });
      },
      reachable: () => {
        this.#marks.delete(key);
      },
    };
  }

  /** Whether `key` is marked and the mark has not expired (files not checked); for tests and metrics. */
  isMarked(key: string): boolean {
    const mark = this.#marks.get(key);
    return mark !== undefined && this.#clock.now() < mark.until;
  }

  forget(key: string): void {
    this.#marks.delete(key);
  }
}

/** Device, inode and mtime of each file (`-` when absent): they change when a plugin re-creates them. */
export async function fileIdentity(files: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    files.map(async (file) => {
      try {
        const st = await lstat(file, { bigint: true });
        return `${st.dev}:${st.ino}:${st.mtimeNs}`;
      } catch {
        return '-';
      }
    }),
  );
  return parts.join('|');
}
