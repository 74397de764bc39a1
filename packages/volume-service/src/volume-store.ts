import { BerthError, conflict } from '@berth/errdefs';
import { KeyedLock } from '@berth/locker';
import type { Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME, type Volume, type VolumeDriver, type VolumeScope } from '@berth/volume-drivers';
import { probeDrivers } from './all-drivers.js';
import { findVolumes, type FindResult } from './find-volumes.js';
import type { VolumeQuery } from './list-filters.js';
import { lookupVolume, scopeOf } from './lookup.js';
import type { MetadataStore, StringMap, VolumeRecord } from './metadata-store.js';
import { inUse, isCommunicationError, messageOf, nameConflict, noSuchVolume, opError, wrapError } from './op-error.js';
import { restoreVolumes } from './restore.js';
import { ownCreatedAt, refSet, snapshot, withoutRef, withRef, type CacheEntry, type StoredVolume } from './stored-volume.js';
import type { VolumeDriverRegistry, VolumeEventSink } from './types.js';

export interface VolumeStoreDeps {
  metadata: MetadataStore;
  drivers: VolumeDriverRegistry;
  events?: VolumeEventSink | undefined;
  logger: Logger;
  /** Deadline of one driver's `list`, and of its answer when every driver is asked for a name (ms). */
  listTimeoutMs: number;
}

export interface StoreCreateOptions {
  options?: StringMap | null | undefined;
  labels?: StringMap | null | undefined;
  /** Attach this reference atomically with the create (moby's `WithCreateReference`). */
  reference?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface StoreGetOptions {
  /** The driver the caller expects; a different stored driver is a conflict. */
  driver?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface StoreRemoveOptions extends StoreGetOptions {
  /** Purge the metadata even when the driver fails to remove the volume (`docker volume rm -f`). */
  purgeOnError?: boolean | undefined;
}

/** A volume resolved through its driver, with its record's refs (moby's `getVolume` result). */
interface Resolved extends StoredVolume {
  readonly refs: readonly string[];
}

const copyMap = (map: Readonly<StringMap> | null | undefined): StringMap | null =>
  map === null || map === undefined ? null : { ...map };


/**
 * moby's `VolumeStore`: binds volume names to drivers, keeps labels, options and references, and
 * persists them through a `MetadataStore`. Every operation on a name holds that name's lock, so
 * different volumes never wait for each other; `find` takes no lock at all.
 */
export class VolumeStore {
  readonly #locks = new KeyedLock();
  readonly #cache: Map<string, CacheEntry>;
  readonly #metadata: MetadataStore;
  readonly #drivers: VolumeDriverRegistry;
  readonly #events: VolumeEventSink | undefined;
  readonly #logger: Logger;
  readonly #listTimeoutMs: number;

  private constructor(deps: VolumeStoreDeps, cache: Map<string, CacheEntry>) {
    this.#metadata = deps.metadata;
    this.#drivers = deps.drivers;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#listTimeoutMs = deps.listTimeoutMs;
    this.#cache = cache;
  }

  /** Restores the store from its metadata (see `restoreVolumes`). */
  static async open(deps: VolumeStoreDeps, signal?: AbortSignal): Promise<VolumeStore> {
    const cache = await restoreVolumes({ ...deps, signal });
    return new VolumeStore(deps, cache);
  }

  /**
   * Creates the volume, or returns the existing one when the name is already bound to the same
   * (canonical) driver; `create` is emitted only for a newly registered volume. Errors read
   * `create <name>: ...`.
   */
  async create(name: string, driverName: string, options: StoreCreateOptions = {}): Promise<StoredVolume> {
    const { signal } = options;
    return this.#locks.with(
      name,
      async () => {
        try {
          const entry = await this.#create(name, driverName, options);
          if (options.reference !== undefined) await this.#addRef(name, entry, options.reference);
          return snapshot(name, entry);
        } catch (err) {
          throw opError('create', name, err);
        }
      },
      { signal },
    );
  }

  /** The volume, looked up in its driver. Errors read `get <name>: ...`; a missing volume is `no such volume`. */
  async get(name: string, options: StoreGetOptions = {}): Promise<StoredVolume> {
    const known = this.#getFromMemory(name, options.driver ?? '');
    if (known !== undefined) return known;
    return this.#locks.with(name, async () => snapshot(name, await this.#get(name, options)), { signal: options.signal });
  }

  /**
   * `get` that also adds `ref` to the volume's references (durably); `added` is false when the
   * reference was already held (references are a set).
   */
  async reference(name: string, ref: string, options: StoreGetOptions = {}): Promise<{ volume: StoredVolume; added: boolean }> {
    return this.#locks.with(
      name,
      async () => {
        const entry = await this.#get(name, options);
        let added: boolean;
        try {
          added = await this.#addRef(name, entry, ref);
        } catch (err) {
          throw opError('get', name, err);
        }
        return { volume: snapshot(name, entry), added };
      },
      { signal: options.signal },
    );
  }

