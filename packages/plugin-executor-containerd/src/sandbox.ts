import { execFile } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { processAlive } from '@berth/host';
import {
  ContainerdClient,
  startContainerd,
  type ContainerdProcess,
  type ExitHandler,
} from './index.js';

const run = promisify(execFile);

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // keep looking
    }
  }
  return undefined;
}

const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/** Why the real-containerd tests cannot run here, or undefined when they can. */
export function missingRequirements(): string | undefined {
  if (process.getuid?.() !== 0) return 'they need root (runc creates namespaces and cgroups)';
  const missing = ['containerd', 'containerd-shim-runc-v2', 'runc'].filter((b) => onPath(b) === undefined);
  if (BUSYBOX === undefined) missing.push('busybox (busybox-static)');
  if (missing.length > 0) return `missing ${missing.join(', ')} (Debian: apt-get install containerd runc busybox-static)`;
  return undefined;
}

/** One containerd of our own, its temp dir, and everything needed to leave nothing behind. */
export class Sandbox {
  readonly dir: string;
  readonly rootfs: string;
  readonly stateDir: string;
  readonly runtimeRoot: string;
  containerd!: ContainerdProcess;

  private constructor(dir: string) {
    this.dir = dir;
    this.rootfs = join(dir, 'rootfs');
    this.stateDir = join(dir, 'exec');
    this.runtimeRoot = join(dir, 'runc');
  }

  static async create(): Promise<Sandbox> {
    const box = new Sandbox(await mkdtemp(join(tmpdir(), 'berth-cd-')));
    try {
      await box.#makeRootfs();
      await box.startContainerd();
      return box;
    } catch (err) {
      await box.dispose();
      throw err;
    }
  }

  get containerdDir(): string {
    return join(this.dir, 'containerd');
  }

  get address(): string {
    return this.containerd.address;
  }

  async startContainerd(): Promise<void> {
    this.containerd = await startContainerd({ dir: this.containerdDir });
  }

  /** A busybox plugin-like spec: rootfs dir as root, no snapshotter, host network. */
  spec(script: string): object {
    return {
      ociVersion: '1.0.2',
      process: {
        terminal: false,
        user: { uid: 0, gid: 0 },
        args: ['/bin/busybox', 'sh', '-c', script],
        env: ['PATH=/bin'],
        cwd: '/',
        capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] },
        noNewPrivileges: true,
      },
      root: { path: this.rootfs, readonly: false },
      hostname: 'plugin',
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      ],
      linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }] },
    };
  }

  /**
   * Kills whatever is left (`reapContainerd`: tasks of every namespace, runc's leftovers, shims of
   * this containerd), stops containerd and removes the temp dir.
   */
  async dispose(): Promise<void> {
    if (this.containerd !== undefined) {
      await reapContainerd({
        address: this.address,
        namespaces: this.#namespaces(),
        process: this.containerd,
        runtimeRoot: this.runtimeRoot,
      });
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  async #makeRootfs(): Promise<void> {
    for (const d of ['bin', 'proc', 'dev', 'tmp']) await mkdir(join(this.rootfs, d), { recursive: true });
    await copyFile(BUSYBOX!, join(this.rootfs, 'bin/busybox'));
    await chmod(join(this.rootfs, 'bin/busybox'), 0o755);
  }

  #namespaces(): string[] {
    try {
      return readdirSync(join(this.containerdDir, 'state', 'io.containerd.runtime.v2.task'));
    } catch {
      return [];
    }
  }
}

export interface ReapOptions {
  /** containerd's socket. */
  readonly address: string;
  /** The namespaces whose tasks are killed; default the client's (`plugins.moby`). */
  readonly namespaces?: readonly string[] | undefined;
  /** containerd itself, stopped by its handle… */
  readonly process?: ContainerdProcess | undefined;
  /** …or by its pid (SIGTERM, then SIGKILL). */
  readonly pid?: number | undefined;
  /** A runc root whose containers are force-deleted. */
  readonly runtimeRoot?: string | undefined;
  /** Mounts below it are unmounted. */
  readonly dir?: string | undefined;
}

