import { join } from 'node:path';
import { BerthError, conflict, invalidParameter, notFound } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import type { IRequestOp, ITxnRequest } from 'etcd3';
import { CacheSync } from './cache-sync.js';
import { EtcdConnection } from './etcd-connection.js';
import { HeldReferenceFile, type HeldVolume } from './held-references.js';
import { absent, HostSession, present, rangeOf, valueIs } from './host-session.js';
import { ClusterKeys } from './keys.js';
import { encodeRecord, VolumeCache, type GlobalVolumeEvent, type GlobalVolumeInput, type GlobalVolumeRecord } from './volume-cache.js';

export const DEFAULT_PREFIX = '/berth';
export const DEFAULT_LEASE_TTL_SECONDS = 15;
export const DEFAULT_COMMAND_TIMEOUT_MS = 3_000;

/** A host name: no `/` (it is a key segment), as a volume name plus `:` (an address works as one). */
export const HOST_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

export interface EtcdClusterStoreOptions {
  /** etcd client URLs: `http://host:port` (or `https://` with `tls`). */
  endpoints: readonly string[];
  /** This host's name in the cluster (`HOST_NAME_PATTERN`). */
  host: string;
  /** Where this host keeps the references it holds (`held-references.json`). */
  stateDir: string;
  /** The key prefix shared by the hosts of one cluster; default `/berth`. */
  prefix?: string | undefined;
  /** TLS as etcd's own clients take it: CA bundle, client certificate and key (PEM contents). */
  tls?: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined } | undefined;
  /** The lease TTL: how long a host's references outlive it; default 15 s. */
  leaseTtlSeconds?: number | undefined;
  /** Deadline of one etcd request; default 3 s. */
  commandTimeoutMs?: number | undefined;
  /** How errors and warnings name the store (the `--cluster-store` value); default `etcd://<endpoints>`. */
  display?: string | undefined;
  logger?: Logger | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface RemovalClaim {
  commit(options?: CallOptions): Promise<void>;
  release(options?: CallOptions): Promise<void>;
}

/**
 * Global-scope volumes on an etcd v3 cluster, for many berthd hosts (see README): records created
 * by create-if-absent transactions, references under each host's lease, removals claimed so that
 * no reference can be taken meanwhile, and a watch-fed cache that answers every read. Satisfies
 * `@berth/volume-service`'s `ClusterStore`.
 *
 * Every etcd request has the command timeout as its deadline and fails as `unavailable`, naming
 * the store; nothing waits on a lock across a request, so one volume never waits for another.
 */
export class EtcdClusterStore {
  readonly host: string;
  readonly display: string;
  readonly #connection: EtcdConnection;
  readonly #keys: ClusterKeys;
  readonly #cache: VolumeCache;
  readonly #held: HeldReferenceFile;
  readonly #session: HostSession;
  readonly #sync: CacheSync;
  readonly #logger: Logger;
  readonly #listeners = new Set<(event: GlobalVolumeEvent) => void>();
  /** Names this host is removing: their claims are not swept. */
  readonly #claiming = new Map<string, number>();
  #closed = false;

