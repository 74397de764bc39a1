import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
// The real store, to check that it satisfies the manager's structural contracts. Imported by path:
// it is not a dependency of this package (see the README).
import { Plugin, PluginStore } from '@berth/plugin-store';
import type { Logger } from '@berth/logger';
import { PluginManager, type PluginEventAction, type PluginManagerOptions } from '../src/index.js';
import { FakeExecutor } from './fake-executor.js';

export interface TarEntry {
  name: string;
  type?: tar.Header['type'];
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

/** A tar stream of the entries, as `docker plugin create` would send. */
export function tarOf(entries: readonly TarEntry[]): AsyncIterable<Uint8Array> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith('/') ? 'directory' : 'file');
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
      ...(type === 'character-device' || type === 'block-device' ? { devmajor: 1, devminor: 3 } : {}),
    };
    if (type === 'file') pack.entry(header, e.content ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return pack as unknown as AsyncIterable<Uint8Array>;
}

/** A minimal valid context: `config.json` and an empty `rootfs/`. */
export function minimalContext(config: object = { description: 'foo plugin' }): AsyncIterable<Uint8Array> {
  return tarOf([
    { name: 'config.json', content: JSON.stringify(config) },
    { name: 'rootfs/', type: 'directory' },
  ]);
}

/** A volume plugin config the fake executor can "run". */
export const VOLUME_CONFIG = {
  Description: 'test volume plugin',
  Entrypoint: ['/bin/plugin'],
  Interface: { Socket: 'plugin.sock', Types: ['docker.volumedriver/1.0'] },
  Env: [{ Name: 'DEBUG', Settable: ['value'], Value: '0' }],
};

export async function tempDir(prefix = 'berth-pm-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** Everything a manager test needs; `dispose()` removes it all. */
export class Harness {
  readonly dir: string;
  readonly root: string;
  readonly execRoot: string;
  readonly executor: FakeExecutor;
  readonly events: Array<[string, string, PluginEventAction]> = [];
  readonly logs: Array<[string, string, Record<string, unknown> | undefined]> = [];
  readonly managers: Array<PluginManager<Plugin>> = [];
  store = new PluginStore({ legacy: false });

  private constructor(dir: string, executor: FakeExecutor) {
    this.dir = dir;
    this.root = path.join(dir, 'plugins');
    this.execRoot = path.join(dir, 'exec');
    this.executor = executor;
  }

  static async create(executor = new FakeExecutor()): Promise<Harness> {
    return new Harness(await tempDir(), executor);
  }

  readonly logger: Logger = {
    debug: (m, f) => this.logs.push(['debug', m, f]),
    info: (m, f) => this.logs.push(['info', m, f]),
    warn: (m, f) => this.logs.push(['warn', m, f]),
    error: (m, f) => this.logs.push(['error', m, f]),
  };

  /** Opens a manager on a fresh store (as a daemon start does). */
  async open(options: Partial<PluginManagerOptions<Plugin>> = {}): Promise<PluginManager<Plugin>> {
    this.store = new PluginStore({ legacy: false });
    const manager = await PluginManager.open<Plugin>({
      root: this.root,
      execRoot: this.execRoot,
      store: this.store,
      createPlugin: (init) => new Plugin(init),
      createExecutor: this.executor.factory,
      events: { logPluginEvent: (id, name, action) => this.events.push([id, name, action]) },
      logger: this.logger,
      socketPollMs: 10,
      socketTimeoutMs: 1_000,
      stopTimeoutMs: 200,
      restartPolicy: { initialDelayMs: 20, maxDelayMs: 200, resetAfterMs: 5_000 },
      ...options,
    });
    this.managers.push(manager);
    return manager;
  }

  /** What is under the manager root besides `tmp/`, and what `tmp/` holds. */
  async leftovers(): Promise<{ plugins: string[]; tmp: string[] }> {
    const plugins = (await readdir(this.root)).filter((e) => e !== 'tmp');
    const tmp = await readdir(path.join(this.root, 'tmp'));
    return { plugins, tmp };
  }

  async dispose(): Promise<void> {
    for (const m of this.managers) await m.shutdown().catch(() => undefined);
    await this.executor.dispose();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Polls until `check` holds. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function rejection(promise: Promise<unknown>): Promise<Error & { kind?: string }> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error & { kind?: string },
  );
}