/**
 * Leaves nothing behind of a containerd and what it ran: every task killed and deleted, runc
 * leftovers removed, containerd stopped (by its process handle or pid), the shims serving its
 * address killed (shims of deleted tasks exit by themselves; any other would write into a dir
 * about to be removed), and the mounts below `dir` unmounted. Never throws.
 */
export async function reapContainerd(options: ReapOptions): Promise<void> {
  const { address } = options;
  for (const namespace of options.namespaces ?? [undefined]) {
    const client = new ContainerdClient({ address, namespace, timeoutMs: 3_000 });
    try {
      for (const task of await client.listTasks().catch(() => [])) {
        await client.killTask(task.id, 9, { all: true }).catch(() => undefined);
        await client.waitTask(task.id, { timeoutMs: 5_000 }).catch(() => undefined);
        await client.deleteTask(task.id).catch(() => undefined);
        await client.deleteContainer(task.id).catch(() => undefined);
      }
    } finally {
      client.close();
    }
  }
  if (options.runtimeRoot !== undefined) {
    const { stdout } = await run('runc', ['--root', options.runtimeRoot, 'list', '-q']).catch(() => ({ stdout: '' }));
    for (const id of stdout.split('\n').filter(Boolean)) {
      await run('runc', ['--root', options.runtimeRoot, 'delete', '--force', id]).catch(() => undefined);
    }
  }
  if (options.process !== undefined) {
    await options.process.stop({ timeoutMs: 5_000 }).catch(() => undefined);
  } else if (options.pid !== undefined && processAlive(options.pid)) {
    signal(options.pid, 'SIGTERM');
    for (let i = 0; i < 50 && processAlive(options.pid); i++) await sleep(100);
    signal(options.pid, 'SIGKILL');
  }
  const shims = shimPids(address);
  for (const pid of shims) signal(pid, 'SIGKILL');
  for (let i = 0; i < 50 && shims.some(processAlive); i++) await sleep(20);
  if (options.dir !== undefined) await unmountBelow(options.dir);
}

/** The pids of the shims serving the containerd at `address`. */
function shimPids(address: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const at = argv.indexOf('-address');
      if (argv[0]?.includes('containerd-shim') && at >= 0 && argv[at + 1] === address) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

async function unmountBelow(dir: string): Promise<void> {
  const targets = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((target): target is string => target !== undefined && (target === dir || target.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const target of targets) await run('umount', ['-l', target]).catch(() => undefined);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** Records exits and lets a test wait for them. */
export class ExitRecorder implements ExitHandler {
  readonly ids: string[] = [];
  #waiters: Array<() => void> = [];

  handleExitEvent(id: string): void {
    this.ids.push(id);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  count(id: string): number {
    return this.ids.filter((x) => x === id).length;
  }

  async waitFor(id: string, timeoutMs = 10_000): Promise<void> {
    await until(() => this.count(id) > 0, timeoutMs, `exit of ${id}; seen: ${JSON.stringify(this.ids)}`, (wake) =>
      this.#waiters.push(wake),
    );
  }
}

/** A writable that keeps everything written to it. */
export class Output extends PassThrough {
  text = '';
  ended = false;
  #waiters: Array<() => void> = [];

  constructor() {
    super();
    this.setEncoding('utf8');
    this.on('data', (chunk: string) => {
      this.text += chunk;
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.on('end', () => {
      this.ended = true;
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    await until(() => pattern.test(this.text), timeoutMs, `${pattern} in output ${JSON.stringify(this.text)}`, (wake) =>
      this.#waiters.push(wake),
    );
  }

  async waitForEnd(timeoutMs = 10_000): Promise<void> {
    await until(() => this.ended, timeoutMs, 'end of output', (wake) => this.#waiters.push(wake));
  }
}

async function until(check: () => boolean, timeoutMs: number, what: string, subscribe: (wake: () => void) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(left, 250));
      subscribe(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Polls `fn` until it returns true or throws nothing, for conditions nobody announces. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${(last as Error).message}`}`);
}