  private constructor(options: EtcdClusterStoreOptions, held: HeldReferenceFile) {
    const logger = options.logger ?? noopLogger;
    this.host = options.host;
    this.display = options.display ?? `etcd://${options.endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}`;
    this.#logger = logger;
    this.#held = held;
    this.#keys = new ClusterKeys(options.prefix ?? DEFAULT_PREFIX);
    this.#connection = new EtcdConnection({
      endpoints: options.endpoints,
      tls: options.tls,
      commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      display: this.display,
    });
    this.#cache = new VolumeCache(this.#keys, (key, reason) => logger.warn('Ignoring a cluster record berth cannot read', { key, error: reason }));
    this.#session = new HostSession({
      connection: this.#connection,
      keys: this.#keys,
      host: this.host,
      ttlSeconds: options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS,
      held,
      logger,
      claimsInUse: () => new Set(this.#claiming.keys()),
    });
    this.#sync = new CacheSync({ connection: this.#connection, keys: this.#keys, cache: this.#cache, logger, onEvents: (events) => this.#deliver(events) });
  }

  /**
   * Opens the store: reads the references this host holds, then joins the cluster and loads the
   * cache, waiting for both at most one command timeout. An unreachable cluster does not stop the
   * open: both go on trying in the background, and `warning()` says why meanwhile.
   */
  static async open(options: EtcdClusterStoreOptions): Promise<EtcdClusterStore> {
    if (!HOST_NAME_PATTERN.test(options.host)) {
      throw invalidParameter(`invalid cluster host name "${options.host}": it must match ${HOST_NAME_PATTERN.source.replace(/^\^|\$$/g, '')}`);
    }
    if (options.endpoints.length === 0) throw invalidParameter('the cluster store needs at least one etcd endpoint');
    const held = await HeldReferenceFile.open(options.stateDir, options.logger ?? noopLogger);
    const store = new EtcdClusterStore(options, held);
    store.#session.start();
    store.#sync.start();
    const ms = store.#connection.commandTimeoutMs;
    await Promise.all([store.#sync.live(ms), store.#session.leaseId().catch(() => undefined)]);
    return store;
  }

  /** The directory the daemon gives a cluster store under its data-root. */
  static stateDir(dataRoot: string): string {
    return join(dataRoot, 'cluster');
  }

  lookup(name: string): GlobalVolumeRecord | undefined {
    return this.#cache.lookup(name);
  }

  warning(): string | undefined {
    return this.#named(this.#sync.problem ?? this.#session.problem ?? this.#connection.failing);
  }

  unreachable(): string | undefined {
    return this.#named(this.#connection.failing);
  }

  #named(problem: string | undefined): string | undefined {
    return problem === undefined ? undefined : `cluster store ${this.display}: ${problem}`;
  }

  async create(input: GlobalVolumeInput, options: CallOptions = {}): Promise<{ record: GlobalVolumeRecord; created: boolean }> {
    const key = this.#keys.volume(input.name);
    const put: IRequestOp = { request_put: { key, value: encodeRecord(input, this.host, new Date()) } };
    const res = await this.#connection.call(
      (o) => this.#connection.client.kv.txn({ compare: [absent(key)], success: [put, rangeOf(key)], failure: [rangeOf(key)] }, o),
      options.signal,
    );
    const kv = res.responses[res.succeeded ? 1 : 0]?.response_range?.kvs[0];
    const record = kv === undefined ? undefined : this.#cache.remember(kv);
    if (record === undefined) throw new BerthError('system', `cluster store ${this.display}: the record of volume ${input.name} cannot be read`);
    return { record, created: res.succeeded };
  }

  async claimRemoval(name: string, options: CallOptions = {}): Promise<RemovalClaim | { inUse: readonly string[] }> {
    const lease = await this.#session.leaseId(options.signal);
    const volume = this.#keys.volume(name);
    const claim = this.#keys.claim(name);
    const refs = this.#keys.refsOf(name);
    const put: IRequestOp = { request_put: { key: claim, value: Buffer.from(this.host), lease } };
    this.#claiming.set(name, (this.#claiming.get(name) ?? 0) + 1);
    try {
      const res = await this.#connection.call(
        (o) =>
          this.#connection.client.kv.txn(
            {
              // The volume exists, nobody holds a reference, and nobody (else) is removing it.
              compare: [present(volume), { ...absent(refs.key), range_end: refs.range_end }, absent(claim)],
              success: [put],
              failure: [rangeOf(volume), rangeOf(refs.key, refs.range_end, true), rangeOf(claim)],
            },
            o,
          ),
        options.signal,
      );
      if (!res.succeeded) {
        const [records, held, claims] = res.responses.map((r) => r.response_range?.kvs ?? []);
        if ((records ?? []).length === 0) throw notFound(`no such volume: ${name}`);
        if ((held ?? []).length > 0) {
          this.#release(name);
          const inUse = (held ?? []).flatMap((kv) => {
            const parsed = this.#keys.parse(kv.key);
            return parsed?.kind === 'ref' ? [`${parsed.host}/${parsed.ref}`] : [];
          });
          return { inUse: inUse.sort() };
        }
        const remover = claims?.[0]?.value.toString();
        // A claim of this host's own (a removal that could not finish) is taken over.
        if (remover !== this.host) throw conflict(`volume is being removed by ${remover ?? 'another host'}`);
      }
    } catch (err) {
      this.#release(name);
      throw err;
    }
    return this.#claimFor(name);
  }

  async addRef(name: string, ref: string, options: CallOptions = {}): Promise<void> {
    const lease = await this.#session.leaseId(options.signal);
    const volume = this.#keys.volume(name);
    const claim = this.#keys.claim(name);
    const key = this.#keys.ref(name, this.host, ref);
    const res = await this.#connection.call(
      (o) =>
        this.#connection.client.kv.txn(
          {
            compare: [present(volume), absent(claim)],
            success: [{ request_put: { key, value: Buffer.alloc(0), lease } }],
            failure: [rangeOf(volume), rangeOf(claim)],
          },
          o,
        ),
      options.signal,
    );
    if (!res.succeeded) {
      if ((res.responses[0]?.response_range?.kvs ?? []).length === 0) throw notFound(`no such volume: ${name}`);
      throw conflict(`volume is being removed by ${res.responses[1]?.response_range?.kvs[0]?.value.toString() ?? 'another host'}`);
    }
    const driver = this.#cache.lookup(name)?.driver;
    try {
      if (driver === undefined) throw new Error(`volume ${name} is not in this host's cache`);
      await this.#held.add(name, driver, ref);
    } catch (err) {
      await this.#deleteRef(key);
      throw err;
    }
  }

  async removeRef(name: string, ref: string, options: CallOptions = {}): Promise<void> {
    await this.#held.remove(name, ref);
    await this.#deleteRef(this.#keys.ref(name, this.host, ref), options.signal);
  }

  heldReferences(): ReadonlyMap<string, HeldVolume> {
    return this.#held.snapshot();
  }

  subscribe(listener: (event: GlobalVolumeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * Stops watching and keeping the lease alive. The lease is revoked (this host's keys go at once)
   * only when the host holds no references: held ones stay asserted for the TTL, which a restart
   * within it renews.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sync.close();
    await this.#held.idle();
    await this.#session.close({ revoke: this.#held.snapshot().size === 0 });
    this.#connection.close();
  }

  /**
   * The claim's two ends. Commit deletes the record first (so that watchers still see who removed
   * it), then any reference left and the claim, whatever became of the claim meanwhile: the driver
   * has removed the volume. Release deletes the claim if it is still this host's. Either way this
   * host stops protecting the claim, so one left behind by a failure is swept.
   */
  #claimFor(name: string): RemovalClaim {
    const claim = this.#keys.claim(name);
    let settled = false;
    let protecting = true;
    const settle = async (txn: ITxnRequest, signal: AbortSignal | undefined): Promise<bigint | undefined> => {
      if (settled) return undefined;
      try {
        const res = await this.#connection.call((o) => this.#connection.client.kv.txn(txn, o), signal);
        settled = true;
        return BigInt(res.header.revision);
      } catch (err) {
        this.#session.sweepLater();
        throw err;
      } finally {
        if (protecting) this.#release(name);
        protecting = false;
      }
    };
    return {
      commit: async (options = {}) => {
        const ops: IRequestOp[] = [
          { request_delete_range: { key: this.#keys.volume(name) } },
          { request_delete_range: this.#keys.refsOf(name) },
          { request_delete_range: { key: claim } },
        ];
        const revision = await settle({ success: ops }, options.signal);
        if (revision !== undefined) this.#cache.forget(name, revision);
        await this.#held.drop(name);
      },
      release: async (options = {}) => {
        await settle({ compare: [valueIs(claim, this.host)], success: [{ request_delete_range: { key: claim } }] }, options.signal);
      },
    };
  }

  #release(name: string): void {
    const count = (this.#claiming.get(name) ?? 1) - 1;
    if (count <= 0) this.#claiming.delete(name);
    else this.#claiming.set(name, count);
  }

  async #deleteRef(key: Buffer, signal?: AbortSignal): Promise<void> {
    try {
      await this.#connection.call((o) => this.#connection.client.kv.deleteRange({ key }, o), signal);
    } catch (err) {
      // Held no more on this host: the cluster forgets it once it can be reached.
      this.#logger.warn('Could not drop a reference in the cluster store now; dropping it later', { key: key.toString(), error: String(err) });
      this.#session.sweepLater();
    }
  }

  #deliver(events: readonly GlobalVolumeEvent[]): void {
    for (const event of events) {
      if (event.action === 'destroy' && this.#held.get(event.name) !== undefined) {
        void this.#held.drop(event.name).catch((err: unknown) => this.#logger.error('Error dropping references of a removed volume', { volume: event.name, error: String(err) }));
      }
      if (event.host === this.host) continue;
      for (const listener of this.#listeners) {
        try {
          listener(event);
        } catch (err) {
          this.#logger.error('Error in a cluster event listener', { error: String(err) });
        }
      }
    }
  }
}
