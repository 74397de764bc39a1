import { conflict, notFound, unavailable } from '@berth/errdefs';
import type {
  ClusterStore,
  ClusterVolumeEvent,
  ClusterVolumeInput,
  ClusterVolumeRecord,
  HeldReferences,
  RemovalClaim,
} from '../src/cluster-store.js';

/**
 * An in-memory cluster for the volume service's unit tests: the shared records, references and
 * claims of an etcd cluster, and one `ClusterStore` per host (`host(name)`). `down` makes every
 * call fail as an unreachable cluster does; `hide(host, name)` keeps a record out of one host's
 * cache (a watch that has not delivered it yet). The real store (`@berth/volume-cluster-etcd`) is
 * tested against etcd; this one only stands for it in tests of the service's logic.
 */
export class FakeCluster {
  readonly records = new Map<string, ClusterVolumeRecord>();
  /** Volume name → `<host>/<ref>`. */
  readonly refs = new Map<string, Set<string>>();
  readonly claims = new Map<string, string>();
  down = false;
  readonly #hosts = new Map<string, FakeClusterHost>();

  host(name: string): FakeClusterHost {
    let host = this.#hosts.get(name);
    if (host === undefined) this.#hosts.set(name, (host = new FakeClusterHost(this, name)));
    return host;
  }

  /** Tells every other host, as the watch does. */
  broadcast(event: ClusterVolumeEvent): void {
    for (const host of this.#hosts.values()) if (host.host !== event.host) host.deliver(event);
  }

  check(): void {
    if (this.down) throw unavailable('cluster store fake://: etcd is unreachable (connect ECONNREFUSED 127.0.0.1:2379)');
  }

  withRefs(record: ClusterVolumeRecord): ClusterVolumeRecord {
    return { ...record, refs: [...(this.refs.get(record.name) ?? [])].sort() };
  }
}

export class FakeClusterHost implements ClusterStore {
  readonly host: string;
  readonly held = new Map<string, { driver: string; refs: Set<string> }>();
  readonly hidden = new Set<string>();
  readonly #cluster: FakeCluster;
  readonly #listeners = new Set<(event: ClusterVolumeEvent) => void>();

  constructor(cluster: FakeCluster, host: string) {
    this.#cluster = cluster;
    this.host = host;
  }

  lookup(name: string): ClusterVolumeRecord | undefined {
    const record = this.hidden.has(name) ? undefined : this.#cluster.records.get(name);
    return record === undefined ? undefined : this.#cluster.withRefs(record);
  }

  warning(): string | undefined {
    return this.unreachable();
  }

  unreachable(): string | undefined {
    return this.#cluster.down ? 'cluster store fake://: etcd is unreachable (connect ECONNREFUSED 127.0.0.1:2379)' : undefined;
  }

  async create(input: ClusterVolumeInput): Promise<{ record: ClusterVolumeRecord; created: boolean }> {
    this.#cluster.check();
    this.hidden.delete(input.name);
    const existing = this.#cluster.records.get(input.name);
    if (existing !== undefined) return { record: this.#cluster.withRefs(existing), created: false };
    const record: ClusterVolumeRecord = { ...input, createdAt: Date.parse('2026-01-02T03:04:05Z'), host: this.host, refs: [] };
    this.#cluster.records.set(input.name, record);
    this.#cluster.broadcast({ action: 'create', name: input.name, driver: input.driver, host: this.host });
    return { record, created: true };
  }

  async claimRemoval(name: string): Promise<RemovalClaim | { inUse: readonly string[] }> {
    this.#cluster.check();
    if (!this.#cluster.records.has(name)) throw notFound(`no such volume: ${name}`);
    const refs = [...(this.#cluster.refs.get(name) ?? [])].sort();
    if (refs.length > 0) return { inUse: refs };
    const remover = this.#cluster.claims.get(name);
    if (remover !== undefined && remover !== this.host) throw conflict(`volume is being removed by ${remover}`);
    this.#cluster.claims.set(name, this.host);
    return {
      commit: async () => {
        this.#cluster.check();
        const record = this.#cluster.records.get(name);
        this.#cluster.records.delete(name);
        this.#cluster.refs.delete(name);
        this.#cluster.claims.delete(name);
        this.held.delete(name);
        if (record !== undefined) this.#cluster.broadcast({ action: 'destroy', name, driver: record.driver, host: this.host });
      },
      release: async () => {
        this.#cluster.check();
        if (this.#cluster.claims.get(name) === this.host) this.#cluster.claims.delete(name);
      },
    };
  }

  async addRef(name: string, ref: string): Promise<void> {
    this.#cluster.check();
    const record = this.#cluster.records.get(name);
    if (record === undefined) throw notFound(`no such volume: ${name}`);
    const remover = this.#cluster.claims.get(name);
    if (remover !== undefined) throw conflict(`volume is being removed by ${remover}`);
    let refs = this.#cluster.refs.get(name);
    if (refs === undefined) this.#cluster.refs.set(name, (refs = new Set()));
    refs.add(`${this.host}/${ref}`);
    let held = this.held.get(name);
    if (held === undefined) this.held.set(name, (held = { driver: record.driver, refs: new Set() }));
    held.refs.add(ref);
  }

  async removeRef(name: string, ref: string): Promise<void> {
    const held = this.held.get(name);
    held?.refs.delete(ref);
    if (held?.refs.size === 0) this.held.delete(name);
    if (!this.#cluster.down) this.#cluster.refs.get(name)?.delete(`${this.host}/${ref}`);
  }

  heldReferences(): ReadonlyMap<string, HeldReferences> {
    return new Map([...this.held].map(([name, h]) => [name, { driver: h.driver, refs: [...h.refs] }]));
  }

  subscribe(listener: (event: ClusterVolumeEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  deliver(event: ClusterVolumeEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
