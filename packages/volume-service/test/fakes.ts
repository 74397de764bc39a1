/**
 * In-memory fakes of what the volume service consumes: drivers, a counting registry, an event sink
 * and a logger, written against the interfaces alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError, invalidParameter, notFound, system, unavailable } from '@berth/errdefs';
import { onTestFinished } from 'vitest';
import type { Logger } from '@berth/logger';
import type { CallOptions, Volume, VolumeDriver, VolumeScope } from '@berth/volume-drivers';
import { MemoryMetadataStore } from '../src/memory-metadata-store.js';
import type { MetadataStore, VolumeRecord } from '../src/metadata-store.js';
import { SqliteMetadataStore } from '../src/sqlite-metadata-store.js';
import type { VolumeDriverRegistry, VolumeEventSink } from '../src/types.js';
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

export type PluginEndpoint = 'Create' | 'Remove' | 'Mount' | 'Unmount' | 'Path' | 'Get' | 'List' | 'Capabilities';

/**
 * A driver that behaves as `@berth/volume-drivers`' adapter over moby's fake v1 plugin
 * (`docker_cli_external_volume_driver_test.go`): it counts calls per VolumeDriver endpoint; `Get`
 * answers a fresh volume whose mountpoint is unknown (so `path()` asks `Path`), `{}` for "ninja"
 * volumes (option `ninja`), `{"Err": "no such volume"}` for others; `List` gives mountpoints;
 * `Capabilities` is asked once. `state` makes it a plugin that is down (every call `unavailable`)
 * or hung (every call waits for its deadline, `callTimeoutMs`, or the caller's signal).
 */
export class FakePluginDriver implements VolumeDriver {
  readonly name: string;
  readonly vols = new Map<string, { opts: Record<string, string> | undefined }>();
  readonly calls = new Map<PluginEndpoint, number>();
  state: 'up' | 'down' | 'hung' = 'up';
  scopeAnswer: VolumeScope = 'global';
  callTimeoutMs = 1000;
  #scope: VolumeScope | undefined;

  constructor(name: string) {
    this.name = name;
  }

  count(endpoint: PluginEndpoint): number {
    return this.calls.get(endpoint) ?? 0;
  }

  mountpointOf(volume: string): string {
    return `/run/plugins/${this.name}/mnt/${volume}`;
  }

  /** One plugin call: counted, then failing or hanging as `state` says. */
  async request(endpoint: PluginEndpoint, signal: AbortSignal | undefined): Promise<void> {
    this.calls.set(endpoint, this.count(endpoint) + 1);
    if (this.state === 'down') {
      throw unavailable(`VolumeDriver.${endpoint}: dial unix /run/docker/plugins/${this.name}.sock: connect: connection refused`);
    }
    if (this.state === 'hung') {
      await new Promise<never>((_, reject) => {
        const timer = setTimeout(
          () => reject(new BerthError('deadline-exceeded', `VolumeDriver.${endpoint}: the plugin did not answer within ${this.callTimeoutMs}ms`)),
          this.callTimeoutMs,
        );
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      });
    }
  }

  async scope(options?: CallOptions): Promise<VolumeScope> {
    if (this.#scope !== undefined) return this.#scope;
    try {
      await this.request('Capabilities', options?.signal);
    } catch {
      return 'local';
    }
    this.#scope = this.scopeAnswer;
    return this.#scope;
  }

  async create(name: string, opts: Readonly<Record<string, string>> | undefined, call?: CallOptions): Promise<Volume> {
    await this.request('Create', call?.signal);
    this.vols.set(name, { opts: opts === undefined ? undefined : { ...opts } });
    return new FakePluginVolume(this, name, '');
  }

  async remove(volume: Volume, options?: CallOptions): Promise<void> {
    await this.request('Remove', options?.signal);
    this.vols.delete(volume.name);
  }

  async list(options?: CallOptions): Promise<Volume[]> {
    await this.request('List', options?.signal);
    return [...this.vols]
      .filter(([, v]) => v.opts?.['ninja'] === undefined)
      .map(([name]) => new FakePluginVolume(this, name, this.mountpointOf(name)));
  }

  async get(name: string, options?: CallOptions): Promise<Volume | undefined> {
    await this.request('Get', options?.signal);
    const vol = this.vols.get(name);
    if (vol === undefined) throw system('no such volume');
    if (vol.opts?.['ninja'] !== undefined) return undefined;
    return new FakePluginVolume(this, name, '', { Hello: 'world' });
  }
}

export class FakePluginVolume implements Volume {
  readonly name: string;
  readonly driverName: string;
  readonly #driver: FakePluginDriver;
  readonly #status: Record<string, unknown> | undefined;
  #mountpoint: string;

