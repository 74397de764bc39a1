import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * An npm registry for the `@berth` scope only, serving packed tarballs as if they were published:
 * npm is pointed at it with `--@berth:registry=<url>`, and fetches every other package from its
 * usual registry. This is what `npm install -g @berth/daemon` does once berth is on npm.
 */
export class ScopedRegistry {
  readonly #server: Server;
  readonly url: string;
  /** What npm asked for, in order (`GET /@berth%2fdaemon`, `GET /-/daemon-0.0.0.tgz`). */
  readonly requests: string[] = [];

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
  }

  /** Serves each tarball (by package name) under its version. */
  static async serve(tarballs: ReadonlyMap<string, string>): Promise<ScopedRegistry> {
    const documents = new Map<string, string>();
    const files = new Map<string, Buffer>();
    const server = createServer((req, res) => {
      const url = req.url ?? '/';
      registry.requests.push(`${req.method} ${url}`);
      const name = decodeURIComponent(url.split('?')[0]?.slice(1) ?? '');
      const document = documents.get(name);
      const file = files.get(url);
      if (document !== undefined) res.writeHead(200, { 'Content-Type': 'application/json' }).end(document);
      else if (file !== undefined) res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(file);
      else res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const registry = new ScopedRegistry(server, `http://127.0.0.1:${port}/`);
    for (const [name, tarball] of tarballs) {
      const bytes = await readFile(tarball);
      const { stdout } = await run('tar', ['-xzOf', tarball, 'package/package.json']);
      const manifest = JSON.parse(stdout) as { name: string; version: string };
      if (manifest.name !== name) throw new Error(`${tarball} holds ${manifest.name}, not ${name}`);
      const file = `/-/${name.replace('@berth/', '')}-${manifest.version}.tgz`;
      files.set(file, bytes);
      const version = {
        ...manifest,
        _id: `${name}@${manifest.version}`,
        dist: {
          tarball: `${registry.url.slice(0, -1)}${file}`,
          integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
          shasum: createHash('sha1').update(bytes).digest('hex'),
        },
      };
      documents.set(name, JSON.stringify({ name, 'dist-tags': { latest: manifest.version }, versions: { [manifest.version]: version } }));
    }
    return registry;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
