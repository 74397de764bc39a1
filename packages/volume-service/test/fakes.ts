/**
 * In-memory fakes of what the volume service consumes: drivers, a counting registry, an event sink
 * and a logger. Written against `src/types.ts` only (`@berth/volume-drivers` is built in parallel).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invalidParameter, notFound } from '@berth/errdefs';
import { onTestFinished } from 'vitest';
import { MemoryMetadataStore } from '../src/memory-metadata-store.js';
import type { MetadataStore, VolumeRecord } from '../src/metadata-store.js';
import { SqliteMetadataStore } from '../src/sqlite-metadata-store.js';
import type {
  CallOptions,
  Logger,
  Volume,
  VolumeDriver,
  VolumeDriverRegistry,
  VolumeEventSink,
  VolumeScope,
} from '../src/types.js';
import { metadataPath, VolumesService, type VolumesServiceOptions } from '../src/volumes-service.js';

export const FAKE_CREATED_AT = new Date('2026-11-27T23:40:01.123Z');

export class FakeVolume implements Volume {
  readonly name: string;
  readonly driverName: string;
  mountpoint: string;
  createdAtValue: Date | undefined = FAKE_CREATED_AT;
  statusValue: Record<string, unknown> | undefined = { datakey: 'datavalue' };
  failMount: Error | undefined;
  failUnmount: Error | undefined;
  pathCalls = 0;
  readonly mounts: string[] = [];
  readonly unmounts: string[] = [];
  readonly liveRestored: string[] = [];

  constructor(name: string, driverName: string, mountpoint = `/fake/${driverName}/${name}`) {
    this.name = name;
    this.driverName = driverName;
    this.mountpoint = mountpoint;
  }

  cachedPath(): string {
    return this.mountpoint;
  }

  async path(): Promise<string> {
    this.pathCalls++;
    return this.mountpoint;
  }

  async mount(id: string): Promise<string> {
    if (this.failMount !== undefined) throw this.failMount;
    this.mounts.push(id);
    return this.mountpoint;
  }

  async unmount(id: string): Promise<void> {
    if (this.failUnmount !== undefined) throw this.failUnmount;
    this.unmounts.push(id);
  }

  async createdAt(): Promise<Date | undefined> {
    return this.createdAtValue;
  }

  status(): Record<string, unknown> | undefined {
    return this.statusValue;
  }

  async liveRestore(id: string): Promise<void> {
    this.liveRestored.push(id);
  }
}

/** moby's `testutils.FakeDriver`: `opts.error` makes create fail with that text. */
export class FakeDriver implements VolumeDriver {
  readonly name: string;
  readonly volumes = new Map<string, FakeVolume>();
  listMode: 'ok' | 'fail' | 'hang' = 'ok';
  getError: Error | undefined;
  removeError: Error | undefined;
  createCalls = 0;
  /** When set, `create` waits for it: a slow plugin. */
  createGate: Promise<void> | undefined;
  #scope: VolumeScope;

  constructor(name: string, scope: VolumeScope = 'local') {
    this.name = name;
    this.#scope = scope;
  }

  async scope(): Promise<VolumeScope> {
    return this.#scope;
  }

  async create(name: string, options: Readonly<Record<string, string>> | undefined): Promise<FakeVolume> {
    this.createCalls++;
    await this.createGate;
    const message = options?.['error'];
    if (message !== undefined && message !== '') throw new Error(message);
    let volume = this.volumes.get(name);
    if (volume === undefined) {
      volume = new FakeVolume(name, this.name);
      this.volumes.set(name, volume);
    }
    return volume;
  }

  async remove(volume: Volume): Promise<void> {
    if (this.removeError !== undefined) throw this.removeError;
    if (!this.volumes.delete(volume.name)) throw new Error('no such volume');
  }

  async list(options?: CallOptions): Promise<Volume[]> {
    if (this.listMode === 'hang') {
      // Ignores the signal on purpose: a plugin that never answers.
      void options;
      return new Promise<never>(() => undefined);
    }
    if (this.listMode === 'fail') throw new Error('plugin exploded');
    return [...this.volumes.values()];
  }

  async get(name: string): Promise<Volume | undefined> {
    if (this.getError !== undefined) throw this.getError;
    return this.volumes.get(name);
  }
}

/**
 * A registry with moby's lookup errors and a plugin reference count per driver (what
 * `TestDefererencePluginOnCreateError` checks). `alias` maps a short name to a canonical one.
 */
export class FakeRegistry implements VolumeDriverRegistry {
  readonly refs = new Map<string, number>();
  readonly #drivers = new Map<string, FakeDriver>();
  readonly #aliases = new Map<string, string>();

  constructor(...drivers: FakeDriver[]) {
    for (const d of drivers) this.register(d);
  }

  register(driver: FakeDriver): FakeDriver {
    this.#drivers.set(driver.name, driver);
    return driver;
  }

  unregister(name: string): void {
    this.#drivers.delete(name);
  }

