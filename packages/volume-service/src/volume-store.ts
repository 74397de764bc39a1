import { BerthError, conflict } from '@berth/errdefs';
import { KeyedLock } from '@berth/locker';
import type { Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME, type Volume, type VolumeDriver, type VolumeScope } from '@berth/volume-drivers';
import { probeDrivers } from './all-drivers.js';
import type { ClusterStore, ClusterVolumeEvent } from './cluster-store.js';
import { findVolumes, type FindResult } from './find-volumes.js';
import { GlobalVolumes } from './global-volumes.js';
import type { VolumeQuery } from './list-filters.js';
import { lookupVolume, scopeOf } from './lookup.js';
import type { MetadataStore, StringMap, VolumeRecord, VolumeRecordInput } from './metadata-store.js';
import { inUse, isCommunicationError, isNameConflict, messageOf, nameConflict, noSuchVolume, opError, wrapError } from './op-error.js';
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
  /** Where the volumes of `global`-scope drivers are kept, shared with other hosts; without it, in `metadata`. */
  cluster?: ClusterStore | undefined;
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
  readonly #global: GlobalVolumes | undefined;
  readonly #unsubscribe: () => void;

  private constructor(deps: VolumeStoreDeps, cache: Map<string, CacheEntry>) {
    this.#metadata = deps.metadata;
    this.#drivers = deps.drivers;
    this.#events = deps.events;
    this.#logger = deps.logger;
    this.#listTimeoutMs = deps.listTimeoutMs;
    this.#cache = cache;
    this.#global = deps.cluster === undefined ? undefined : new GlobalVolumes(deps.cluster);
    this.#unsubscribe = deps.cluster?.subscribe((event) => void this.#onClusterEvent(event)) ?? (() => {});
  }

  /** Restores the store from its metadata and this host's references on global volumes (see `restoreVolumes`). */
  static async open(deps: VolumeStoreDeps, signal?: AbortSignal): Promise<VolumeStore> {
    const cache = await restoreVolumes({ ...deps, held: deps.cluster?.heldReferences(), signal });
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
          return this.#view(name, entry);
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
    return this.#locks.with(name, async () => this.#view(name, await this.#get(name, options)), { signal: options.signal });
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
        return { volume: this.#view(name, entry), added };
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
        return { volume: this.#view(name, entry), held: entry.refs.has(ref) };
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
          if (this.#global?.record(name, entry?.driverName) !== undefined) await this.#global.removeRef(name, ref, options.signal);
          else await this.#metadata.removeRef(name, ref);
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
        if (this.#global?.record(name, this.#cache.get(name)?.driverName) !== undefined) {
          await this.#removeGlobal(name, this.#global, options);
          return;
        }
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
      { drivers: this.#drivers, cache: this.#cache, logger: this.#logger, listTimeoutMs: this.#listTimeoutMs, global: this.#global },
      query,
      options.signal,
    );
  }

  /** References held on the volume (moby's `CountReferences`; a global volume's, on every host); 0 for a name the store does not know. */
  referenceCount(name: string): number {
    const entry = this.#cache.get(name);
    return this.#global?.record(name, entry?.driverName)?.refs.length ?? entry?.refs.size ?? 0;
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
    this.#unsubscribe();
    await this.#metadata.close();
  }

  /**
   * A global volume removed through the cluster: claimed first (refused while any host holds a
   * reference, and no host can take one meanwhile), then removed from the driver, then its record
   * deleted. Once the driver has removed it the remove succeeds, as a local one does.
   */
  async #removeGlobal(name: string, global: GlobalVolumes, options: StoreRemoveOptions): Promise<void> {
    const { signal } = options;
    const claim = await global.claim(name, signal);
    let resolved: Resolved;
    let failure: BerthError | undefined;
    try {
      resolved = await this.#resolve(name, options.driver ?? '', signal);
      let driver: VolumeDriver;
      try {
        driver = await this.#drivers.getDriver(resolved.driverName, { signal });
      } catch (err) {
        throw opError('remove', resolved.driverName, err);
      }
      try {
        await driver.remove(resolved.volume, { signal });
      } catch (err) {
        failure = opError('remove', name, err);
      }
    } catch (err) {
      await this.#settleClaim(name, () => claim.release());
      throw err;
    }
    if (failure !== undefined && options.purgeOnError !== true) {
      await this.#settleClaim(name, () => claim.release());
      throw failure;
    }
    await this.#uncache(name);
    await this.#settleClaim(name, () => claim.commit());
    if (failure !== undefined) throw failure;
    this.#events?.logVolumeEvent(name, 'destroy', global.attributes(resolved.driverName));
  }

  /** A claim that cannot be settled now is settled by the cluster store once it can (its own cleanup). */
  async #settleClaim(name: string, settle: () => Promise<void>): Promise<void> {
    try {
      await settle();
    } catch (err) {
      this.#logger.error('Error settling the removal of a global volume', { volume: name, error: String(err) });
    }
  }

  /** Another host created or destroyed a global volume: forget a binding it ended, and tell subscribers. */
  async #onClusterEvent(event: ClusterVolumeEvent): Promise<void> {
    const { action, name, driver, host } = event;
    if (action === 'destroy') {
      try {
        await this.#locks.with(name, async () => {
          if (this.#cache.get(name)?.driverName === driver) await this.#uncache(name);
        });
      } catch (err) {
        this.#logger.warn('Error forgetting a global volume removed by another host', { volume: name, host, error: String(err) });
      }
    }
    this.#events?.logVolumeEvent(name, action, this.#global?.attributes(driver, host) ?? { driver });
  }

  /** The snapshot callers see: a global volume's labels, options and creation time are the cluster's. */
  #view(name: string, entry: CacheEntry): StoredVolume {
    const volume = snapshot(name, entry);
    return this.#global?.view(volume) ?? volume;
  }

  /**
   * The record of a name: the local one, else the cluster's (a global volume), else a local
   * pending one (a create in flight or interrupted).
   */
  async #recordOf(name: string): Promise<VolumeRecord | undefined> {
    const local = await this.#metadata.get(name);
    if (local !== undefined && !local.pending) return local;
    return this.#global?.metadataRecord(name) ?? local;
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
    let record = this.#cache.has(name) ? undefined : await this.#recordOf(name);
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
    const scope = await scopeOf(driver, signal);
    if (scope === 'global' && this.#global !== undefined) {
      return this.#registerGlobal(record, { driver, driverRef, refs, global: this.#global, signal });
    }

    const { volume, createdHere, durable } = await this.#ensureInDriver(record, driver, { pending: true, signal });
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
      scope,
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
   * A global volume: the driver has (or creates) it, then the cluster commits the record in one
   * create-if-absent transaction, which is what a `201` stands for. The name bound to the same
   * driver meanwhile (another host won the race) returns that volume, with its labels.
   *
   * No pending record is kept, and the driver's volume is undone only when the name turned out to
   * be another driver's: in a shared backend, a volume this host created may be the one another
   * host is committing at the same time.
   */
  async #registerGlobal(
    record: VolumeRecordInput,
    deps: { driver: VolumeDriver; driverRef: string; refs: readonly string[]; global: GlobalVolumes; signal: AbortSignal | undefined },
  ): Promise<CacheEntry> {
    const { driver, global, signal } = deps;
    global.ensureReachable();
    const { volume, createdHere, durable } = await this.#ensureInDriver(record, driver, { pending: false, signal });
    await durable;
    let committed: Awaited<ReturnType<GlobalVolumes['commitCreate']>>;
    try {
      committed = await global.commitCreate(record, signal);
    } catch (err) {
      if (createdHere && isNameConflict(err)) await this.#undoDriverCreate(driver, volume);
      throw err;
    }
    const entry: CacheEntry = {
      volume,
      driverName: volume.driverName,
      scope: 'global',
      labels: copyMap(committed.record.labels),
      options: copyMap(committed.record.options),
      refs: refSet(deps.refs),
      driverRef: deps.driverRef,
      createdAt: committed.record.createdAt,
    };
    this.#cache.set(record.name, entry);
    if (committed.created) this.#events?.logVolumeEvent(record.name, 'create', global.attributes(volume.driverName));
    return entry;
  }

  /**
   * The driver's volume `record.name`, created unless the driver already has it; with `pending`, a
   * pending record is written first, which lets restore undo a driver create whose commit never
   * happened (and is deleted again when the create fails).
   */
  async #ensureInDriver(
    record: VolumeRecordInput,
    driver: VolumeDriver,
    { pending, signal }: { pending: boolean; signal: AbortSignal | undefined },
  ): Promise<{ volume: Volume; createdHere: boolean; durable?: Promise<void> | undefined }> {
    const { name } = record;
    try {
      const volume = driver.getSync !== undefined ? driver.getSync(name) : await driver.get(name, { signal });
      if (volume !== undefined) return { volume, createdHere: false };
    } catch (err) {
      // dockerd ignores this error and asks Create anyway; a driver it could not reach would only
      // fail, or hang, a second time.
      if (isCommunicationError(err)) throw err;
    }
    if (pending) {
      try {
        // With a provisional creation time when one will be kept: the commit then changes no
        // field's size, and SQLite rewrites the record in place instead of writing its labels
        // (possibly large) into the log a second time.
        await this.#metadata.markPending(driver.getSync === undefined ? record : { ...record, createdAt: Date.now() });
      } catch (err) {
        throw wrapError(err, 'error setting volume metadata');
      }
    }
    try {
      // The driver's own sync of the volume, when it lets the record be synced meanwhile.
      if (driver.createDeferred !== undefined) return { ...(await driver.createDeferred(name, record.options ?? undefined, { signal })), createdHere: true };
      return { volume: await driver.create(name, record.options ?? undefined, { signal }), createdHere: true };
    } catch (err) {
      if (pending) await this.#forgetRecord(name);
      throw err;
    }
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
    const record = known !== undefined ? known.record : (this.#storedMetadata(name) ?? (await this.#recordOf(name)));
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
      const scope = await this.#scopeOfDriver(stored, signal);
      const createdAt = meta === undefined ? await this.#recordDiscovered(name, volume, scope, signal) : meta.createdAt;
      return {
        name,
        driverName: volume.driverName,
        scope,
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
    const scope = await scopeOf(driver, signal);
    const createdAt = await this.#recordDiscovered(name, volume, scope, signal);
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
    return volume === entry.volume ? this.#view(name, entry) : undefined;
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
   * Records the driver of a volume found without a record, so that its references can be persisted;
   * returns the creation time recorded with it (see `ownCreatedAt`). A global volume's record is the
   * cluster's: the one there (this host's cache had not seen it yet), or one made now, without
   * labels, for a volume the shared backend has but the cluster does not.
   */
  async #recordDiscovered(name: string, volume: Volume, scope: VolumeScope, signal: AbortSignal | undefined): Promise<number | undefined> {
    const driver = volume.driverName;
    if (scope === 'global' && this.#global !== undefined) {
      return (await this.#global.commitCreate({ name, driver, labels: null, options: null }, signal)).record.createdAt;
    }
    const createdAt = ownCreatedAt(this.#drivers.peekDriver?.(driver), volume);
    try {
      await this.#metadata.put({ name, driver, labels: null, options: null, createdAt });
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
    if (this.#global?.record(name, entry.driverName) !== undefined) {
      await this.#global.addRef(name, ref);
    } else {
      try {
        await this.#metadata.addRef(name, ref);
      } catch (err) {
        throw wrapError(err, 'error setting volume metadata');
      }
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

  /**
   * Forgets a volume: releases its driver reference, drops the cache entry, deletes the record
   * durably (a global volume's in the cluster, for every host).
   */
  async #purge(name: string): Promise<void> {
    const driverName = this.#cache.get(name)?.driverName;
    await this.#uncache(name);
    try {
      if (this.#global?.record(name, driverName) !== undefined) await this.#global.forget(name);
      else await this.#metadata.delete([name]);
    } catch (err) {
      throw wrapError(err, 'error removing volume metadata');
    }
  }

  /** Drops the cache entry and releases its driver reference. */
  async #uncache(name: string): Promise<void> {
    const entry = this.#cache.get(name);
    this.#cache.delete(name);
    if (entry?.driverRef !== undefined) await this.#releaseDriver(entry.driverRef, name);
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
