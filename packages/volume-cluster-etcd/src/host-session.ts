import { BerthError, conflict } from '@berth/errdefs';
import type { Logger } from '@berth/logger';
import type { ICompare, IRequestOp, Lease } from 'etcd3';
import type { EtcdConnection } from './etcd-connection.js';
import type { HeldReferenceFile } from './held-references.js';
import type { ClusterKeys } from './keys.js';
import { decodeRecord } from './volume-cache.js';

export interface HostSessionOptions {
  connection: EtcdConnection;
  keys: ClusterKeys;
  host: string;
  ttlSeconds: number;
  held: HeldReferenceFile;
  logger: Logger;
  /** The volumes whose removal this host is claiming right now (their claims are not swept). */
  claimsInUse: () => ReadonlySet<string>;
  /** A volume this host held references on is gone from the cluster. */
  onDropped?: (name: string) => void;
}

const MAX_RETRY_MS = 2_000;

/** `create_revision(key) == 0`: the key does not exist. */
export const absent = (key: Buffer): ICompare => ({ key, target: 'Create', result: 'Equal', create_revision: 0 });
/** `create_revision(key) > 0`: the key exists. */
export const present = (key: Buffer): ICompare => ({ key, target: 'Create', result: 'Greater', create_revision: 0 });
export const valueIs = (key: Buffer, value: string): ICompare => ({ key, target: 'Value', result: 'Equal', value: Buffer.from(value) });
export const rangeOf = (key: Buffer, range_end?: Buffer, keysOnly = false): IRequestOp => ({
  request_range: { key, ...(range_end && { range_end }), ...(keysOnly && { keys_only: true }) },
});

/**
 * This host's membership of the cluster: a lease (TTL `ttlSeconds`, kept alive while the process
 * lives), its name under that lease (`hosts/<host>`, so that two berthd cannot use one name), and
 * its references asserted under it. When the lease is lost (the cluster was out of reach longer
 * than the TTL) or the process comes back after a crash, a new lease is granted and everything is
 * asserted again, without anyone's help; meanwhile `leaseId()` waits, within its caller's deadline.
 *
 * Joining, in this order: claim the name (free, or held by this host's previous lease); sweep this
 * host's keys it no longer holds (references dropped while the cluster was out of reach, claims of
 * removals that did not finish); assert the references it holds (dropping those whose volume is
 * gone or being removed); then revoke the previous lease, whose keys are all superseded.
 */
export class HostSession {
  readonly #o: HostSessionOptions;
  #lease: { id: string; handle: Lease } | undefined;
  #problem: string | undefined = 'not joined yet';
  #waiters = new Set<() => void>();
  #closed = false;
  #wake: (() => void) | undefined;
  #closing: Promise<void>;
  #close!: () => void;
  #sweep: Promise<void> | undefined;
  #running: Promise<void> | undefined;

  constructor(options: HostSessionOptions) {
    this.#o = options;
    this.#closing = new Promise((resolve) => (this.#close = resolve));
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /** Why this host has no lease now (`undefined` when it has one). */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** The current lease id (read through a method: the compiler keeps no narrowing across it). */
  #current(): string | undefined {
    return this.#lease?.id;
  }

