// Every process and temp dir the bench makes is registered here and undone at the end, on Ctrl-C,
// on SIGTERM and on errors.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** @type {Array<{ name: string, fn: () => Promise<void> }>} */
const cleanups = [];
let cleaning;
let stopping = false;

/** True once a signal asked the bench to stop: no new workload starts. */
export function isStopping() {
  return stopping;
}

/** Registers `fn` to run at cleanup (last registered, first run); returns a function that unregisters it. */
export function onCleanup(name, fn) {
  const entry = { name, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

/** Runs every registered cleanup once, in reverse order; errors are printed, not thrown. */
export function cleanupAll() {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { name, fn } = cleanups.pop();
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup ${name}: ${err.message}`);
      }
    }
  })();
  return cleaning;
}

export function installSignalHandlers() {
  let signalled = false;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      if (signalled) {
        console.error(`\n${sig} again: exiting without finishing cleanup`);
        process.exit(130);
      }
      signalled = true;
      stopping = true;
      console.error(`\n${sig}: stopping the daemons and removing temp dirs…`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
}

/** The start time (clock ticks since boot) of a pid, to recognise it again; undefined when gone. */
function startTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Every live descendant of `pid` with its start time (so that a reused pid is never signalled). */
export function descendants(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push({ pid: Number(entry), ticks: fields[19] });
    } catch {
      // gone meanwhile
    }
  }
  const out = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(pid);
  return out;
}

function killIfSame({ pid, ticks }, signal) {
  if (startTicks(pid) !== ticks) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * CPU time used so far by every thread of `pid`, in ms: the sum of /proc/<pid>/task/<tid>/schedstat
 * (ns resolution); /proc/<pid>/stat utime+stime (10 ms ticks) when schedstat is not there.
 */
export function cpuMs(pid) {
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // thread gone meanwhile
      }
    }
    if (ns > 0) return ns / 1e6;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/** VmRSS of a pid in bytes (undefined when gone). */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * A long-running child (a daemon) with stdout and stderr appended to `logFile`.
 * `stop()` sends SIGTERM, waits up to `graceMs`, then SIGKILLs it and whatever it started that is
 * still alive (dockerd's containerd, shims).
 */
export class Child {
  /**
   * @param {string} name
   * @param {string} file
   * @param {string[]} args
   * @param {{ logFile: string, env?: NodeJS.ProcessEnv, graceMs?: number }} options
   */
  constructor(name, file, args, options) {
    this.name = name;
    this.logFile = options.logFile;
    this.graceMs = options.graceMs ?? 20_000;
    const fd = openSync(options.logFile, 'a');
    try {
      this.startedAt = performance.now();
      this.process = spawn(file, args, { stdio: ['ignore', fd, fd], env: options.env ?? process.env });
    } finally {
      closeSync(fd);
    }
    this.pid = this.process.pid;
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => resolve({ code, signal }));
      this.process.once('error', (err) => resolve({ code: null, signal: null, error: err }));
    });
    this.known = new Map();
    this.unregister = onCleanup(`${name} (pid ${this.pid})`, () => this.stop({ graceMs: 10_000 }));
  }

  get running() {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Remembers the current descendants, so they can be reaped even once re-parented. */
  trackDescendants() {
    if (this.pid === undefined) return;
    for (const d of descendants(this.pid)) this.known.set(`${d.pid}:${d.ticks}`, d);
  }

  async stop(options = {}) {
    this.trackDescendants();
    let result;
    if (this.running) {
      this.process.kill(options.signal ?? 'SIGTERM');
      result = await Promise.race([this.exited, sleep(options.graceMs ?? this.graceMs).then(() => undefined)]);
      if (result === undefined) {
        console.error(`${this.name} (pid ${this.pid}) did not stop within ${options.graceMs ?? this.graceMs} ms; killing it`);
        this.process.kill('SIGKILL');
        result = await this.exited;
      }
    } else result = await this.exited;
    // What it started and left behind: give it a moment, then SIGKILL.
    const left = [...this.known.values()].filter((d) => startTicks(d.pid) === d.ticks);
    if (left.length > 0) {
      for (const d of left) killIfSame(d, 'SIGTERM');
      await sleep(500);
      for (const d of left) killIfSame(d, 'SIGKILL');
    }
    this.unregister();
    return result;
  }

  async logTail(lines = 20) {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines - 1).join('\n');
  }
}

/** Unmounts whatever is mounted under `dir` (deepest first; lazily) and removes it. */
export async function removeTree(dir) {
  try {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((p) => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
  } catch {
    // no /proc
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Runs a command to completion; resolves { code, stdout, stderr }; rejects only if it cannot start or times out. */
export function run(file, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')}: timed out after ${options.timeoutMs ?? 300_000} ms`));
    }, options.timeoutMs ?? 300_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
