import { createServer, type Server } from 'node:http';
import type { Logger } from '../logger.js';
import type { DaemonMetrics } from './metrics.js';

/** `GET /metrics` over plain HTTP on `--metrics-addr`, as dockerd serves its metrics. */
export class MetricsServer {
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async listen(address: { host: string; port: number }, metrics: DaemonMetrics, logger: Logger): Promise<MetricsServer> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
        return;
      }
      metrics.render().then(
        (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
        (err: unknown) => {
          logger.error('rendering metrics failed', { error: err });
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address.port, address.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => logger.error('metrics server error', { error: err }));
    return new MetricsServer(server);
  }

  /** The address it listens on (the port chosen when 0 was asked for). */
  get address(): { host: string; port: number } {
    const info = this.#server.address();
    if (info === null || typeof info === 'string') throw new Error('metrics server is not listening');
    return { host: info.address, port: info.port };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
