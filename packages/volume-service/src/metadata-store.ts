export type StringMap = Record<string, string>;

/** What the volume service persists about one volume (moby's `volumeMetadata`, plus refs). */
export interface VolumeRecord {
  readonly name: string;
  /** The canonical driver name the volume is bound to. */
  readonly driver: string;
  /** `null` when the volume was created without labels (kept apart from `{}`, as moby's nil map). */
  readonly labels: Readonly<StringMap> | null;
  readonly options: Readonly<StringMap> | null;
  /**
   * When the volume was created, in milliseconds since the epoch, for a driver whose volumes'
   * creation time is its own to say (the `local` driver's directory time, kept here so that
   * `volume ls` needs no `stat`). Absent for volumes on plugins, which report theirs, and in
   * records written before berth kept it.
   */
  readonly createdAt?: number | undefined;
  /**
   * Set between "about to ask the driver to create" and the acknowledged commit. A pending record
   * found on start is a create that was never acknowledged; restore undoes it.
   */
  readonly pending: boolean;
  /** References (mount refs) held on the volume; a set. */
  readonly refs: readonly string[];
}

export type VolumeRecordInput = Omit<VolumeRecord, 'pending' | 'refs'>;

/**
 * The persistence seam of the volume service. Every method except `markPending` is durable: when
 * its promise resolves, the change survives a crash of the process and of the machine.
 * Implementations: `SqliteMetadataStore` (the embedded default), `MemoryMetadataStore` (tests);
 * a distributed backend later.
 */
export interface MetadataStore {
  list(): Promise<VolumeRecord[]>;
  /** The record, or `undefined` when there is none. */
  get(name: string): Promise<VolumeRecord | undefined>;
  /**
   * Records a create in flight (upsert, `pending` set, refs kept). Need not be durable: a process
   * crash keeps it, and a machine crash that loses it also loses the unacknowledged create.
   */
  markPending(record: VolumeRecordInput): Promise<void>;
  /** Upserts the record with `pending` cleared and its refs replaced by `refs`. */
  put(record: VolumeRecordInput, refs?: readonly string[]): Promise<void>;
  /** Deletes the records and their refs, in one transaction; unknown names are ignored. */
  delete(names: readonly string[]): Promise<void>;
  /** Adds a ref; rejects with a `not-found` error when there is no record of that name. */
  addRef(name: string, ref: string): Promise<void>;
  /** Removes a ref; absent refs and names are ignored. */
  removeRef(name: string, ref: string): Promise<void>;
  close(): Promise<void>;
}
