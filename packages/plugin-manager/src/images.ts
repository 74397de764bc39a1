import type { Logger } from '@berth/logger';
import type { ContentStoreLike, PluginImageRecord } from './contracts.js';
import type { Controller } from './controller.js';
import { errorMessage } from './errors.js';
import type { PersistedExtras } from './plugin-dir.js';

/** moby's persisted image fields, as `config.json` keeps them beside the plugin object. */
export function imageExtras(image: PluginImageRecord): PersistedExtras {
  return { Config: image.configDigest, Blobsums: [...image.blobsums], Manifest: image.manifestDigest };
}

/** The image a plugin's persisted fields name; undefined when they name none (or not one that is whole). */
export function imageRecord(extras: PersistedExtras): PluginImageRecord | undefined {
  const configDigest = extras['Config'];
  const manifestDigest = extras['Manifest'];
  const blobsums = extras['Blobsums'];
  if (typeof configDigest !== 'string' || configDigest === '' || typeof manifestDigest !== 'string' || manifestDigest === '') return undefined;
  if (!Array.isArray(blobsums) || !blobsums.every((b): b is string => typeof b === 'string')) return undefined;
  return { configDigest, manifestDigest, blobsums };
}

export interface ImageCollectorOptions {
  /** The content store; without one there is nothing to collect. */
  readonly store: ContentStoreLike | undefined;
  /** The controllers of every plugin: their persisted fields name the blobs in use. */
  readonly controllers: () => Iterable<Controller>;
  readonly logger: Logger;
}

/**
 * Garbage collection of the content store of plugin images: every blob no plugin references (its
 * `Config`, `Blobsums` or `Manifest`) is deleted, but never while a fetch, install or push holds a
 * lease, since blobs it writes are not referenced until it records them (moby's `muGC`).
 */
export class ImageCollector {
  readonly #store: ContentStoreLike | undefined;
  readonly #controllers: () => Iterable<Controller>;
  readonly #logger: Logger;
  #leases = 0;
  #running: Promise<void> | undefined;
  #wanted = false;

  constructor(options: ImageCollectorOptions) {
    this.#store = options.store;
    this.#controllers = options.controllers;
    this.#logger = options.logger;
  }

  /** Clears what interrupted writes left in the store; once, when the manager opens. */
  async removeIngests(): Promise<void> {
    await this.#store?.removeIngests?.().catch((err: unknown) =>
      this.#logger.warn('error clearing interrupted blob writes', { error: errorMessage(err) }),
    );
  }

  /** Runs `fn` while collection waits (moby's `muGC` read lock). */
  async withLease<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#running !== undefined) await this.#running;
    this.#leases++;
    try {
      return await fn();
    } finally {
      this.#leases--;
      if (this.#leases === 0 && this.#wanted) void this.collect();
    }
  }

  /** Collects now, or as soon as no lease is held; never throws (failures are logged). */
  collect(): Promise<void> {
    if (this.#store === undefined) return Promise.resolve();
    if (this.#leases > 0 || this.#running !== undefined) {
      this.#wanted = true;
      return this.#running ?? Promise.resolve();
    }
    this.#wanted = false;
    const store = this.#store;
    const running = this.#sweep(store).finally(() => {
      this.#running = undefined;
      if (this.#wanted && this.#leases === 0) void this.collect();
    });
    this.#running = running;
    return running;
  }

  async #sweep(store: ContentStoreLike): Promise<void> {
    const keep = new Set<string>();
    for (const c of this.#controllers()) {
      for (const key of ['Config', 'Manifest']) {
        const digest = c.extras[key];
        if (typeof digest === 'string') keep.add(digest);
      }
      const blobsums = c.extras['Blobsums'];
      if (Array.isArray(blobsums)) for (const digest of blobsums) if (typeof digest === 'string') keep.add(digest);
    }
    try {
      for (const digest of await store.list()) {
        if (keep.has(digest)) continue;
        await store.delete(digest);
        this.#logger.debug('removed unreferenced plugin blob', { digest });
      }
    } catch (err) {
      this.#logger.warn('error collecting plugin blobs', { error: errorMessage(err) });
    }
  }
}
