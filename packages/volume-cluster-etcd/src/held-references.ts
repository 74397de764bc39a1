import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { GroupSync } from '@berth/locker';
import type { Logger } from '@berth/logger';
import { writeFileAtomic } from '@berth/volume-drivers';

export const HELD_REFERENCES_FILE = 'held-references.json';

export interface HeldVolume {
  readonly driver: string;
  readonly refs: readonly string[];
}

interface FileContent {
  version: 1;
  /** The lease this host last held, so that a restarted host knows its previous incarnation. */
  lease?: string;
  volumes: Record<string, { driver: string; refs: string[] }>;
}

/**
 * The references this host holds on global volumes, and its last lease, kept in one small file on
 * the host (`<dir>/held-references.json`, replaced atomically and synced): what a host asserts
 * again in the cluster when it comes back, since its references in etcd go with its lease.
 * Concurrent changes share one write.
 */
export class HeldReferenceFile {
  readonly path: string;
  readonly #volumes: Map<string, { driver: string; refs: Set<string> }>;
  #lease: string | undefined;
  readonly #writes: GroupSync;

  private constructor(path: string, content: FileContent) {
    this.path = path;
    this.#volumes = new Map(Object.entries(content.volumes).map(([name, v]) => [name, { driver: v.driver, refs: new Set(v.refs) }]));
    this.#lease = content.lease;
    this.#writes = new GroupSync(() => writeFileAtomic(this.path, this.#serialise(), 0o600));
  }

  /** Reads the file in `dir` (made if missing); an unreadable file is moved aside with a warning, and the host starts holding nothing. */
  static async open(dir: string, logger: Logger): Promise<HeldReferenceFile> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, HELD_REFERENCES_FILE);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) return new HeldReferenceFile(path, { version: 1, volumes: {} });
    try {
      return new HeldReferenceFile(path, parseContent(text));
    } catch (err) {
      const aside = `${path}.unreadable-${Date.now()}`;
      await rename(path, aside);
      logger.warn('The references this host held on global volumes could not be read; starting without them', {
        file: path,
        keptAs: aside,
        error: err instanceof Error ? err.message : String(err),
      });
      return new HeldReferenceFile(path, { version: 1, volumes: {} });
    }
  }

  get lease(): string | undefined {
    return this.#lease;
  }

  get(name: string): HeldVolume | undefined {
    const held = this.#volumes.get(name);
    return held === undefined ? undefined : { driver: held.driver, refs: [...held.refs] };
  }

  /** Every volume this host holds references on. */
  snapshot(): Map<string, HeldVolume> {
    return new Map([...this.#volumes].map(([name, v]) => [name, { driver: v.driver, refs: [...v.refs] }]));
  }

  /** Adds `ref` on `name` (of `driver`), durably. */
  async add(name: string, driver: string, ref: string): Promise<void> {
    let held = this.#volumes.get(name);
    if (held === undefined || held.driver !== driver) this.#volumes.set(name, (held = { driver, refs: new Set() }));
    if (held.refs.has(ref)) return;
    held.refs.add(ref);
    try {
      await this.#writes.sync();
    } catch (err) {
      held.refs.delete(ref);
      if (held.refs.size === 0 && this.#volumes.get(name) === held) this.#volumes.delete(name);
      throw err;
    }
  }

  /** Drops `ref` on `name`, durably; false when it was not held. */
  async remove(name: string, ref: string): Promise<boolean> {
    const held = this.#volumes.get(name);
    if (held === undefined || !held.refs.delete(ref)) return false;
    if (held.refs.size === 0) this.#volumes.delete(name);
    try {
      await this.#writes.sync();
    } catch (err) {
      held.refs.add(ref);
      if (!this.#volumes.has(name)) this.#volumes.set(name, held);
      throw err;
    }
    return true;
  }

  /** Drops every reference on `name` (the volume is gone), durably. */
  async drop(name: string): Promise<void> {
    if (!this.#volumes.delete(name)) return;
    await this.#writes.sync();
  }

  async setLease(lease: string): Promise<void> {
    if (this.#lease === lease) return;
    this.#lease = lease;
    await this.#writes.sync();
  }

  /** Waits for writes in flight. */
  idle(): Promise<void> {
    return this.#writes.idle();
  }

  #serialise(): string {
    const volumes: FileContent['volumes'] = {};
    for (const [name, v] of this.#volumes) volumes[name] = { driver: v.driver, refs: [...v.refs].sort() };
    const content: FileContent = { version: 1, ...(this.#lease === undefined ? {} : { lease: this.#lease }), volumes };
    return `${JSON.stringify(content, null, 2)}\n`;
  }
}

function parseContent(text: string): FileContent {
  const raw: unknown = JSON.parse(text);
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const { version, lease, volumes } = raw as Record<string, unknown>;
  if (version !== 1) throw new Error(`unknown version ${String(version)}`);
  if (lease !== undefined && typeof lease !== 'string') throw new Error('lease is not a string');
  if (typeof volumes !== 'object' || volumes === null) throw new Error('volumes is not an object');
  const parsed: FileContent['volumes'] = {};
  for (const [name, entry] of Object.entries(volumes)) {
    const { driver, refs } = (entry ?? {}) as Record<string, unknown>;
    if (typeof driver !== 'string' || !Array.isArray(refs) || !refs.every((r) => typeof r === 'string')) {
      throw new Error(`volume ${name}: not {driver, refs}`);
    }
    parsed[name] = { driver, refs: refs as string[] };
  }
  return { version: 1, ...(lease === undefined ? {} : { lease }), volumes: parsed };
}
