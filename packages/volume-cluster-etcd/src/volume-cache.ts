import type { ClusterKeys } from './keys.js';

export type StringMap = Record<string, string>;

/** What a host creates: a global volume's name, driver, labels and options. */
export interface GlobalVolumeInput {
  readonly name: string;
  readonly driver: string;
  readonly labels: Readonly<StringMap> | null;
  readonly options: Readonly<StringMap> | null;
}

/** A global volume as the cluster keeps it, with every host's references as last seen. */
export interface GlobalVolumeRecord extends GlobalVolumeInput {
  /** Creation time, ms since the epoch. */
  readonly createdAt: number;
  /** The host that created it. */
  readonly host: string;
  /** `<host>/<ref>`, sorted. */
  readonly refs: readonly string[];
}

export interface GlobalVolumeEvent {
  readonly action: 'create' | 'destroy';
  readonly name: string;
  readonly driver: string;
  /** Where it happened: the creating host, or the host whose removal claim was seen ('' when none was). */
  readonly host: string;
}

/** A key-value pair as etcd's API returns it (revisions as decimal strings). */
export interface KeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
}

export interface WatchEvent {
  type: 'Put' | 'Delete';
  kv: KeyValue;
}

interface Entry {
  record: GlobalVolumeRecord;
  createRevision: bigint;
}

/**
 * The watch-fed copy of the cluster's records, references and removal claims that every read of a
 * host is answered from. Pure bookkeeping: it is fed a snapshot (`load`) and then the watch's
 * events in order (`apply`), and says which volumes appeared and went (`GlobalVolumeEvent`).
 * A host's own transactions are applied at once (`remember`, `forget`) unless the watch has
 * already gone past them, so that a host reads its own writes.
 */
export class VolumeCache {
  readonly #keys: ClusterKeys;
  readonly #onInvalid: (key: string, reason: string) => void;
  #entries = new Map<string, Entry>();
  #refs = new Map<string, Set<string>>();
  #claims = new Map<string, string>();
  #revision = 0n;
  #loaded = false;

  constructor(keys: ClusterKeys, onInvalid: (key: string, reason: string) => void = () => {}) {
    this.#keys = keys;
    this.#onInvalid = onInvalid;
  }

  /** The revision the cache reflects. */
  get revision(): bigint {
    return this.#revision;
  }

  get size(): number {
    return this.#entries.size;
  }

  lookup(name: string): GlobalVolumeRecord | undefined {
    return this.#entries.get(name)?.record;
  }

  /** The host holding a removal claim on `name`, if any. */
  claimant(name: string): string | undefined {
    return this.#claims.get(name);
  }

