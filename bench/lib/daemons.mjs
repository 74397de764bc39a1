// Starting berthd, the reference daemons (dockerd, podman) and a private containerd, each on its own
// temp dirs.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineClient, canConnect, ping } from './http.mjs';
import { Child, removeTree, run } from './procs.mjs';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BERTHD = join(ROOT, 'apps/daemon/dist/main.js');
export const CACHE = join(ROOT, 'bench/.cache');
export const API_VERSION = '1.41'; // dockerd 20.10's; berth serves 1.24–1.51

export function onPath(name) {
  for (const d of (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])) {
    if (d !== '' && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

/**
 * A daemon process serving the Engine API on `socket`. `start()` spawns it and resolves at the first
 * `/_ping` answered with 200, recording the time since spawn.
 */
export class Daemon {
  /**
   * `legacyPluginSocket(name)` is where the daemon finds a v1 plugin called `name`; berthd also has
   * its `pluginSocketDir`.
   * @param {{ name: string, file: string, args: string[], env?: NodeJS.ProcessEnv, socket: string, logFile: string, dataRoot: string, execRoot: string, startTimeoutMs?: number, legacyPluginSocket: (name: string) => string, pluginSocketDir?: string }} spec
   */
  constructor(spec) {
    Object.assign(this, spec);
    this.client = new EngineClient(spec.socket, { apiVersion: API_VERSION, maxSockets: 16 });
    this.child = undefined;
  }

  get pid() {
    return this.child?.pid;
  }

  /** Spawns and waits for `_ping`; returns { pingMs } measured from spawn. */
  async start() {
    if (this.child?.running) throw new Error(`${this.name} already runs`);
    this.client.close();
    this.client = new EngineClient(this.socket, { apiVersion: API_VERSION, maxSockets: 16 });
    const child = new Child(this.name, this.file, this.args, { logFile: this.logFile, env: this.env });
    this.child = child;
    const deadline = child.startedAt + (this.startTimeoutMs ?? 60_000);
    for (;;) {
      if (!child.running) {
        const exit = await child.exited;
        throw new Error(`${this.name} exited during start-up (${JSON.stringify(exit)}):\n${await child.logTail()}`);
      }
      if (await ping(this.socket, 1000)) {
        const pingMs = performance.now() - child.startedAt;
        child.trackDescendants();
        return { pingMs };
      }
      if (performance.now() > deadline) {
        await child.stop({ signal: 'SIGKILL', graceMs: 5000 });
        throw new Error(`${this.name} did not answer /_ping within ${this.startTimeoutMs ?? 60_000} ms:\n${await child.logTail()}`);
      }
      await sleep(5);
    }
  }

  async stop() {
    this.client.close();
    if (this.child === undefined) return;
    const result = await this.child.stop();
    this.child = undefined;
    return result;
  }
}

/** berthd on `<dir>/{data,exec}`, socket `<dir>/berth.sock`, private legacy-plugin dirs. */
export async function berthDaemon(dir, options = {}) {
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const pluginSocketDir = join(dir, 'plugins');
  const pluginSpecDir = join(dir, 'plugin-specs');
  await mkdir(pluginSocketDir, { recursive: true, mode: 0o700 });
  await mkdir(pluginSpecDir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'daemon.json');
  await writeFile(config, '{}\n');
  const socket = join(dir, 'berth.sock');
  const nodeFlags = options.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.profileDir];
  const args = [
    ...nodeFlags,
    BERTHD,
    '--config-file', config,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'berthd.pid'),
    '-H', `unix://${socket}`,
    '--plugin-socket-dir', pluginSocketDir,
    '--plugin-spec-dir', pluginSpecDir,
    ...(options.containerd === undefined ? [] : ['--containerd', options.containerd]),
    ...(options.args ?? []),
  ];
  const legacyPluginSocket = (name) => join(pluginSocketDir, `${name}.sock`);
  return new Daemon({ name: 'berthd', file: process.execPath, args, socket, logFile: join(dir, 'berthd.log'), dataRoot, execRoot, legacyPluginSocket, pluginSocketDir });
}

/** dockerd 20.10 on `<dir>/{data,exec}` with its own containerd (started by dockerd under exec-root). */
export async function dockerDaemon(dir, dockerdPath) {
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const config = join(dir, 'daemon.json');
  // The trust key would otherwise go to /etc/docker/key.json (host-global); 20.10 takes its path only here.
  await writeFile(config, `${JSON.stringify({ 'deprecated-key-path': join(dir, 'key.json') })}\n`);
  const socket = join(dir, 'docker.sock');
  const args = [
    '--config-file', config,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', join(dir, 'dockerd.pid'),
    '-H', `unix://${socket}`,
    '--storage-driver', 'vfs',
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
  ];
  // dockerd reads v1 plugin sockets only from /run/docker/plugins, host-global (see hostPluginDir).
  const legacyPluginSocket = (name) => join('/run/docker/plugins', `${name}.sock`);
  return new Daemon({ name: 'dockerd', file: dockerdPath, args, socket, logFile: join(dir, 'dockerd.log'), dataRoot, execRoot, startTimeoutMs: 90_000, legacyPluginSocket });
}

