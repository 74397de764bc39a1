import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { mediaTypes, sha256Digest } from '@berth/plugin-registry';
import { htpasswdUnavailable, pushContainerImage, registryUnavailable, startRegistry, type RunningRegistry } from '@berth/plugin-registry/testing';
import { describeWith, dockerCliAvailable } from './harness.js';
import { pluginRequirements } from './plugin-helpers.js';

export { pushContainerImage, startRegistry, type RunningRegistry };

/** Why the registry tests cannot run here (on top of the managed plugin requirements), or undefined. */
export function registryRequirements(options: { plugins?: boolean } = {}): string | undefined {
  const rest = options.plugins === false ? (dockerCliAvailable() ? undefined : 'the docker CLI is not on PATH') : pluginRequirements();
  return registryUnavailable() ?? htpasswdUnavailable() ?? rest;
}

/**
 * `describe` for tests against a real registry (Debian `docker-registry`, `htpasswd`) with the
 * docker CLI and, unless `plugins: false`, managed plugins run by containerd. Skipped with the
 * reason printed when something is missing, except under CI, where they fail.
 */
export function describeWithRegistry(name: string, body: () => void, options: { plugins?: boolean } = {}): void {
  describeWith(name, registryRequirements(options), body);
}

/** A plugin directory without a process (installed disabled): a config and a small rootfs. */
export async function writeTinyPluginDir(dir: string, config: Record<string, unknown>, files: Record<string, string | Buffer> = {}): Promise<string> {
  await mkdir(join(dir, 'rootfs'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, 'rootfs', name, '..'), { recursive: true });
    await writeFile(join(dir, 'rootfs', name), content);
  }
  return dir;
}

/** Incompressible bytes: a layer that takes a while to transfer, and gzips quickly. */
export function randomPayload(bytes: number): Buffer {
  return randomBytes(bytes);
}


export interface RegistryManifest {
  mediaType: string;
  schemaVersion: number;
  config: { mediaType: string; digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

/** The manifest as the registry serves it for `Accept: <docker schema2>` (TestPluginBackCompatMediaTypes). */
export async function fetchManifest(host: string, repo: string, tag: string, auth?: { username: string; password: string }): Promise<{ digest: string; manifest: RegistryManifest }> {
  const headers: Record<string, string> = { Accept: mediaTypes.MEDIA_TYPE_DOCKER_MANIFEST };
  if (auth !== undefined) headers['Authorization'] = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { headers });
  if (res.status !== 200) throw new Error(`GET manifest ${repo}:${tag}: ${res.status} ${await res.text()}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  return { digest: sha256Digest(bytes), manifest: JSON.parse(bytes.toString('utf8')) as RegistryManifest };
}

export async function fetchBlob(host: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`GET blob ${digest}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** A second registry serving a copy of `source`'s content (to be stopped without disturbing `source`). */
export async function cloneRegistry(source: RunningRegistry): Promise<RunningRegistry> {
  const clone = await startRegistry();
  await cp(join(source.root, 'data'), join(clone.root, 'data'), { recursive: true });
  return clone;
}

/**
 * A TCP proxy in front of a registry that can hold the bytes flowing back to the client once
 * `pauseAfter` of them went through (all connections together), and then cut everything: the
 * registry's endpoint, as berthd sees it, stops in the middle of a blob.
 */
export class StallingProxy {
  readonly host: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #pauseAfter: number;
  #forwarded = 0;
  #paused = false;
  #reached: () => void = () => {};
  /** Resolves once `pauseAfter` bytes went to the client and forwarding is held. */
  readonly reached: Promise<void>;

  private constructor(server: Server, port: number, pauseAfter: number) {
    this.#server = server;
    this.host = `127.0.0.1:${port}`;
    this.#pauseAfter = pauseAfter;
    this.reached = new Promise((resolve) => (this.#reached = resolve));
  }

  static async start(target: string, options: { pauseAfter: number }): Promise<StallingProxy> {
    const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    let proxy!: StallingProxy;
    const server = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      proxy.#sockets.add(client);
      proxy.#sockets.add(upstream);
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => {
        if (proxy.#paused) {
          upstream.pause();
          upstream.unshift(chunk);
          return;
        }
        client.write(chunk);
        proxy.#forwarded += chunk.length;
        if (proxy.#forwarded >= proxy.#pauseAfter) {
          proxy.#paused = true;
          proxy.#reached();
        }
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      // The client hanging up (FIN) ends both sides at once, whatever is still buffered for it.
      client.on('end', close);
      client.on('close', close);
      upstream.on('close', close);
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('proxy has no port');
    proxy = new StallingProxy(server, address.port, options.pauseAfter);
    return proxy;
  }

  /** Cuts every connection and stops listening: the registry is gone. */
  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** What a pull may leave under `<data-root>/plugins`: plugin dirs, tmp entries, ingests, blobs. */
export async function pluginStorage(dataRoot: string): Promise<{ plugins: string[]; tmp: string[]; ingest: string[]; blobs: string[] }> {
  const root = join(dataRoot, 'plugins');
  const list = (dir: string): Promise<string[]> => readdir(dir).catch(() => []);
  return {
    plugins: (await list(root)).filter((e) => e !== 'tmp' && e !== 'storage').sort(),
    tmp: await list(join(root, 'tmp')),
    ingest: await list(join(root, 'storage', 'ingest')),
    blobs: (await list(join(root, 'storage', 'blobs', 'sha256'))).sort(),
  };
}