  alias(short: string, canonical: string): void {
    this.#aliases.set(short, canonical);
  }

  driver(name: string): FakeDriver {
    const d = this.#drivers.get(name);
    if (d === undefined) throw new Error(`no fake driver ${name}`);
    return d;
  }

  refCount(name: string): number {
    return this.refs.get(name) ?? 0;
  }

  async getDriver(name: string): Promise<VolumeDriver> {
    return this.#lookup(name);
  }

  async createDriver(name: string): Promise<VolumeDriver> {
    const d = this.#lookup(name);
    this.refs.set(d.name, this.refCount(d.name) + 1);
    return d;
  }

  async releaseDriver(name: string): Promise<VolumeDriver> {
    const d = this.#lookup(name);
    this.refs.set(d.name, this.refCount(d.name) - 1);
    return d;
  }

  getDriverList(): string[] {
    return [...this.#drivers.keys()].sort();
  }

  async getAllDrivers(): Promise<VolumeDriver[]> {
    return [...this.#drivers.values()];
  }

  #lookup(name: string): FakeDriver {
    if (name === '') throw invalidParameter('driver name cannot be empty');
    const d = this.#drivers.get(this.#aliases.get(name) ?? name);
    if (d === undefined) throw notFound(`error looking up volume plugin ${name}: plugin "${name}" not found`);
    return d;
  }
}

export interface RecordedEvent {
  name: string;
  action: string;
  attributes: Record<string, string>;
}

export class RecordingEvents implements VolumeEventSink {
  readonly events: RecordedEvent[] = [];

  logVolumeEvent(name: string, action: string, attributes: Record<string, string>): void {
    this.events.push({ name, action, attributes: { ...attributes } });
  }

  actions(): string[] {
    return this.events.map((e) => `${e.action} ${e.name}`);
  }

  clear(): void {
    this.events.length = 0;
  }
}

export class RecordingLogger implements Logger {
  readonly lines: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }> = [];
  debug(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'debug', message, fields });
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'error', message, fields });
  }
  warnings(): string[] {
    return this.lines.filter((l) => l.level === 'warn').map((l) => l.message);
  }
}

/** The two metadata backends every behavioural test runs against. */
export type BackendName = 'sqlite' | 'memory';
export const BACKENDS: readonly BackendName[] = ['sqlite', 'memory'];

/**
 * One data-root with a backend: `open()` starts a service on it; opening again after `close()`
 * is a daemon restart (the memory backend keeps its data across it).
 */
export class Harness {
  readonly backend: BackendName;
  readonly root: string;
  readonly registry: FakeRegistry;
  readonly events = new RecordingEvents();
  readonly logger = new RecordingLogger();
  readonly #memory = new MemoryMetadataStore();
  readonly #open = new Set<VolumesService>();

  constructor(backend: BackendName, root: string, registry: FakeRegistry) {
    this.backend = backend;
    this.root = root;
    this.registry = registry;
  }

  /** The backend a service on this harness would use (for tests of the store level). */
  metadata(): MetadataStore | undefined {
    return this.backend === 'memory' ? this.#memory : undefined;
  }

  /** Runs `fn` on this data-root's metadata while no service holds it (SQLite is single-holder). */
  async withMetadata<T>(fn: (metadata: MetadataStore) => Promise<T>): Promise<T> {
    if (this.backend === 'memory') return fn(this.#memory);
    const metadata = await SqliteMetadataStore.open(metadataPath(this.root));
    try {
      return await fn(metadata);
    } finally {
      await metadata.close();
    }
  }

  async records(): Promise<VolumeRecord[]> {
    return this.withMetadata((m) => m.list());
  }

  async open(options: Partial<VolumesServiceOptions> = {}): Promise<VolumesService> {
    const service = await VolumesService.open({
      root: this.root,
      drivers: this.registry,
      events: this.events,
      logger: this.logger,
      metadata: this.metadata(),
      ...options,
    });
    this.#open.add(service);
    return service;
  }

  async restart(service: VolumesService, options: Partial<VolumesServiceOptions> = {}): Promise<VolumesService> {
    await this.close(service);
    return this.open(options);
  }

  async close(service: VolumesService): Promise<void> {
    this.#open.delete(service);
    await service.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const service of this.#open) await service.close();
    this.#open.clear();
    await rm(this.root, { recursive: true, force: true });
  }
}

/** A harness cleaned up (services closed, data-root deleted) when the current test finishes. */
export async function harness(backend: BackendName, ...drivers: FakeDriver[]): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'berth-volume-service-'));
  const h = new Harness(backend, root, new FakeRegistry(...drivers));
  onTestFinished(() => h[Symbol.asyncDispose]());
  return h;
}

/** A temporary directory deleted when the current test finishes. */
export async function scratchDir(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), 'berth-volume-service-'));
  onTestFinished(() => rm(path, { recursive: true, force: true }));
  return path;
}
