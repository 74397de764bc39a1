import { createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import type { Logger } from '../logger.js';
import { ApiResponse } from './api-response.js';
import { createRequestHandler, type RequestHandler, type RequestObserver } from './request-handler.js';
import { writeJson } from './respond.js';
import type { Route } from './router.js';
import { prepareSocketPath, secureSocket } from './unix-socket.js';

export interface ApiServerOptions {
  routes: readonly Route[];
  logger: Logger;
  /** Group owning the sockets; `undefined` leaves the daemon's own group. */
  gid?: number | undefined;
  onRequest?: RequestObserver | undefined;
}

/** The Engine API served over one or more unix sockets. */
export class ApiServer {
  readonly #servers: Array<{ path: string; server: Server }> = [];
  readonly #shutdown = new AbortController();
  readonly #logger: Logger;
  readonly #handler: RequestHandler;

  private constructor(options: ApiServerOptions) {
    this.#logger = options.logger;
    this.#handler = createRequestHandler({ routes: options.routes, logger: options.logger, shutdown: this.#shutdown.signal, onRequest: options.onRequest });
  }

  static async listen(paths: readonly string[], options: ApiServerOptions): Promise<ApiServer> {
    const api = new ApiServer(options);
    try {
      for (const path of paths) await api.#listen(path, options.gid);
    } catch (err) {
      await api.close();
      throw err;
    }
    return api;
  }

  get paths(): string[] {
    return this.#servers.map((s) => s.path);
  }

  /**
   * Stops accepting connections, ends streaming responses (events), lets requests in flight
   * finish for up to `timeoutMs`, then cuts what is left and removes the sockets.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#shutdown.abort(new Error('daemon is shutting down'));
    const timeoutMs = options.timeoutMs ?? 10_000;
    await Promise.all(
      this.#servers.map(async ({ path, server }) => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Connections turn idle as their last response ends (events streams included): close them then.
        const sweep = setInterval(() => server.closeIdleConnections(), 20);
        const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
        await closed;
        clearInterval(sweep);
        clearTimeout(deadline);
        await rm(path, { force: true });
      }),
    );
    this.#servers.length = 0;
  }

  async #listen(path: string, gid: number | undefined): Promise<void> {
    await prepareSocketPath(path);
    const server = createServer({ ServerResponse: ApiResponse }, (req, res) => {
      this.#handler(req, res).catch((err: unknown) => {
        this.#logger.error('request failed unexpectedly', { error: err, method: req.method, url: req.url });
        if (!res.headersSent) writeJson(res, 500, { message: err instanceof Error ? err.message : String(err) });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The socket file is created inside listen(): a tight umask keeps it private until the chmod.
      const umask = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(umask);
      }
    });
    server.on('error', (err) => this.#logger.error('API server error', { error: err, socket: path }));
    this.#servers.push({ path, server });
    await secureSocket(path, gid);
  }
}
