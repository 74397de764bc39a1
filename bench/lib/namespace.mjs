// The bench runs in a mount namespace of its own. dockerd 20.10 finds v1 plugins only in the host's
// /run/docker/plugins, /etc/docker/plugins and /usr/lib/docker/plugins, and a create without a driver
// asks every plugin found there; a stale socket left by anything else on the machine makes each of its
// creates retry Plugin.Activate for 30 s (seen in CI: the reference hung and the bench hit its time
// limit). In the namespace those directories are empty and private, so that nothing on the host
// disturbs the figures and nothing the bench puts there outlives it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { run } from './procs.mjs';

const MARK = 'BERTH_BENCH_NAMESPACE';
const HOST_PLUGIN_DIRS = ['/etc/docker/plugins', '/usr/lib/docker/plugins'];

/**
 * As root with `unshare` on PATH and not yet in the bench's namespace: runs this script again in a new
 * mount namespace (private propagation), forwards signals to it and exits with its status; never
 * returns then. Otherwise returns (already inside, or isolation impossible: the caller says why).
 */
export async function reenterInOwnMountNamespace(script, onPath) {
  if (process.env[MARK] !== undefined) return;
  if (process.getuid?.() !== 0 || !onPath('unshare')) return;
  // Where mount namespaces are not allowed (a container without CAP_SYS_ADMIN), the bench runs as it is.
  if (spawnSync('unshare', ['--mount', '--propagation', 'private', 'true'], { stdio: 'ignore', timeout: 10_000 }).status !== 0) return;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', process.execPath, ...process.execArgv, fileURLToPath(script), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [MARK]: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  const status = await new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (constants.signals[signal] ?? 0))));
  process.exit(status);
}

/**
 * In the bench's namespace: an empty tmpfs over /run (dockerd's exec-root and containerd's live in the
 * temp dir; /run/docker/plugins made in it) and over the other plugin directories that exist. Returns
 * a sentence for the log, or why the host's directories are used.
 */
export async function privatePluginDirs() {
  if (process.env[MARK] === undefined) return 'not isolated (needs root, unshare and mount namespaces): the host\'s /run/docker/plugins is used as it is';
  const mount = async (...args) => {
    const r = await run('mount', args, { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  await mount('-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/run');
  await mkdir('/run/docker/plugins', { recursive: true, mode: 0o700 });
  const covered = ['/run'];
  for (const dir of HOST_PLUGIN_DIRS.filter((d) => existsSync(d))) {
    await mount('-t', 'tmpfs', '-o', 'mode=0700', 'tmpfs', dir);
    covered.push(dir);
  }
  return `own mount namespace: empty ${covered.join(', ')} (the host's plugin sockets are out of reach)`;
}
