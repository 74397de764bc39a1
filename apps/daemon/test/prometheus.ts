import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onPath } from './harness.js';

/** Why a Prometheus server cannot be run here, or undefined. */
export function prometheusRequirement(): string | undefined {
  return onPath('prometheus') ? undefined : 'prometheus is not installed (Debian: apt-get install prometheus)';
}

/** A free TCP port on loopback (bound and released: another process could take it meanwhile). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * Debian's `prometheus` server on loopback, on a port and a storage directory of its own, scraping
 * one target every second.
 */
export class Prometheus {
  readonly #child: ChildProcess;
  readonly url: string;
  log = '';

  private constructor(child: ChildProcess, url: string) {
    this.#child = child;
    this.url = url;
    child.stdout?.on('data', (c: Buffer) => (this.log += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (this.log += c.toString()));
  }

  static async start(dir: string, target: { host: string; port: number; path: string }): Promise<Prometheus> {
    const config = join(dir, 'prometheus.yml');
    await writeFile(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: berthd',
        `    metrics_path: ${target.path}`,
        '    static_configs:',
        `      - targets: ['${target.host}:${target.port}']`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    const child = spawn(
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const prometheus = new Prometheus(child, `http://127.0.0.1:${port}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${prometheus.log}`);
      try {
        if ((await fetch(`${prometheus.url}/-/ready`)).status === 200) return prometheus;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        await prometheus.stop();
        throw new Error(`prometheus did not get ready within 30 s:\n${prometheus.log}`);
      }
      await sleep(200);
    }
  }

  /** An instant PromQL query through the HTTP API. */
  async query(promql: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error ?? res.status}`);
    return body.data?.result ?? [];
  }

  /** Queries until `accept` holds for the result (scrapes run every second), or fails with the last result. */
  async until(promql: string, accept: (result: PromSample[]) => boolean, timeoutMs = 20_000): Promise<PromSample[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await this.query(promql);
      if (accept(result)) return result;
      if (Date.now() > deadline) throw new Error(`${promql}: no acceptable answer within ${timeoutMs} ms; last: ${JSON.stringify(result)}`);
      await sleep(250);
    }
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
