import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface EtcdTestClusterOptions {
  /** Members (3 by default). */
  size?: number;
  /** A directory for data dirs and logs; a temp dir by default (removed by `close`). */
  dir?: string;
  /** The `etcd` binary (Debian `etcd-server`). */
  binary?: string;
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly log: string;
  process: ChildProcess | undefined;
}

/**
 * A real etcd cluster on 127.0.0.1 for tests: `size` members on free ports, each with its own data
 * dir, with heartbeat and election times generous enough for a loaded machine. Members can be
 * killed (`kill -9`), frozen (`SIGSTOP`: a partition as the clients see it), and started again on
 * the same ports and data.
 */
export class EtcdTestCluster {
  readonly dir: string;
  readonly #members: Member[];
  readonly #binary: string;
  readonly #ownDir: boolean;

  private constructor(dir: string, members: Member[], binary: string, ownDir: boolean) {
    this.dir = dir;
    this.#members = members;
    this.#binary = binary;
    this.#ownDir = ownDir;
  }

  static async start(options: EtcdTestClusterOptions = {}): Promise<EtcdTestCluster> {
    const size = options.size ?? 3;
    const dir = options.dir ?? (await mkdtemp('/tmp/berth-etcd-'));
    await mkdir(dir, { recursive: true });
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      const name = `m${i + 1}`;
      members.push({ name, clientPort: await freePort(), peerPort: await freePort(), dataDir: join(dir, name), log: join(dir, `${name}.log`), process: undefined });
    }
    const cluster = new EtcdTestCluster(dir, members, options.binary ?? 'etcd', options.dir === undefined);
    try {
      for (let i = 0; i < size; i++) cluster.#spawn(i, 'new');
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** `http://127.0.0.1:<port>` of every member. */
  get endpoints(): string[] {
    return this.#members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  /** The `--cluster-store` value naming every member. */
  get storeUrl(): string {
    return `etcd://${this.#members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')}`;
  }

  get size(): number {
    return this.#members.length;
  }

  /** `kill -9` of member `index`. */
  async kill(index: number): Promise<void> {
    const member = this.#member(index);
    const child = member.process;
    member.process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.#members.map((_, i) => this.kill(i)));
  }

  /** Starts member `index` again on its ports and data. */
  restart(index: number): void {
    if (this.#member(index).process === undefined) this.#spawn(index, 'existing');
  }

  restartAll(): void {
    for (let i = 0; i < this.#members.length; i++) this.restart(i);
  }

  /** `SIGSTOP`: the member's connections stay open and nothing answers, as in a partition. */
  freeze(index: number): void {
    this.#member(index).process?.kill('SIGSTOP');
  }

  thaw(index: number): void {
    this.#member(index).process?.kill('SIGCONT');
  }

  /** The index of the current leader, as the members say. */
  async leader(): Promise<number | undefined> {
    const statuses = await Promise.all(this.#members.map((m) => status(m.clientPort).catch(() => undefined)));
    for (let i = 0; i < statuses.length; i++) {
      const s = statuses[i];
      if (s !== undefined && s.leader === s.memberId) return i;
    }
    return undefined;
  }

  /** Waits until the running members have a leader and answer `/health`. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.#members.filter((m) => m.process !== undefined);
      const healthy = await Promise.all(running.map((m) => health(m.clientPort).catch(() => false)));
      if (running.length > 0 && healthy.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`etcd cluster in ${this.dir} not healthy within ${timeoutMs} ms (see ${this.dir}/*.log)`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async close(): Promise<void> {
    await this.killAll();
    if (this.#ownDir) await rm(this.dir, { recursive: true, force: true });
  }

  #member(index: number): Member {
    const member = this.#members[index];
    if (member === undefined) throw new Error(`no etcd member ${index}`);
    return member;
  }

  #spawn(index: number, state: 'new' | 'existing'): void {
    const m = this.#member(index);
    const initialCluster = this.#members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const log = openSync(m.log, 'a');
    try {
      m.process = spawn(
        this.#binary,
        [
          '--name', m.name,
          '--data-dir', m.dataDir,
          '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
          '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
          '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
          '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
          '--initial-cluster', initialCluster,
          '--initial-cluster-state', state,
          '--initial-cluster-token', `berth-test-${process.pid}`,
          // Generous for a loaded machine (etcd's defaults: 100 ms and 1 s).
          '--heartbeat-interval', '300',
          '--election-timeout', '3000',
          '--logger', 'zap',
          '--log-level', 'warn',
        ],
        { stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function httpJson(port: number, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, timeout: 2_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function health(port: number): Promise<boolean> {
  const body = (await httpJson(port, 'GET', '/health')) as { health?: unknown };
  return body.health === 'true' || body.health === true;
}

async function status(port: number): Promise<{ memberId: string; leader: string }> {
  const body = (await httpJson(port, 'POST', '/v3/maintenance/status', {})) as { header?: { member_id?: string }; leader?: string };
  return { memberId: String(body.header?.member_id ?? ''), leader: String(body.leader ?? '') };
}
