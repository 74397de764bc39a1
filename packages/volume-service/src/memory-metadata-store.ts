import { notFound } from '@berth/errdefs';
import type { MetadataStore, StringMap, VolumeRecord, VolumeRecordInput } from './metadata-store.js';

interface Row {
  driver: string;
  labels: StringMap | null;
  options: StringMap | null;
  createdAt: number | undefined;
  pending: boolean;
  refs: Set<string>;
}

const copy = (map: Readonly<StringMap> | null): StringMap | null => (map === null ? null : { ...map });

/**
 * A `MetadataStore` in process memory, for tests of the service logic. `close()` keeps the data, so
 * passing the same instance to a new service simulates a restart.
 */
export class MemoryMetadataStore implements MetadataStore {
  readonly #rows = new Map<string, Row>();

  async list(): Promise<VolumeRecord[]> {
    return [...this.#rows.keys()].map((name) => this.#record(name));
  }

  async get(name: string): Promise<VolumeRecord | undefined> {
    return this.#rows.has(name) ? this.#record(name) : undefined;
  }

  async markPending(record: VolumeRecordInput): Promise<void> {
    this.#upsert(record, true, this.#rows.get(record.name)?.refs ?? new Set());
  }

  async put(record: VolumeRecordInput, refs: readonly string[] = []): Promise<void> {
    this.#upsert(record, false, new Set(refs));
  }

  async delete(names: readonly string[]): Promise<void> {
    for (const name of names) this.#rows.delete(name);
  }

  async addRef(name: string, ref: string): Promise<void> {
    const row = this.#rows.get(name);
    if (row === undefined) throw notFound(`no metadata for volume ${name}`);
    row.refs.add(ref);
  }

  async removeRef(name: string, ref: string): Promise<void> {
    this.#rows.get(name)?.refs.delete(ref);
  }

  async close(): Promise<void> {}

  #upsert(record: VolumeRecordInput, pending: boolean, refs: Set<string>): void {
    this.#rows.set(record.name, {
      driver: record.driver,
      labels: copy(record.labels),
      options: copy(record.options),
      createdAt: record.createdAt,
      pending,
      refs,
    });
  }

  #record(name: string): VolumeRecord {
    const row = this.#rows.get(name);
    if (row === undefined) throw notFound(`no metadata for volume ${name}`);
    return {
      name,
      driver: row.driver,
      labels: copy(row.labels),
      options: copy(row.options),
      ...(row.createdAt === undefined ? {} : { createdAt: row.createdAt }),
      pending: row.pending,
      refs: [...row.refs],
    };
  }
}