  /** The current lease, waiting for one being granted until `signal` aborts or the command timeout passes. */
  async leaseId(signal?: AbortSignal): Promise<string> {
    if (this.#lease !== undefined) return this.#lease.id;
    this.#wake?.();
    const ms = this.#o.connection.commandTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        this.#waiters.delete(done);
        resolve();
      };
      const aborted = (): void => {
        done();
        reject(signal?.reason);
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', aborted, { once: true });
      this.#waiters.add(done);
    });
    const joined = this.#current();
    if (joined !== undefined) return joined;
    throw new BerthError('unavailable', `cluster store ${this.#o.connection.display}: ${this.#problem ?? 'this host has no lease'}`);
  }

  /** Sweeps this host's keys it no longer holds, soon (a delete that could not be made now). */
  sweepLater(): void {
    if (this.#sweep !== undefined || this.#closed) return;
    this.#sweep = (async () => {
      for (let delay = 500; !this.#closed; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        const lease = this.#lease;
        if (lease === undefined) continue; // joining again sweeps anyway
        try {
          await this.#sweepStale();
          return;
        } catch (err) {
          this.#o.logger.debug('Sweeping this host\'s stale cluster keys failed; retrying', { error: String(err) });
        }
      }
    })().finally(() => (this.#sweep = undefined));
  }

  /** Stops keeping the lease alive; `revoke` also ends it now (its keys go at once). */
  async close({ revoke }: { revoke: boolean }): Promise<void> {
    this.#closed = true;
    this.#close();
    this.#wake?.();
    await this.#running;
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease === undefined) return;
    if (!revoke) {
      lease.handle.release();
      return;
    }
    try {
      await this.#o.connection.call((options) => lease.handle.revoke(options));
    } catch (err) {
      lease.handle.release();
      this.#o.logger.debug('Could not revoke this host\'s lease; it expires by itself', { error: String(err) });
    }
  }

  async #run(): Promise<void> {
    const { connection, logger, host, ttlSeconds } = this.#o;
    for (let delay = 200; !this.#closed; delay = Math.min(delay * 2, MAX_RETRY_MS)) {
      const handle = connection.client.lease(ttlSeconds, { autoKeepAlive: true });
      const lost = new Promise<unknown>((resolve) => handle.once('lost', resolve));
      handle.on('keepaliveSucceeded', () => connection.contact());
      try {
        const id = await connection.call(() => handle.grant());
        await this.#join(id);
        this.#lease = { id, handle };
        this.#problem = undefined;
        for (const notify of [...this.#waiters]) notify();
        logger.info('Joined the cluster', { host, lease: id, store: connection.display });
        delay = 100;
        const reason = await Promise.race([lost, this.#closing.then(() => undefined)]);
        if (this.#closed) return;
        this.#problem = `this host's lease was lost: ${reason instanceof Error ? reason.message : String(reason)}`;
        logger.warn('Lost this host\'s cluster lease; joining again', { host, lease: id, error: String(reason) });
      } catch (err) {
        const problem = connection.failed(err).message.replace(`cluster store ${connection.display}: `, '');
        if (problem !== this.#problem) logger.warn('Could not join the cluster; retrying', { host, store: connection.display, error: problem });
        this.#problem = problem;
        // A lease granted for a join that failed holds nothing: end it rather than let it run its TTL.
        void connection.call((options) => handle.revoke(options)).catch(() => handle.release());
      }
      this.#lease = undefined;
      if (!this.#closed) await this.#sleep(delay);
    }
  }

  async #join(id: string): Promise<void> {
    await this.#claimName(id);
    await this.#sweepStale();
    await this.#assertHeld(id);
    const { held, connection } = this.#o;
    const previous = held.lease;
    await held.setLease(id);
    if (previous !== undefined && previous !== id) {
      try {
        await connection.call((options) => connection.client.leaseClient.leaseRevoke({ ID: previous }, options));
      } catch (err) {
        // Gone already (expired), most of the time.
        this.#o.logger.debug('Previous lease not revoked', { lease: previous, error: String(err) });
      }
    }
  }

  /** `hosts/<host>` under the new lease: free, or held by this host's previous lease; else another berthd uses the name. */
  async #claimName(id: string): Promise<void> {
    const { connection, keys, host, held } = this.#o;
    const key = keys.host(host);
    const put: IRequestOp = { request_put: { key, value: Buffer.from(id), lease: id } };
    const first = await connection.call((options) => connection.client.kv.txn({ compare: [absent(key)], success: [put], failure: [rangeOf(key)] }, options));
    if (first.succeeded) return;
    const holder = first.responses[0]?.response_range?.kvs[0]?.value.toString();
    if (holder !== undefined && (holder === held.lease || holder === id)) {
      const again = await connection.call((options) => connection.client.kv.txn({ compare: [valueIs(key, holder)], success: [put] }, options));
      if (again.succeeded) return;
    }
    throw conflict(
      `the cluster host name '${host}' is in use by another berthd (lease ${holder ?? '?'}); give every host its own --cluster-advertise`,
    );
  }

  /** Deletes the references this host no longer holds and its claims of removals it is not making. */
  async #sweepStale(): Promise<void> {
    const { connection, keys, host, held, claimsInUse } = this.#o;
    const [refs, claims] = await Promise.all([
      connection.call((options) => connection.client.kv.range({ ...keys.allRefs, keys_only: true }, options)),
      connection.call((options) => connection.client.kv.range(keys.allClaims, options)),
    ]);
    const deletes: IRequestOp[] = [];
    for (const kv of refs.kvs) {
      const parsed = keys.parse(kv.key);
      if (parsed?.kind !== 'ref' || parsed.host !== host) continue;
      if (held.get(parsed.name)?.refs.includes(parsed.ref) !== true) deletes.push({ request_delete_range: { key: kv.key } });
    }
    const inUse = claimsInUse();
    const claimDeletes: Array<Promise<unknown>> = [];
    for (const kv of claims.kvs) {
      const parsed = keys.parse(kv.key);
      if (parsed?.kind !== 'claim' || kv.value.toString() !== host || inUse.has(parsed.name)) continue;
      claimDeletes.push(
        connection.call((options) =>
          connection.client.kv.txn({ compare: [valueIs(kv.key, host)], success: [{ request_delete_range: { key: kv.key } }] }, options),
        ),
      );
    }
    if (deletes.length > 0) await connection.call((options) => connection.client.kv.txn({ success: deletes }, options));
    await Promise.all(claimDeletes);
  }

  /** Puts every held reference under the lease `id`, one transaction per volume. */
  async #assertHeld(id: string): Promise<void> {
    const { connection, keys, host, held, logger } = this.#o;
    await Promise.all(
      [...held.snapshot()].map(async ([name, volume]) => {
        const puts: IRequestOp[] = volume.refs.map((ref) => ({ request_put: { key: keys.ref(name, host, ref), value: Buffer.alloc(0), lease: id } }));
        const res = await connection.call((options) =>
          connection.client.kv.txn(
            { compare: [present(keys.volume(name)), absent(keys.claim(name))], success: [rangeOf(keys.volume(name)), ...puts] },
            options,
          ),
        );
        const record = res.succeeded ? res.responses[0]?.response_range?.kvs[0] : undefined;
        let driver: string | undefined;
        try {
          driver = record === undefined ? undefined : decodeRecord(record.value).driver;
        } catch {
          driver = undefined;
        }
        if (driver === volume.driver) return;
        // Gone, being removed, or a new volume of that name on another driver: these references held nothing.
        if (res.succeeded) {
          const deletes: IRequestOp[] = volume.refs.map((ref) => ({ request_delete_range: { key: keys.ref(name, host, ref) } }));
          await connection.call((options) => connection.client.kv.txn({ success: deletes }, options));
        }
        logger.warn('A global volume this host held references on was removed while this host was away; dropping them', {
          volume: name,
          refs: volume.refs,
        });
        await held.drop(name);
        this.#o.onDropped?.(name);
      }),
    );
  }

  /** The run loop's pause between attempts, cut short by `leaseId()` and `close()`. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
