import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive } from '@berth/host';
import { containerdConfig, containerdPaths } from '@berth/plugin-executor-containerd';
import { describeWith, httpRequest, runDocker, type ExecResult } from './harness.js';
import { until } from './plugin-helpers.js';
import { registryRequirements } from './registry-helpers.js';

/**
 * The reference dockerd — Debian's docker.io 20.10, fetched by `scripts/ensure-dockerd.sh` — for
 * the interop tests. Without it (or root, containerd, runc, the docker CLI) they are skipped with
 * the reason printed, except under CI, where they fail.
 */

const ENSURE_DOCKERD = fileURLToPath(new URL('../../../scripts/ensure-dockerd.sh', import.meta.url));

function findDockerd(): { path?: string; reason?: string } {
  const missing = registryRequirements();
  if (missing !== undefined) return { reason: missing };
  const found = spawnSync('bash', [ENSURE_DOCKERD], { encoding: 'utf8', timeout: 600_000 });
  if (found.status === 0 && found.stdout.trim() !== '') return { path: found.stdout.trim() };
  return { reason: (found.stderr || found.error?.message || 'scripts/ensure-dockerd.sh failed').trim() };
}

export const dockerd = findDockerd();

export const describeWithDockerd = (name: string, body: () => void): void => {
  describeWith(name, dockerd.path === undefined ? (dockerd.reason ?? '') : undefined, body);
};

export interface DockerdOptions {
  /** Its directory: socket, exec-root, pidfile, log, daemon.json. */
  dir: string;
  /** Default `<dir>/data`. */
  dataRoot?: string;
  /** A running containerd's socket. Without it, see `legacyPluginSockets`. */
  containerd?: string;
  /**
   * Without `containerd`: dockerd runs in a mount namespace of its own, with its own containerd,
   * and this directory mounted at `/run/docker/plugins` (where dockerd 20.10 finds legacy plugin
   * sockets and keeps the sockets of managed plugins): nothing of the host's `/run` is touched.
   */
  legacyPluginSockets?: string;
}

/**
 * dockerd 20.10 on directories of its own, with vfs and no networking of its own. In a private
 * mount namespace (see `DockerdOptions.legacyPluginSockets`), its mounts stay there; the host's
 * mounts still reach it.
 */
export class Dockerd {
  readonly socket: string;
  readonly dataRoot: string;
  readonly #child: ChildProcess;
  readonly #log: string;
  readonly #containerdPidfile: string | undefined;

  private constructor(child: ChildProcess, socket: string, dataRoot: string, log: string, containerdPidfile: string | undefined) {
    this.#child = child;
    this.socket = socket;
    this.dataRoot = dataRoot;
    this.#log = log;
    this.#containerdPidfile = containerdPidfile;
  }

  static async start(binary: string, options: DockerdOptions): Promise<Dockerd> {
    const { dir } = options;
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'daemon.json'), '{}\n');
    const socket = join(dir, 'docker.sock');
    const log = join(dir, 'dockerd.log');
    const dataRoot = options.dataRoot ?? join(dir, 'data');
    const args = [
      '--config-file', join(dir, 'daemon.json'),
      '--data-root', dataRoot,
      '--exec-root', join(dir, 'exec'),
      '-H', `unix://${socket}`,
      '--pidfile', join(dir, 'dockerd.pid'),
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
    ];
    const fd = openSync(log, 'a');
    let child: ChildProcess;
    let containerdPidfile: string | undefined;
    if (options.containerd !== undefined) {
      child = spawn(binary, [...args, '--containerd', options.containerd], { stdio: ['ignore', fd, fd] });
    } else {
      const ctd = join(dir, 'containerd');
      await mkdir(ctd, { recursive: true });
      await writeFile(containerdPaths(ctd).config, containerdConfig(ctd));
      containerdPidfile = join(ctd, 'containerd.pid');
      await mkdir(options.legacyPluginSockets ?? join(dir, 'plugin-sockets'), { recursive: true });
      child = spawn('unshare', ['--mount', '--propagation', 'slave', 'sh', '-c', ISOLATED_START, 'dockerd', binary, ...args, '--containerd', containerdPaths(ctd).address], {
        stdio: ['ignore', fd, fd],
        env: {
          ...process.env,
          SOCKETS: options.legacyPluginSockets ?? join(dir, 'plugin-sockets'),
          CTD_CONFIG: containerdPaths(ctd).config,
          CTD_SOCKET: containerdPaths(ctd).address,
          CTD_PIDFILE: containerdPidfile,
        },
      });
    }
    closeSync(fd);
    const daemon = new Dockerd(child, socket, dataRoot, log, containerdPidfile);
    try {
      await until(
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode})`);
          return (await httpRequest(socket, { path: '/_ping', timeoutMs: 1000 }).catch(() => undefined))?.status === 200;
        },
        60_000,
        'dockerd to answer /_ping',
      );
    } catch (err) {
      await daemon.stop();
      throw new Error(`${(err as Error).message}\n${await daemon.logTail()}`);
    }
    return daemon;
  }

  docker(args: string[], configDir: string): Promise<ExecResult> {
    return runDocker(this.socket, args, configDir);
  }

  async logTail(): Promise<string> {
    return (await readFile(this.#log, 'utf8').catch(() => '')).slice(-4000);
  }

  /** SIGTERM (dockerd stops its plugins), SIGKILL after 30 s; then its own containerd, if any. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.#containerdPidfile === undefined) return;
    const pid = Number.parseInt(await readFile(this.#containerdPidfile, 'utf8').catch(() => ''), 10);
    if (!processAlive(pid)) return;
    process.kill(pid, 'SIGTERM');
    try {
      await until(() => !processAlive(pid), 15_000, 'containerd to exit');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
  }
}

/**
 * Run by `sh -c` in the new mount namespace: a private /run whose docker/plugins is $SOCKETS, a
 * containerd (so that it sees the same mounts as dockerd), then dockerd in place of the shell.
 */
const ISOLATED_START = `set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/docker/plugins
mount --bind "$SOCKETS" /run/docker/plugins
containerd --config "$CTD_CONFIG" >>"$CTD_CONFIG.log" 2>&1 &
echo $! > "$CTD_PIDFILE"
i=0
while [ ! -S "$CTD_SOCKET" ]; do i=$((i+1)); [ $i -lt 600 ] || { echo "containerd did not start" >&2; exit 1; }; sleep 0.05; done
exec "$@"`;