  /** `get`, and whether `ref` is one of the volume's references. */
  async holder(name: string, ref: string, options: StoreGetOptions = {}): Promise<{ volume: StoredVolume; held: boolean }> {
    return this.#locks.with(
      name,
      async () => {
        const entry = await this.#get(name, options);
        return { volume: snapshot(name, entry), held: entry.refs.has(ref) };
      },
      { signal: options.signal },
    );
  }

  /** Drops a reference (durably); unknown references are not an error. */
  async release(name: string, ref: string, options: { signal?: AbortSignal | undefined } = {}): Promise<void> {
    await this.#locks.with(
      name,
      async () => {
        const entry = this.#cache.get(name);
        if (entry !== undefined && !entry.refs.has(ref)) return;
        try {
          await this.#metadata.removeRef(name, ref);
        } catch (err) {
          throw opError('release', name, wrapError(err, 'error removing volume metadata'));
        }
        if (entry !== undefined) entry.refs = withoutRef(entry.refs, ref);
      },
      { signal: options.signal },
    );
  }

  /**
   * Removes the volume from its driver and forgets it. Refuses while referenced
   * (`remove <name>: volume is in use - [refs]`); `destroy` is emitted on success.
   *
   * moby's order: the driver first, the record last. Once the driver has removed the volume the
   * remove has happened and succeeds; a record that could then not be deleted is logged and
   * reconciled later (the next lookup or restore finds no volume for it and drops it). With a
   * driver that offers `removeDeferred`, the record is deleted (durably) once the volume has left
   * the driver, while the driver deletes its data.
   */
  async remove(name: string, options: StoreRemoveOptions = {}): Promise<void> {
    const { signal } = options;
    await this.#locks.with(
      name,
      async () => {
        const refs = await this.#refsOf(name);
        if (refs.length > 0) throw opError('remove', name, inUse(), refs);

        const resolved = await this.#resolve(name, options.driver ?? '', signal);
        let driver: VolumeDriver;
        try {
          driver = await this.#drivers.getDriver(resolved.driverName, { signal });
        } catch (err) {
          throw opError('remove', resolved.driverName, err);
        }

        let failure: BerthError | undefined;
        let deleted: Promise<void> | undefined;
        try {
          if (driver.removeDeferred !== undefined) ({ deleted } = await driver.removeDeferred(resolved.volume, { signal }));
          else await driver.remove(resolved.volume, { signal });
        } catch (err) {
          failure = opError('remove', name, err);
        }
        if (failure === undefined || options.purgeOnError === true) {
          // The volume has left its driver: its record goes while the driver deletes its data.
          const [, gone] = await Promise.allSettled([this.#purgeQuietly(name), deleted]);
          if (gone.status === 'rejected') failure = opError('remove', name, gone.reason);
        }
        if (failure !== undefined) throw failure;
        this.#events?.logVolumeEvent(name, 'destroy', { driver: resolved.driverName });
      },
      { signal },
    );
  }

  /**
   * Volumes of every driver (or of `query.drivers`) that match `query`; see `findVolumes`. Takes no
   * lock: a slow operation on one name never delays a list.
   */
  find(query: VolumeQuery = {}, options: { signal?: AbortSignal | undefined } = {}): Promise<FindResult> {
    return findVolumes(
      { drivers: this.#drivers, cache: this.#cache, logger: this.#logger, listTimeoutMs: this.#listTimeoutMs },
      query,
      options.signal,
    );
  }

  /** References held on the volume (moby's `CountReferences`); 0 for a name the store does not know. */
  referenceCount(name: string): number {
    return this.#cache.get(name)?.refs.size ?? 0;
  }

  /** The volumes the store knows and the references held on them, by driver; from memory. */
  countByDriver(): Map<string, { volumes: number; references: number }> {
    const counts = new Map<string, { volumes: number; references: number }>();
    for (const entry of this.#cache.values()) {
      const count = counts.get(entry.driverName);
      if (count === undefined) counts.set(entry.driverName, { volumes: 1, references: entry.refs.size });
      else {
        count.volumes++;
        count.references += entry.refs.size;
      }
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.#metadata.close();
  }

  async #get(name: string, { driver = '', signal }: StoreGetOptions): Promise<CacheEntry> {
    try {
      const resolved = await this.#resolve(name, driver, signal);
      if (driver !== '' && resolved.driverName !== driver) {
        throw conflict('found volume driver does not match passed in driver');
      }
      return await this.#remember(resolved, signal);
    } catch (err) {
      throw opError('get', name, err);
    }
  }

  async #create(name: string, driverName: string, options: StoreCreateOptions): Promise<CacheEntry> {
    const { signal } = options;
    // The record is read once per create: under the name's lock only this create changes it
    // (`#checkConflict` may purge it, which it says by returning `purged`).
    let record = this.#cache.has(name) ? undefined : await this.#metadata.get(name);
    const conflict = await this.#checkConflict(name, driverName, signal, record);
    if (conflict.entry !== undefined) return conflict.entry;
    if (conflict.purged) record = undefined;

    if (driverName === '') {
      // A name without a driver may already exist in any driver (moby probes them all).
      let probed: Resolved | undefined;
      try {
        probed = await this.#find(name, '', signal, { record });
      } catch {
        signal?.throwIfAborted();
      }
      if (probed !== undefined) return this.#remember(probed, signal);
    }

    const requested = driverName === '' ? DEFAULT_DRIVER_NAME : driverName;
    const driver = await this.#drivers.createDriver(requested, { signal });
    try {
      return await this.#register(name, driver, requested, options, record);
    } catch (err) {
      await this.#releaseDriver(requested, name);
      throw err;
    }
  }

  /**
   * Binds `name` to `driver`, creating the volume in the driver unless it already has it. The
   * pending record written first lets restore undo a driver create whose commit never happened.
   */
  async #register(
    name: string,
    driver: VolumeDriver,
    driverRef: string,
    options: StoreCreateOptions,
    previous: VolumeRecord | undefined,
  ): Promise<CacheEntry> {
    const { signal } = options;
    const record = { name, driver: driver.name, labels: copyMap(options.labels), options: copyMap(options.options) };
    // References persisted for this binding (its driver was away at start) outlive the re-create.
    const refs = previous !== undefined && !previous.pending && previous.driver === driver.name ? previous.refs : [];

    let volume: Volume | undefined;
    try {
      volume = driver.getSync !== undefined ? driver.getSync(name) : await driver.get(name, { signal });
    } catch (err) {
      // dockerd ignores this error and asks Create anyway; a driver it could not reach would only
      // fail, or hang, a second time.
      if (isCommunicationError(err)) throw err;
    }
    let createdHere = false;
    /** The driver's own sync of the volume created here, when it lets the record be synced meanwhile. */
    let durable: Promise<void> | undefined;
    if (volume === undefined) {
      try {
        // With a provisional creation time when one will be kept: the commit then changes no
        // field's size, and SQLite rewrites the record in place instead of writing its labels
        // (possibly large) into the log a second time.
        await this.#metadata.markPending(driver.getSync === undefined ? record : { ...record, createdAt: Date.now() });
      } catch (err) {
        throw wrapError(err, 'error setting volume metadata');
      }
      try {
        if (driver.createDeferred !== undefined) {
          ({ volume, durable } = await driver.createDeferred(name, record.options ?? undefined, { signal }));
        } else {
          volume = await driver.create(name, record.options ?? undefined, { signal });
        }
      } catch (err) {
        await this.#forgetRecord(name);
        throw err;
      }
      createdHere = true;
    }

    // The record is committed and synced while the driver syncs the volume, and the create is
    // acknowledged only once both are durable. A crash before leaves the pending record (restore
    // undoes the create) or a record whose volume the driver does not have (restore drops it, or
    // has the driver make it again: see `recreateMissing`).
    const createdAt = ownCreatedAt(driver, volume);
    const [stored, synced] = await Promise.allSettled([this.#metadata.put({ ...record, createdAt }, refs), durable]);
    if (synced.status === 'rejected') {
      await this.#undoDriverCreate(driver, volume);
      await this.#forgetRecord(name);
      throw synced.reason;
    }
    if (stored.status === 'rejected') {
      if (createdHere) await this.#undoDriverCreate(driver, volume);
      throw wrapError(stored.reason, 'error setting volume metadata');
    }

    const entry: CacheEntry = {
      volume,
      driverName: volume.driverName,
      scope: await scopeOf(driver, signal),
      labels: record.labels,
      options: record.options,
      refs: refSet(refs),
      driverRef,
      createdAt,
    };
    this.#cache.set(name, entry);
    this.#events?.logVolumeEvent(name, 'create', { driver: volume.driverName });
    return entry;
  }

  /**
   * moby's `checkConflict`: the binding of `name`, if it is still valid for `driverName`. The binding
   * is the cached one or, when the driver was away at start, the record's (moby forgets those and
   * may then bind the name to another driver). A binding whose driver cannot be asked is a
   * conflict whatever driver was requested, so a name never moves silently. A stale binding (gone
   * from its driver) is purged, unless references still point at it.
   */
  async #checkConflict(
    name: string,
    driverName: string,
    signal: AbortSignal | undefined,
    stored: VolumeRecord | undefined,
  ): Promise<{ entry?: CacheEntry; purged: boolean }> {
    const entry = this.#cache.get(name);
    const record = entry === undefined ? stored : undefined;
    const boundTo = entry?.driverName ?? (record?.pending === false ? record.driver : '');
    if (boundTo === '') return { purged: false };

    let conflicting = false;
    if (driverName !== '') {
      // Canonical name, so that `plugin` and `plugin:latest` are the same driver.
      const driver = await this.#drivers.getDriver(driverName, { signal });
      conflicting = boundTo !== driver.name;
    }

    let found: Volume | undefined;
    try {
      found = await lookupVolume(this.#drivers, boundTo, name, this.#logger, signal);
    } catch (err) {
      signal?.throwIfAborted();
      throw nameConflict(
        `found reference to volume '${name}' in driver '${boundTo}', but got an error while checking the driver: ${messageOf(err)}`,
      );
    }
    if (found !== undefined) {
      if (conflicting) throw nameConflict(`driver '${boundTo}' already has volume '${name}'`);
      if (entry !== undefined) {
        entry.volume = found;
        return { entry, purged: false };
      }
      const scope = await this.#scopeOfDriver(boundTo, signal);
      const { labels = null, options = null, refs = [], createdAt } = record ?? {};
      return { entry: await this.#remember({ name, driverName: found.driverName, scope, labels, options, volume: found, refs, createdAt }, signal), purged: false };
    }
    if ((entry?.refs.size ?? record?.refs.length ?? 0) > 0) {
      throw nameConflict(
        `found references to volume '${name}' in driver '${boundTo}' but the volume was not found in the driver -- you may need to remove containers referencing this volume or force remove the volume to re-create it`,
      );
    }
    await this.#purge(name);
    return { purged: true };
  }

  /**
   * moby's `getVolume`: asks the stored driver (the record's, else the cached binding's, else the
   * one passed in); without any, probes every driver and records the first that has the volume.
   * A volume its driver no longer has is purged. Pending records are creates in flight: not volumes.
   * No such volume is `no such volume` (not-found).
   */
  async #resolve(
    name: string,
    driverName: string,
    signal: AbortSignal | undefined,
    known?: { record: VolumeRecord | undefined },
  ): Promise<Resolved> {
    const resolved = await this.#find(name, driverName, signal, known);
    if (resolved === undefined) throw noSuchVolume();
    return resolved;
  }

  /**
   * {@link #resolve}, answering `undefined` where it fails with `no such volume`: for a create,
   * which expects the miss (an error, with its stack, costs more than the rest of the lookup).
   */
  async #find(
    name: string,
    driverName: string,
    signal: AbortSignal | undefined,
    known?: { record: VolumeRecord | undefined },
  ): Promise<Resolved | undefined> {
    const record = known !== undefined ? known.record : (this.#storedMetadata(name) ?? (await this.#metadata.get(name)));
    const meta = record !== undefined && !record.pending ? record : undefined;
    let stored = meta?.driver ?? '';
    if (driverName !== '') {
      if (stored === '') stored = driverName;
      if (driverName !== stored) throw conflict('provided volume driver does not match stored driver');
    }
    if (stored === '') stored = this.#cache.get(name)?.driverName ?? '';

    if (stored !== '') {
      const volume = await lookupVolume(this.#drivers, stored, name, this.#logger, signal);
      if (volume === undefined) {
        await this.#purgeQuietly(name);
        return undefined;
      }
      const createdAt = meta === undefined ? await this.#recordDiscovered(name, volume) : meta.createdAt;
      return {
        name,
        driverName: volume.driverName,
        scope: await this.#scopeOfDriver(stored, signal),
        labels: meta?.labels ?? null,
        options: meta?.options ?? null,
        volume,
        refs: meta?.refs ?? [],
        createdAt,
      };
    }

    const probed = await probeDrivers(this.#drivers, name, { ms: this.#listTimeoutMs, logger: this.#logger, signal });
    if (probed === undefined) return undefined;
    const { driver, volume } = probed;
    const createdAt = await this.#recordDiscovered(name, volume);
    const scope = await scopeOf(driver, signal);
    return { name, driverName: volume.driverName, scope, labels: null, options: null, volume, refs: [], createdAt };
  }

  /**
   * `get` answered from the cache, without a lock or a promise, when that is what the full lookup
   * would answer: nothing is in flight on the name (its lock is free), and its driver answers from
   * memory (`peekDriver`, `getSync`) with the cached volume. `undefined` otherwise (the full lookup
   * then runs, with its errors, purges and refreshes).
   */
  #getFromMemory(name: string, driverName: string): StoredVolume | undefined {
    const entry = this.#cache.get(name);
    if (entry === undefined || !this.#locks.isFree(name) || (driverName !== '' && driverName !== entry.driverName)) return undefined;
    const driver = this.#drivers.peekDriver?.(entry.driverName);
    if (driver?.getSync === undefined) return undefined;
    let volume: Volume | undefined;
    try {
      volume = driver.getSync(name);
    } catch {
      return undefined;
    }
    return volume === entry.volume ? snapshot(name, entry) : undefined;
  }

  /**
   * The record of a cached name, from the cache: every change of a cached name's record (labels,
   * options, refs) goes through this store and updates both, and a cached name has a record that is
   * not pending. `undefined` when the name is not cached (then the metadata store is asked).
   */
  #storedMetadata(name: string): VolumeRecord | undefined {
    const entry = this.#cache.get(name);
    if (entry === undefined) return undefined;
    return {
      name,
      driver: entry.driverName,
      labels: entry.labels,
      options: entry.options,
      createdAt: entry.createdAt,
      pending: false,
      refs: [...entry.refs],
    };
  }

  /**
   * Records the driver of a volume found without a record, so that its references can be
   * persisted; returns the creation time recorded with it (see `ownCreatedAt`).
   */
  async #recordDiscovered(name: string, volume: Volume): Promise<number | undefined> {
    const createdAt = ownCreatedAt(this.#drivers.peekDriver?.(volume.driverName), volume);
    try {
      await this.#metadata.put({ name, driver: volume.driverName, labels: null, options: null, createdAt });
    } catch (err) {
      throw wrapError(err, 'error setting volume metadata');
    }
    return createdAt;
  }

  /**
   * Caches a resolved volume (moby's `setNamed`). A name cached for the first time acquires one
   * reference on its driver, released again by `#purge`.
   */
  async #remember(resolved: Resolved, signal: AbortSignal | undefined): Promise<CacheEntry> {
    const { name } = resolved;
    const cached = this.#cache.get(name);
    if (cached !== undefined && cached.driverName === resolved.driverName) {
      cached.volume = resolved.volume;
      cached.scope = resolved.scope;
      return cached;
    }
    if (cached?.driverRef !== undefined) await this.#releaseDriver(cached.driverRef, name);

    let driverRef: string | undefined;
    try {
      await this.#drivers.createDriver(resolved.driverName, { signal });
      driverRef = resolved.driverName;
    } catch (err) {
      this.#logger.warn('Error acquiring reference to volume driver', {
        driver: resolved.driverName,
        volume: name,
        error: String(err),
      });
    }
    const entry: CacheEntry = {
      volume: resolved.volume,
      driverName: resolved.driverName,
      scope: resolved.scope,
      labels: copyMap(resolved.labels),
      options: copyMap(resolved.options),
      refs: refSet(cached?.refs ?? resolved.refs),
      driverRef,
      createdAt: resolved.createdAt,
    };
    this.#cache.set(name, entry);
    return entry;
  }

  /** Persists first, so a reference is never reported held before it is on disk. */
  async #addRef(name: string, entry: CacheEntry, ref: string): Promise<boolean> {
    if (entry.refs.has(ref)) return false;
    try {
      await this.#metadata.addRef(name, ref);
    } catch (err) {
      throw wrapError(err, 'error setting volume metadata');
    }
    entry.refs = withRef(entry.refs, ref);
    return true;
  }

  async #refsOf(name: string): Promise<string[]> {
    const entry = this.#cache.get(name);
    if (entry !== undefined) return [...entry.refs].sort();
    // Not cached (e.g. its driver was away at start): the persisted refs still count.
    const record = await this.#metadata.get(name);
    return record === undefined || record.pending ? [] : [...record.refs].sort();
  }

  /** Forgets a volume: releases its driver reference, drops the cache entry, deletes the record durably. */
  async #purge(name: string): Promise<void> {
    const entry = this.#cache.get(name);
    this.#cache.delete(name);
    if (entry?.driverRef !== undefined) await this.#releaseDriver(entry.driverRef, name);
    try {
      await this.#metadata.delete([name]);
    } catch (err) {
      throw wrapError(err, 'error removing volume metadata');
    }
  }

  async #purgeQuietly(name: string): Promise<void> {
    try {
      await this.#purge(name);
    } catch (err) {
      this.#logger.error('Error removing volume metadata', { volume: name, error: String(err) });
    }
  }

  async #forgetRecord(name: string): Promise<void> {
    try {
      await this.#metadata.delete([name]);
    } catch (err) {
      // Left pending: the next start undoes it.
      this.#logger.warn('Error removing pending volume metadata', { volume: name, error: String(err) });
    }
  }

  async #undoDriverCreate(driver: VolumeDriver, volume: Volume): Promise<void> {
    try {
      await driver.remove(volume);
    } catch (err) {
      // Left pending: the next start undoes it.
      this.#logger.warn('Error removing volume whose metadata could not be written', {
        driver: driver.name,
        volume: volume.name,
        error: String(err),
      });
    }
  }

  async #releaseDriver(driverName: string, volume: string): Promise<void> {
    try {
      await this.#drivers.releaseDriver(driverName);
    } catch (err) {
      this.#logger.error('Error releasing reference to volume driver', { driver: driverName, volume, error: String(err) });
    }
  }

  async #scopeOfDriver(driverName: string, signal: AbortSignal | undefined): Promise<VolumeScope> {
    try {
      return await scopeOf(await this.#drivers.getDriver(driverName, { signal }), signal);
    } catch {
      return 'local';
    }
  }
}