  /**
   * Replaces the contents with a snapshot taken at `revision`. The volumes that appeared or went
   * since the previous contents are returned (none on the first load: nothing is news then).
   */
  load(kvs: readonly KeyValue[], revision: bigint): GlobalVolumeEvent[] {
    const before = this.#entries;
    const claimsBefore = this.#claims;
    this.#entries = new Map();
    this.#refs = new Map();
    this.#claims = new Map();
    for (const kv of kvs) this.#put(kv);
    for (const [name, refs] of this.#refs) this.#refreshRefs(name, refs);
    this.#revision = revision;
    const first = !this.#loaded;
    this.#loaded = true;
    if (first) return [];

    const events: GlobalVolumeEvent[] = [];
    for (const [name, old] of before) {
      const now = this.#entries.get(name);
      if (now === undefined || now.createRevision !== old.createRevision) {
        events.push({ action: 'destroy', name, driver: old.record.driver, host: claimsBefore.get(name) ?? '' });
      }
    }
    for (const [name, now] of this.#entries) {
      if (before.get(name)?.createRevision !== now.createRevision) events.push(this.#created(now.record));
    }
    return events;
  }

  /** Applies watch events, in order, up to `revision`. */
  apply(events: readonly WatchEvent[], revision: bigint): GlobalVolumeEvent[] {
    const changes: GlobalVolumeEvent[] = [];
    for (const event of events) {
      const change = event.type === 'Put' ? this.#put(event.kv, true) : this.#delete(event.kv.key);
      if (change !== undefined) changes.push(change);
    }
    if (revision > this.#revision) this.#revision = revision;
    return changes;
  }

  /** A record this host committed or read (at `kv.mod_revision`), unless the watch already went past it. */
  remember(kv: KeyValue): GlobalVolumeRecord | undefined {
    if (BigInt(kv.mod_revision) > this.#revision) this.#put(kv);
    return this.#parseRecord(kv);
  }

  /** A volume this host deleted at `revision`, unless the watch already went past it. */
  forget(name: string, revision: bigint): void {
    if (revision > this.#revision) this.#delete(this.#keys.volume(name));
  }

  #put(kv: KeyValue, refresh = false): GlobalVolumeEvent | undefined {
    const parsed = this.#keys.parse(kv.key);
    switch (parsed?.kind) {
      case 'volume': {
        const record = this.#parseRecord(kv);
        if (record === undefined) return undefined;
        const createRevision = BigInt(kv.create_revision);
        const previous = this.#entries.get(parsed.name);
        const refs = this.#refs.get(parsed.name);
        const entry = { record: refs === undefined ? record : { ...record, refs: formatRefs(refs) }, createRevision };
        this.#entries.set(parsed.name, entry);
        return previous?.createRevision === createRevision ? undefined : this.#created(entry.record);
      }
      case 'ref': {
        let refs = this.#refs.get(parsed.name);
        if (refs === undefined) this.#refs.set(parsed.name, (refs = new Set()));
        refs.add(`${parsed.host}/${parsed.ref}`);
        if (refresh) this.#refreshRefs(parsed.name, refs);
        return undefined;
      }
      case 'claim':
        this.#claims.set(parsed.name, kv.value.toString());
        return undefined;
      default:
        return undefined;
    }
  }

  #delete(key: Buffer): GlobalVolumeEvent | undefined {
    const parsed = this.#keys.parse(key);
    switch (parsed?.kind) {
      case 'volume': {
        const entry = this.#entries.get(parsed.name);
        if (entry === undefined) return undefined;
        this.#entries.delete(parsed.name);
        return { action: 'destroy', name: parsed.name, driver: entry.record.driver, host: this.#claims.get(parsed.name) ?? '' };
      }
      case 'ref': {
        const refs = this.#refs.get(parsed.name);
        if (refs === undefined) return undefined;
        refs.delete(`${parsed.host}/${parsed.ref}`);
        if (refs.size === 0) this.#refs.delete(parsed.name);
        this.#refreshRefs(parsed.name, refs);
        return undefined;
      }
      case 'claim':
        this.#claims.delete(parsed.name);
        return undefined;
      default:
        return undefined;
    }
  }

  #refreshRefs(name: string, refs: Set<string>): void {
    const entry = this.#entries.get(name);
    if (entry !== undefined) entry.record = { ...entry.record, refs: formatRefs(refs) };
  }

  #created(record: GlobalVolumeRecord): GlobalVolumeEvent {
    return { action: 'create', name: record.name, driver: record.driver, host: record.host };
  }

  #parseRecord(kv: KeyValue): GlobalVolumeRecord | undefined {
    const key = kv.key.toString();
    try {
      return decodeRecord(kv.value);
    } catch (err) {
      this.#onInvalid(key, err instanceof Error ? err.message : String(err));
      return undefined;
    }
  }
}

const formatRefs = (refs: ReadonlySet<string>): string[] => [...refs].sort();

/** The record's value: moby's volume metadata fields, plus when and where it was created. */
export function encodeRecord(input: GlobalVolumeInput, host: string, createdAt: Date): Buffer {
  return Buffer.from(
    JSON.stringify({
      Name: input.name,
      Driver: input.driver,
      Labels: input.labels,
      Options: input.options,
      CreatedAt: createdAt.toISOString(),
      Host: host,
    }),
  );
}

export function decodeRecord(value: Buffer): GlobalVolumeRecord {
  const raw: unknown = JSON.parse(value.toString());
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const { Name, Driver, Labels, Options, CreatedAt, Host } = raw as Record<string, unknown>;
  if (typeof Name !== 'string' || Name === '') throw new Error('no Name');
  if (typeof Driver !== 'string' || Driver === '') throw new Error('no Driver');
  const createdAt = typeof CreatedAt === 'string' ? Date.parse(CreatedAt) : Number.NaN;
  if (Number.isNaN(createdAt)) throw new Error('no CreatedAt');
  return {
    name: Name,
    driver: Driver,
    labels: stringMap(Labels, 'Labels'),
    options: stringMap(Options, 'Options'),
    createdAt,
    host: typeof Host === 'string' ? Host : '',
    refs: [],
  };
}

function stringMap(value: unknown, field: string): StringMap | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${field} is not a map`);
  const map: StringMap = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${field} is not a map of strings`);
    map[k] = v;
  }
  return map;
}
