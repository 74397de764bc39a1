import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseNormalizedNamed } from '@berth/plugin-store';
import { sha256Digest } from './digest.js';
import * as mediaTypes from './media-types.js';
import { RegistryClient } from './registry-client.js';

// A real distribution registry (Debian's `docker-registry`, 2.8) on a loopback port, plain HTTP,
// filesystem storage in a temp directory; optionally with htpasswd (bcrypt) basic auth.

export const REGISTRY_BINARY = process.env['BERTH_REGISTRY_BINARY'] ?? '/usr/bin/docker-registry';

/** Why the registry tests cannot run here, or undefined when they can. */
export function registryUnavailable(): string | undefined {
  try {
    accessSync(REGISTRY_BINARY, constants.X_OK);
  } catch {
    return `${REGISTRY_BINARY} not found (Debian package docker-registry)`;
  }
  return undefined;
}

export function htpasswdUnavailable(): string | undefined {
  try {
    execFileSync('htpasswd', ['-h'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'htpasswd not found (Debian package apache2-utils)';
  }
  return undefined;
}

export interface RegistryUser {
  readonly username: string;
  readonly password: string;
}

export interface RunningRegistry {
  /** `127.0.0.1:<port>`: the domain part of references. */
  readonly host: string;
  readonly root: string;
  readonly process: ChildProcess;
  /** SIGKILL, no cleanup (the mid-transfer failure). */
  kill(): void;
  /** Stops the process and removes its storage. */
  stop(): Promise<void>;
}

/** Token auth (distribution's token spec): the realm, and the certificate that signs the tokens. */
export interface RegistryTokenAuth {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly certificatePem: string;
}

export async function startRegistry(options: { htpasswd?: RegistryUser; token?: RegistryTokenAuth } = {}): Promise<RunningRegistry> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: path.join(root, 'data') }, delete: { enabled: true } },
    http: { addr: host },
  };
  if (options.htpasswd !== undefined) {
    const line = execFileSync('htpasswd', ['-Bbn', options.htpasswd.username, options.htpasswd.password], { encoding: 'utf8' });
    await writeFile(path.join(root, 'htpasswd'), line.trim() + '\n');
    config['auth'] = { htpasswd: { realm: 'basic-realm', path: path.join(root, 'htpasswd') } };
  }
  if (options.token !== undefined) {
    await writeFile(path.join(root, 'token.crt'), options.token.certificatePem);
    const { realm, service, issuer } = options.token;
    config['auth'] = { token: { realm, service, issuer, rootcertbundle: path.join(root, 'token.crt') } };
  }
  // YAML is a superset of JSON.
  await writeFile(path.join(root, 'config.yml'), JSON.stringify(config));
  const child = spawn(REGISTRY_BINARY, ['serve', path.join(root, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`registry did not start: ${stderr}`);
    }
    await sleep(25);
  }
  return { host, root, process: child, kill: () => child.kill('SIGKILL'), stop };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Pushes an ordinary container image (config media type
 * `application/vnd.docker.container.image.v1+json`) with the registry client: what
 * `TestPluginInstallImage` pushes with `docker push`.
 */
export async function pushContainerImage(host: string, repo: string, tag = 'latest'): Promise<void> {
  const client = new RegistryClient({ ref: parseNormalizedNamed(`${host}/${repo}`), push: true });
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layerBytes = Buffer.from('not really a layer');
  const blobs = [configBytes, layerBytes].map((bytes) => ({ bytes, digest: sha256Digest(bytes), size: bytes.length }));
  for (const blob of blobs) await client.uploadBlob(blob, () => [blob.bytes]);
  const manifest = {
    schemaVersion: 2,
    mediaType: mediaTypes.MEDIA_TYPE_DOCKER_MANIFEST,
    config: { mediaType: mediaTypes.MEDIA_TYPE_DOCKER_IMAGE_CONFIG, digest: blobs[0]?.digest, size: blobs[0]?.size },
    layers: [{ mediaType: mediaTypes.MEDIA_TYPE_DOCKER_LAYER_GZIP, digest: blobs[1]?.digest, size: blobs[1]?.size }],
  };
  await client.putManifest(tag, mediaTypes.MEDIA_TYPE_DOCKER_MANIFEST, Buffer.from(JSON.stringify(manifest)));
}
