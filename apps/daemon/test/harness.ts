import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe } from 'vitest';
import { httpRequest, type HttpRequest, type HttpResponse } from './http-client.js';

export { httpRequest, type HttpRequest, type HttpResponse } from './http-client.js';

/** The built daemon; integration tests run it as users do. */
export const BERTHD = fileURLToPath(new URL('../dist/main.js', import.meta.url));

if (!existsSync(BERTHD)) {
  throw new Error(`${BERTHD} is missing: build first (pnpm build)`);
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StartOptions {
  /** Reuse this directory (data-root, exec-root, socket), e.g. to restart on the same state. */
  dir?: string;
  /** Extra flags. */
  args?: string[];
  /** berthd's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** A `berthd` process on a private data-root and socket under a short temp directory. */
export class Berthd {
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  readonly pidfile: string;
  readonly #process: ChildProcess;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout = '';
  stderr = '';

  private constructor(dir: string, args: string[], env: NodeJS.ProcessEnv | undefined) {
    this.dir = dir;
    this.dataRoot = join(dir, 'data');
    this.execRoot = join(dir, 'exec');
    this.socket = join(dir, 'berth.sock');
    this.pidfile = join(this.execRoot, 'berthd.pid');
    this.#process = spawn(
      process.execPath,
      [BERTHD, '--data-root', this.dataRoot, '--exec-root', this.execRoot, '-H', `unix://${this.socket}`, '--config-file', join(dir, 'daemon.json'), ...args],
      { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env },
    );
    this.#process.stdout?.on('data', (c: Buffer) => (this.stdout += c.toString()));
    this.#process.stderr?.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.#exited = new Promise((resolve) => this.#process.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static async start(options: StartOptions = {}): Promise<Berthd> {
    const dir = options.dir ?? (await mkdtemp('/tmp/berth-it-'));
    await mkdir(dir, { recursive: true });
    // An explicit, empty daemon.json, so that the host's /etc/berth/daemon.json cannot leak in.
    if (!existsSync(join(dir, 'daemon.json'))) await writeFile(join(dir, 'daemon.json'), '{}\n');
    const daemon = new Berthd(dir, options.args ?? [], options.env);
    try {
      await daemon.#waitReady();
    } catch (err) {
      await daemon.kill();
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return daemon;
  }

  get pid(): number {
    return this.#process.pid ?? -1;
  }

  get running(): boolean {
    return this.#process.exitCode === null && this.#process.signalCode === null;
  }

  /** Sends `signal` (SIGTERM by default) and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.#process.kill(signal);
    return this.#exited;
  }

  /** `kill -9`: no shutdown at all. */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.stop('SIGKILL');
  }

  /** Stops (gracefully unless `kill`) and starts a new daemon on the same directory. */
  async restart(options: { kill?: boolean; args?: string[] } = {}): Promise<Berthd> {
    await (options.kill === true ? this.kill() : this.stop());
    return Berthd.start({ dir: this.dir, ...(options.args === undefined ? {} : { args: options.args }) });
  }

  http(req: HttpRequest): Promise<HttpResponse> {
    return httpRequest(this.socket, req);
  }

  /** The real docker CLI pointed at this daemon, with a private CLI config. */
  docker(args: string[], options: { configDir?: string } = {}): Promise<ExecResult> {
    return runDocker(this.socket, args, options.configDir ?? join(this.dir, 'docker-config'));
  }

  /** Stops the daemon if it still runs and removes its directory. */
  async cleanup(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!this.running) {
        throw new Error(`berthd exited before serving (code ${this.#process.exitCode}):\n${this.stderr}`);
      }
      try {
        if ((await httpRequest(this.socket, { path: '/_ping', timeoutMs: 1000 })).status === 200) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`berthd did not answer /_ping within 15 s:\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Runs berthd to completion (for configuration errors, --help, --version). */
export function runBerthd(args: string[], options: { timeoutMs?: number } = {}): Promise<ExecResult> {
  return run(process.execPath, [BERTHD, ...args], process.env, options.timeoutMs ?? 15_000);
}

export function runDocker(socket: string, args: string[], configDir: string): Promise<ExecResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: configDir, DOCKER_CLI_HINTS: 'false', TZ: 'UTC' };
  for (const key of ['DOCKER_CONTEXT', 'DOCKER_API_VERSION', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_DEFAULT_PLATFORM']) delete env[key];
  return run('docker', args, env, 60_000);
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeout: number): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(`${file} ${args.join(' ')} failed to run: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

/** Whether `command` is on PATH. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));
}

/** Whether the `docker` CLI is on PATH. */
export function dockerCliAvailable(): boolean {
  return onPath('docker');
}

/**
 * `describe` for tests that need a real part `missing` names (undefined when it is there). Without
 * it they are skipped with the reason printed, except under CI, where they run and fail loudly.
 */
export function describeWith(name: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(name, body);
    return;
  }
  if (process.env.CI === undefined) {
    console.warn(`Skipping "${name}": ${missing} (under CI these tests fail instead).`);
    describe.skip(name, body);
    return;
  }
  describe(name, () => {
    beforeAll(() => {
      throw new Error(`CI must run "${name}", but ${missing}`);
    });
    body();
  });
}

/** `describe` for tests that drive the real docker CLI (see `describeWith`). */
export function describeWithDocker(name: string, body: () => void): void {
  describeWith(name, dockerCliAvailable() ? undefined : 'the docker CLI is not on PATH', body);
}

/** Now (plus an offset) in unix seconds with milliseconds, as `--since`/`--until` take it. */
export function unixTime(offsetSeconds = 0): string {
  return (Date.now() / 1000 + offsetSeconds).toFixed(3);
}