  constructor(driver: FakePluginDriver, name: string, mountpoint: string, status?: Record<string, unknown>) {
    this.#driver = driver;
    this.name = name;
    this.driverName = driver.name;
    this.#mountpoint = mountpoint;
    this.#status = status;
  }

  cachedPath(): string {
    return this.#mountpoint;
  }

  async path(options?: CallOptions): Promise<string> {
    if (this.#mountpoint === '') {
      await this.#driver.request('Path', options?.signal).then(
        () => (this.#mountpoint = this.#driver.mountpointOf(this.name)),
        () => undefined,
      );
    }
    return this.#mountpoint;
  }

  async mount(_id: string, options?: CallOptions): Promise<string> {
    await this.#driver.request('Mount', options?.signal);
    this.#mountpoint = this.#driver.mountpointOf(this.name);
    return this.#mountpoint;
  }

  async unmount(_id: string, options?: CallOptions): Promise<void> {
    await this.#driver.request('Unmount', options?.signal);
    this.#mountpoint = '';
  }

  async createdAt(): Promise<Date | undefined> {
    return undefined;
  }

  status(): Record<string, unknown> | undefined {
    return this.#status;
  }
}

/**
 * A registry with moby's lookup errors and a plugin reference count per driver (what
 * `TestDefererencePluginOnCreateError` checks). `alias` maps a short name to a canonical one;
 * `pluginListing`, when set, is awaited by `getAllDrivers` (a plugin store waiting on a plugin).
 */
export class FakeRegistry implements VolumeDriverRegistry {
  readonly refs = new Map<string, number>();
  pluginListing: Promise<void> | undefined;
  readonly #drivers = new Map<string, VolumeDriver>();
  readonly #aliases = new Map<string, string>();

  constructor(...drivers: VolumeDriver[]) {
    for (const d of drivers) this.register(d);
  }

  register<D extends VolumeDriver>(driver: D): D {
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
    if (!(d instanceof FakeDriver)) throw new Error(`no fake driver ${name}`);
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
    await this.pluginListing;
    return [...this.#drivers.values()];
  }

  #lookup(name: string): VolumeDriver {
    if (name === '') throw invalidParameter('driver name cannot be empty');
    const d = this.#drivers.get(this.#aliases.get(name) ?? name);
    if (d === undefined) throw notFound(`error looking up volume plugin ${name}: plugin "${name}" not found`);
    return d;
  }
}

/** A driver that knows its volumes in memory, as the local driver does (`getSync`). */
export class InMemoryDriver extends FakeDriver {
  getCalls = 0;

  override async get(name: string): Promise<Volume | undefined> {
    this.getCalls++;
    return super.get(name);
  }

  getSync(name: string): Volume | undefined {
    return this.volumes.get(name);
  }
}

/** Like the real registry: registered drivers are at hand (`peekDriver`) and count no references. */
export class PeekingRegistry extends FakeRegistry {
  lookups = 0;
  readonly #registered = new Set<string>();

  registerInProcess<D extends VolumeDriver>(driver: D): D {
    this.#registered.add(driver.name);
    return this.register(driver);
  }

  override async createDriver(name: string): Promise<VolumeDriver> {
    this.lookups++;
    return this.#registered.has(name) ? this.getDriver(name) : super.createDriver(name);
  }

  override async releaseDriver(name: string): Promise<VolumeDriver> {
    return this.#registered.has(name) ? this.getDriver(name) : super.releaseDriver(name);
  }

  peekDriver(name: string): VolumeDriver | undefined {
    return this.#registered.has(name) && this.lookups > 0 ? this.driver(name) : undefined;
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
export async function harness(backend: BackendName, ...drivers: VolumeDriver[]): Promise<Harness> {
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