/**
 * `podman system service` serving Docker's compat API on `<dir>/podman.sock`, with its own
 * `--root`, `--runroot`, `--tmpdir`, volume path and network config dir under `dir`, and a
 * `containers.conf` of its own (CONTAINERS_CONF) that names the v1 plugins it may use: podman finds
 * volume plugins only there (`[engine.volume_plugins]`), never in a directory.
 * @param {string} dir
 * @param {string} podmanPath
 * @param {{ volumePlugins?: readonly string[] }} [options] names of the v1 plugins to declare
 */
export async function podmanDaemon(dir, podmanPath, options = {}) {
  const dataRoot = join(dir, 'root');
  const execRoot = join(dir, 'run');
  const pluginDir = join(dir, 'plugins');
  for (const d of [dir, pluginDir, join(dir, 'tmp')]) await mkdir(d, { recursive: true, mode: 0o700 });
  const legacyPluginSocket = (name) => join(pluginDir, `${name}.sock`);
  const q = (s) => JSON.stringify(s);
  const conf = [
    '[engine]',
    'events_logger = "file"',
    // The default lock manager keeps one lock per volume in a host-global shared-memory segment
    // (/dev/shm/libpod_lock, 2,048 locks) that outlives the run; file locks live under --tmpdir.
    'lock_type = "file"',
    '[engine.volume_plugins]',
    ...(options.volumePlugins ?? []).map((name) => `${q(name)} = ${q(legacyPluginSocket(name))}`),
    '',
  ].join('\n');
  await writeFile(join(dir, 'containers.conf'), conf);
  const socket = join(dir, 'podman.sock');
  const args = [
    '--root', dataRoot,
    '--runroot', execRoot,
    '--tmpdir', join(dir, 'libpod'),
    '--volumepath', join(dir, 'volumes'),
    '--network-config-dir', join(dir, 'net'),
    '--storage-driver', 'vfs',
    '--cgroup-manager', 'cgroupfs',
    '--events-backend', 'file',
    'system', 'service', '--time', '0', `unix://${socket}`,
  ];
  // CONTAINERS_CONF replaces /etc/containers/containers.conf; TMPDIR keeps its image temp files here.
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), TMPDIR: join(dir, 'tmp') };
  return new Daemon({ name: 'podman', file: podmanPath, args, env, socket, logFile: join(dir, 'podman.log'), dataRoot, execRoot, legacyPluginSocket });
}

