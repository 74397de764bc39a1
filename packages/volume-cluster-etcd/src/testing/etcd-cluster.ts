import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface EtcdTestClusterOptions {
  /** Members (3 by default). */
  size?: number;
  /** A directory for data dirs and logs; a temp dir by default (removed by `close`). */
  dir?: string;
  /** The `etcd` binary (Debian `etcd-server`). */
  binary?: string;
  /**
   * Serve clients over TLS and require a client certificate: a CA, a server certificate for
   * 127.0.0.1 and a client certificate are made with `openssl` (see `tls`).
   */
  tls?: boolean;
}

/** PEM files of a TLS cluster, named as etcd's own clients name them. */
export interface EtcdTestTls {
  readonly cacert: string;
  readonly cert: string;
  readonly key: string;
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
  /** The client's CA bundle, certificate and key, for a cluster started with `tls`. */
  readonly tls: EtcdTestTls | undefined;
  readonly #binary: string;
  readonly #ownDir: boolean;
  readonly #server: { cert: string; key: string } | undefined;

  private constructor(dir: string, members: Member[], binary: string, ownDir: boolean, certs: Certificates | undefined) {
    this.dir = dir;
    this.#members = members;
    this.#binary = binary;
    this.#ownDir = ownDir;
    this.tls = certs?.client;
    this.#server = certs?.server;
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
    const certs = options.tls === true ? await makeCertificates(join(dir, 'tls')) : undefined;
    const cluster = new EtcdTestCluster(dir, members, options.binary ?? 'etcd', options.dir === undefined, certs);
    try {
      for (let i = 0; i < size; i++) cluster.#spawn(i, 'new');
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** `http://127.0.0.1:<port>` (`https://` with TLS) of every member. */
  get endpoints(): string[] {
    return this.#members.map((m) => `${this.#scheme}://127.0.0.1:${m.clientPort}`);
  }

  get #scheme(): string {
    return this.#server === undefined ? 'http' : 'https';
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
      const healthy = await Promise.all(running.map((m) => (this.#server === undefined ? health(m.clientPort) : this.#tlsHealth(m.clientPort)).catch(() => false)));
      if (running.length > 0 && healthy.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`etcd cluster in ${this.dir} not healthy within ${timeoutMs} ms (see ${this.dir}/*.log)`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async close(): Promise<void> {
    await this.killAll();
    if (this.#ownDir) await rm(this.dir, { recursive: true, force: true });
  }

  /** With TLS the members' `/health` needs the client certificate: asked through `https`. */
  async #tlsHealth(port: number): Promise<boolean> {
    const tls = this.tls as EtcdTestTls;
    const [ca, cert, key] = await Promise.all([readFile(tls.cacert), readFile(tls.cert), readFile(tls.key)]);
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/health', ca, cert, key, timeout: 2_000 }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(/"health":\s*"?true/.test(text)));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end();
    });
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
          '--listen-client-urls', `${this.#scheme}://127.0.0.1:${m.clientPort}`,
          '--advertise-client-urls', `${this.#scheme}://127.0.0.1:${m.clientPort}`,
          ...(this.#server === undefined
            ? []
            : ['--cert-file', this.#server.cert, '--key-file', this.#server.key, '--client-cert-auth', '--trusted-ca-file', (this.tls as EtcdTestTls).cacert]),
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

interface Certificates {
  client: EtcdTestTls;
  server: { cert: string; key: string };
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with `openssl` in `dir`. */
async function makeCertificates(dir: string): Promise<Certificates> {
  await mkdir(dir, { recursive: true });
  const openssl = (...args: string[]): Promise<unknown> => promisify(execFile)('openssl', args, { cwd: dir });
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=berth test CA');
  for (const [name, usage] of [['server', 'serverAuth'], ['client', 'clientAuth']] as const) {
    await writeFile(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=berth-test-${name}`);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  }
  return {
    client: { cacert: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key') },
    server: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') },
  };
}
