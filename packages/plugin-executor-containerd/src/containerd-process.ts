import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError } from '@berth/errdefs';
import { noopLogger, type Logger } from '@berth/logger';
import { ContainerdClient } from './client.js';

export interface StartContainerdOptions {
  /** Holds everything of this instance: `config.toml`, `root/`, `state/`, `containerd.sock`, `containerd.log`. */
  dir: string;
  /** Default `containerd` (looked up on PATH). */
  binary?: string | undefined;
  /** How long to wait for the socket to answer Version, in ms. Default 15 000. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  logger?: Logger | undefined;
}

export interface ContainerdExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A containerd child process that answers on `address`. */
export interface ContainerdProcess {
  /** The gRPC socket path. */
  readonly address: string;
  readonly pid: number;
  /** Settles when the process has exited, for whatever reason. */
  readonly exited: Promise<ContainerdExit>;
  /**
   * SIGTERM, then SIGKILL after `timeoutMs` (default 10 000). Tasks and their shims outlive
   * containerd: kill them first if they should not.
   */
  stop(options?: { timeoutMs?: number | undefined }): Promise<ContainerdExit>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<ContainerdExit>;
}

// Plugins berth does not use, or that want host resources (CRI wants CNI, opt wants /opt);
// loading them only costs start-up time and log noise. (The v1 runtime must stay: the tasks
// service refuses to load without it.)
const DISABLED_PLUGINS = [
  'io.containerd.grpc.v1.cri',
  'io.containerd.internal.v1.opt',
  'io.containerd.internal.v1.tracing',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
];

export function containerdPaths(dir: string): { config: string; root: string; state: string; address: string; log: string } {
  return {
    config: join(dir, 'config.toml'),
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    address: join(dir, 'containerd.sock'),
    log: join(dir, 'containerd.log'),
  };
}

/** A containerd 1.6+ (config version 2) configuration confined to `dir`. */
export function containerdConfig(dir: string): string {
  const p = containerdPaths(dir);
  // JSON string literals are valid TOML basic strings.
  const q = (s: string): string => JSON.stringify(s);
  return [
    'version = 2',
    `root = ${q(p.root)}`,
    `state = ${q(p.state)}`,
    `disabled_plugins = [${DISABLED_PLUGINS.map(q).join(', ')}]`,
    '',
    '[grpc]',
    `  address = ${q(p.address)}`,
    '',
    '[ttrpc]',
    `  address = ${q(`${p.address}.ttrpc`)}`,
    '',
    '[debug]',
    '  address = ""',
    '',
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n');
}

/**
 * Starts a private containerd with its own root, state and socket under `dir` and resolves once it
 * answers on its socket. Running it again on the same `dir` restarts that instance: containerd
 * re-attaches to the shims of tasks that are still running.
 */
export async function startContainerd(options: StartContainerdOptions): Promise<ContainerdProcess> {
  const { dir, signal } = options;
  const binary = options.binary ?? 'containerd';
  const logger = options.logger ?? noopLogger;
  const paths = containerdPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o711 });
  await writeFile(paths.config, containerdConfig(dir), { mode: 0o600 });

  const logFd = openSync(paths.log, 'a', 0o600);
  let child;
  try {
    child = spawn(binary, ['--config', paths.config], { stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<ContainerdExit>((resolve) => {
    child.once('exit', (code, sig) => resolve({ code, signal: sig }));
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });

  const terminate = async (sig: NodeJS.Signals, timeoutMs?: number): Promise<ContainerdExit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    if (timeoutMs === undefined) return exited;
    const timer = sleep(timeoutMs).then(() => undefined);
    const result = await Promise.race([exited, timer]);
    if (result !== undefined) return result;
    logger.warn('containerd did not stop in time; killing it', { pid: child.pid });
    return terminate('SIGKILL');
  };

  try {
    await spawned;
  } catch (err) {
    throw new BerthError(
      BerthError.from(err).kind,
      `cannot start containerd (${binary}): ${(err as Error).message}; install containerd and runc (Debian: apt-get install containerd runc)`,
      { cause: err },
    );
  }
  logger.info('started containerd', { pid: child.pid, address: paths.address });

  try {
    await waitUntilServing(paths.address, exited, options.timeoutMs ?? 15_000, signal);
  } catch (err) {
    await terminate('SIGKILL');
    const tail = await readFile(paths.log, 'utf8').then(
      (text) => text.split('\n').slice(-15).join('\n'),
      () => '',
    );
    throw new BerthError(BerthError.from(err).kind, `${(err as Error).message}\n${tail}`.trimEnd(), { cause: err });
  }

  return {
    address: paths.address,
    pid: child.pid ?? 0,
    exited,
    stop: (o) => terminate('SIGTERM', o?.timeoutMs ?? 10_000),
    kill: () => terminate('SIGKILL'),
  };
}

async function waitUntilServing(
  address: string,
  exited: Promise<ContainerdExit>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const client = new ContainerdClient({ address, timeoutMs: 1_000 });
  let gone: ContainerdExit | undefined;
  void exited.then((e) => (gone = e));
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      signal?.throwIfAborted();
      try {
        await client.version({ signal });
        return;
      } catch (err) {
        if (gone !== undefined) {
          throw new BerthError('unavailable', `containerd exited during start-up (code ${gone.code}, signal ${gone.signal})`);
        }
        if (Date.now() > deadline) {
          throw new BerthError('deadline-exceeded', `containerd did not answer on ${address} within ${timeoutMs} ms: ${(err as Error).message}`);
        }
      }
      await sleep(25);
    }
  } finally {
    client.close();
  }
}