/** A private containerd (own root, state, socket under `dir`); resolves once its socket accepts. */
export async function startContainerd(dir) {
  await mkdir(dir, { recursive: true, mode: 0o711 });
  const q = (s) => JSON.stringify(s);
  const address = join(dir, 'containerd.sock');
  const disabled = ['io.containerd.grpc.v1.cri', 'io.containerd.internal.v1.opt', 'io.containerd.internal.v1.tracing', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.snapshotter.v1.aufs', 'io.containerd.snapshotter.v1.btrfs', 'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.zfs'];
  const config = [
    'version = 2',
    `root = ${q(join(dir, 'root'))}`,
    `state = ${q(join(dir, 'state'))}`,
    `disabled_plugins = [${disabled.map(q).join(', ')}]`,
    '[grpc]',
    `  address = ${q(address)}`,
    '[ttrpc]',
    `  address = ${q(`${address}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.toml'), config, { mode: 0o600 });
  const child = new Child('containerd', 'containerd', ['--config', join(dir, 'config.toml')], { logFile: join(dir, 'containerd.log'), graceMs: 10_000 });
  const deadline = Date.now() + 20_000;
  while (!(await canConnect(address))) {
    if (!child.running) throw new Error(`containerd exited during start-up:\n${await child.logTail()}`);
    if (Date.now() > deadline) {
      await child.stop({ graceMs: 2000 });
      throw new Error(`containerd did not listen on ${address} within 20 s:\n${await child.logTail()}`);
    }
    await sleep(25);
  }
  return { address, child };
}

/** Installs Debian packages (as root) when a command is missing. */
async function aptInstall(packages, log) {
  log(`installing ${packages.join(' ')} with apt-get…`);
  let r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { timeoutMs: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.code !== 0) {
    await run('apt-get', ['update'], { timeoutMs: 300_000 });
    r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { timeoutMs: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (r.code !== 0) throw new Error(`apt-get install ${packages.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
}

/** containerd and runc, for dockerd and for plugin enable; installs them when missing. Returns a reason when they cannot be had. */
export async function ensureContainerd(log) {
  const missing = ['containerd', 'runc', 'containerd-shim-runc-v2'].filter((b) => onPath(b) === undefined);
  if (missing.length === 0) return undefined;
  if (process.getuid?.() !== 0) return `missing ${missing.join(', ')} and not root to install them`;
  try {
    await aptInstall(['containerd', 'runc'], log);
  } catch (err) {
    return err.message;
  }
  const still = ['containerd', 'runc', 'containerd-shim-runc-v2'].filter((b) => onPath(b) === undefined);
  return still.length === 0 ? undefined : `still missing after apt-get: ${still.join(', ')}`;
}

/**
 * The reference dockerd: Debian's docker.io (20.10), unpacked under bench/.cache with `dpkg -x` so
 * that nothing is installed system-wide (the docker CLI on PATH stays as it is).
 * BERTH_BENCH_DOCKERD=<path> uses another binary. Resolves { path, version } or { reason }.
 */
export async function ensureDockerd(log) {
  const override = process.env.BERTH_BENCH_DOCKERD;
  let path = override;
  if (path === undefined) {
    if (process.getuid?.() !== 0) return { reason: 'dockerd needs root (this bench is not running as root)' };
    const unpacked = join(CACHE, 'docker.io');
    path = join(unpacked, 'usr/sbin/dockerd');
    if (!existsSync(path)) {
      const fetched = await fetchDockerIo(unpacked, log);
      if (fetched !== undefined) {
        const system = onPath('dockerd');
        if (system === undefined) return { reason: fetched };
        log(`${fetched}; using ${system} instead`);
        path = system;
      }
    }
  }
  const why = await ensureContainerd(log);
  if (why !== undefined) return { reason: `dockerd needs containerd and runc: ${why}` };
  let missingLibs = await unresolvedLibraries(path);
  if (missingLibs.length > 0 && process.getuid?.() === 0) {
    try {
      await aptInstall(['libdevmapper1.02.1', 'libsystemd0'], log);
    } catch (err) {
      return { reason: `dockerd's libraries ${missingLibs.join(', ')} are missing: ${err.message}` };
    }
    missingLibs = await unresolvedLibraries(path);
  }
  if (missingLibs.length > 0) return { reason: `dockerd's libraries ${missingLibs.join(', ')} are missing` };
  const v = await run(path, ['--version'], { timeoutMs: 20_000 }).catch((err) => ({ code: -1, stdout: '', stderr: err.message }));
  if (v.code !== 0) return { reason: `${path} --version failed: ${(v.stderr || v.stdout).trim()}` };
  return { path, version: v.stdout.trim() };
}

/**
 * The reference podman: Debian's `podman` (installed with apt-get when missing, as root).
 * BERTH_BENCH_PODMAN=<path> uses another binary. Resolves { path, version } or { reason }.
 */
export async function ensurePodman(log) {
  if (process.getuid?.() !== 0) return { reason: 'podman runs here as root, on its own --root and --runroot (this bench is not running as root)' };
  let path = process.env.BERTH_BENCH_PODMAN ?? onPath('podman');
  if (path === undefined) {
    try {
      await aptInstall(['podman'], log);
    } catch (err) {
      return { reason: err.message };
    }
    path = onPath('podman');
    if (path === undefined) return { reason: 'no podman on PATH after apt-get install podman' };
  }
  const v = await run(path, ['--version'], { timeoutMs: 20_000 }).catch((err) => ({ code: -1, stdout: '', stderr: err.message }));
  if (v.code !== 0) return { reason: `${path} --version failed: ${(v.stderr || v.stdout).trim()}` };
  return { path, version: v.stdout.trim() };
}

async function unresolvedLibraries(binary) {
  const r = await run('ldd', [binary], { timeoutMs: 20_000 }).catch(() => ({ code: -1, stdout: '' }));
  return r.stdout
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(' ')[0]);
}

/** apt-get download docker.io + dpkg -x; returns a reason on failure, undefined on success. */
async function fetchDockerIo(target, log) {
  if (onPath('apt-get') === undefined || onPath('dpkg') === undefined) return 'no apt-get/dpkg to fetch Debian docker.io';
  const debs = join(CACHE, 'apt');
  await mkdir(debs, { recursive: true });
  log('fetching Debian docker.io (dockerd 20.10) into bench/.cache (apt-get download; nothing is installed system-wide)…');
  let r = await run('apt-get', ['download', 'docker.io'], { cwd: debs, timeoutMs: 300_000 });
  if (r.code !== 0) {
    log('apt-get download failed; running apt-get update once…');
    await run('apt-get', ['update'], { timeoutMs: 300_000 });
    r = await run('apt-get', ['download', 'docker.io'], { cwd: debs, timeoutMs: 300_000 });
  }
  if (r.code !== 0) return `apt-get download docker.io failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
  const deb = (await readdir(debs)).filter((f) => f.startsWith('docker.io_') && f.endsWith('.deb')).sort().pop();
  if (deb === undefined) return 'apt-get download docker.io left no .deb';
  const tmp = `${target}.tmp-${process.pid}`;
  await removeTree(tmp);
  const x = await run('dpkg', ['-x', join(debs, deb), tmp], { timeoutMs: 300_000 });
  if (x.code !== 0) {
    await removeTree(tmp);
    return `dpkg -x ${deb} failed: ${x.stderr.trim()}`;
  }
  await removeTree(target);
  await rename(tmp, target);
  return undefined;
}
