import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { parseNormalizedNamed, type JsonMessage } from '@berth/plugin-store';
import {
  ContentStore,
  decodeRegistryAuth,
  encodeRegistryAuth,
  fetchPlugin,
  fetchPluginConfig,
  loginRegistry,
  mediaTypes,
  pushPlugin,
  RegistryClient,
} from '../src/index.js';
import { makeRootfs, sampleConfig, snapshot } from './fixtures.js';
import { htpasswdUnavailable, pushContainerImage, registryUnavailable, startRegistry, type RunningRegistry } from '../src/testing.js';
import { opensslUnavailable, startTokenServer, type TokenServer } from './token-server.js';

const missing = registryUnavailable() ?? htpasswdUnavailable();
const skip = missing !== undefined && !process.env['CI'];
if (skip) process.stdout.write(`skipping the plugin registry tests against a real registry: ${missing}\n`);

/** Every status line of a progress stream, `id: status` like the CLI prints them. */
const lines = (messages: JsonMessage[]): string[] =>
  messages.filter((m) => m.status !== undefined).map((m) => (m.id === undefined ? m.status ?? '' : `${m.id}: ${m.status ?? ''}`));

async function tmp(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

/** No partial state: nothing in tmp, nothing in ingest, every blob matching its name. */
async function expectClean(store: ContentStore, tmpDir: string): Promise<void> {
  expect(await readdir(tmpDir).catch(() => [])).toEqual([]);
  expect(await readdir(path.join(store.root, 'ingest')).catch(() => [])).toEqual([]);
  for (const digest of await store.list()) {
    const bytes = await readFile(store.blobPath(digest));
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(digest);
  }
}

describe.skipIf(skip)('plugins to and from a real registry (docker-registry 2.8)', () => {
  let registry: RunningRegistry;
  let work: string;
  let rootfs: string;

  beforeAll(async () => {
    registry = await startRegistry();
    work = await tmp('berth-plugin-registry-');
    rootfs = path.join(work, 'rootfs');
    await makeRootfs(rootfs);
  });

  afterAll(async () => {
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pushes a plugin built from a rootfs and installs it back identical', async () => {
    const remote = `${registry.host}/berth/sample:1.0`;
    const pushStore = new ContentStore({ root: path.join(work, 'push-storage') });
    const pushed: JsonMessage[] = [];
    const result = await pushPlugin({ store: pushStore, remote, config: sampleConfig(), rootfsDir: rootfs, onProgress: (m) => pushed.push(m) });
    expect(result.tag).toBe('1.0');
    expect(result.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(pushed.at(-1)).toEqual({ aux: { Tag: '1.0', Digest: result.digest, Size: result.size } });
    const pushLines = lines(pushed);
    expect(pushLines[0]).toBe(`The push refers to repository [${registry.host}/berth/sample]`);
    expect(pushLines).toContain(`${result.image.layerDigests[0]?.slice(7, 19)}: Pushed`);
    expect(pushLines.at(-1)).toBe(`1.0: digest: ${result.digest} size: ${result.size}`);

    // The same tree gives the same layer: a second push finds every blob there.
    const again: JsonMessage[] = [];
    const second = await pushPlugin({ store: pushStore, remote, config: sampleConfig(), rootfsDir: rootfs, onProgress: (m) => again.push(m) });
    expect(second.digest).toBe(result.digest);
    expect(lines(again).filter((l) => l.endsWith('Layer already exists'))).toHaveLength(2);

    // TestPluginBackCompatMediaTypes: a schema2 manifest, one gzip layer.
    const client = new RegistryClient({ ref: parseNormalizedNamed(remote) });
    const manifest = await client.getManifest('1.0');
    expect(manifest.mediaType).toBe(mediaTypes.MEDIA_TYPE_DOCKER_MANIFEST);
    expect(manifest.digest).toBe(result.digest);
    const doc = JSON.parse(manifest.bytes.toString()) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string }[] };
    expect(doc.mediaType).toBe(mediaTypes.MEDIA_TYPE_DOCKER_MANIFEST);
    expect(doc.config.mediaType).toBe(mediaTypes.MEDIA_TYPE_PLUGIN_CONFIG);
    expect(doc.layers.map((l) => l.mediaType)).toEqual([mediaTypes.MEDIA_TYPE_DOCKER_LAYER_GZIP]);

    const store = new ContentStore({ root: path.join(work, 'storage') });
    const tmpDir = path.join(work, 'tmp');
    const progress: JsonMessage[] = [];
    const fetched = await fetchPlugin({ store, tmpDir, remote, onProgress: (m) => progress.push(m) });
    try {
      expect(fetched.manifestDigest).toBe(result.digest);
      expect(fetched.configDigest).toBe(result.image.configDigest);
      expect(fetched.layerDigests).toEqual(result.image.layerDigests);
      expect(fetched.reference).toBe(remote);
      expect(fetched.config.Description).toBe('sample volume plugin');
      expect(fetched.config.Entrypoint).toEqual(['/bin/sample', '--serve']);
      expect(fetched.config.rootfs).toEqual({ type: 'layers', diff_ids: result.image.layerDigests });
      expect(await snapshot(fetched.rootfsDir)).toEqual(await snapshot(rootfs));
      expect(fetched.privileges.map((p) => [p.Name, p.Value])).toEqual([
        ['network', ['host']],
        ['mount', ['/var/lib/sample']],
        ['device', ['/dev/fuse']],
        ['capabilities', ['CAP_SYS_ADMIN']],
      ]);
      for (const digest of [fetched.manifestDigest, fetched.configDigest, ...fetched.layerDigests]) {
        expect(await store.has(digest)).toBe(true);
      }
      const layer = (fetched.layerDigests[0] ?? '').slice(7, 19);
      const pullLines = lines(progress);
      expect(pullLines[0]).toBe('1.0: Pulling from 127.0.0.1:' + registry.host.split(':')[1] + '/berth/sample');
      expect(pullLines).toEqual(
        expect.arrayContaining([`${layer}: Pulling fs layer`, `${layer}: Downloading`, `${layer}: Download complete`, `${layer}: Extracting`, `${layer}: Pull complete`]),
      );
      expect(pullLines.slice(-2)).toEqual([`Digest: ${result.digest}`, `Status: Downloaded newer image for ${remote}`]);
      const downloading = progress.find((m) => m.status === 'Downloading');
      expect(downloading?.progressDetail?.total).toBeGreaterThan(0);
    } finally {
      await rm(fetched.rootfsDir, { recursive: true, force: true });
    }

    // By digest, into the same store: the layer is already there.
    const byDigest: JsonMessage[] = [];
    const again2 = await fetchPlugin({ store, tmpDir, remote: `${registry.host}/berth/sample@${result.digest}`, onProgress: (m) => byDigest.push(m) });
    await rm(again2.rootfsDir, { recursive: true, force: true });
    expect(lines(byDigest)).toContain(`${(result.image.layerDigests[0] ?? '').slice(7, 19)}: Already exists`);
    await expectClean(store, tmpDir);

    // The privileges call reads manifest and config only.
    const privileges = await fetchPluginConfig({ remote });
    expect(privileges.privileges).toEqual(fetched.privileges);
  });

  it('pushes a pulled plugin again by its manifest, keeping the digest', async () => {
    const remote = `${registry.host}/berth/sample:1.0`;
    const store = new ContentStore({ root: path.join(work, 'repush-storage') });
    const fetched = await fetchPlugin({ store, tmpDir: path.join(work, 'tmp'), remote });
    await rm(fetched.rootfsDir, { recursive: true, force: true });
    const pushed = await pushPlugin({ store, remote: `${registry.host}/other/copy:v2`, manifestDigest: fetched.manifestDigest });
    expect(pushed.digest).toBe(fetched.manifestDigest);
  });

  it('refuses a normal image with moby\'s text', async () => {
    const remote = `${registry.host}/berth/not-a-plugin:latest`;
    await pushContainerImage(registry.host, 'berth/not-a-plugin');

    const store = new ContentStore({ root: path.join(work, 'image-storage') });
    const tmpDir = path.join(work, 'image-tmp');
    const err = await fetchPlugin({ store, tmpDir, remote }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('Encountered remote "application/vnd.docker.container.image.v1+json"(image) when fetching');
    expect(kindOf(err)).toBe('invalid-parameter');
    await expect(fetchPluginConfig({ remote })).rejects.toThrow('(image) when fetching');
    await expectClean(store, tmpDir);
    expect(await store.list()).toEqual([]);
  });

  it('answers not-found for an unknown reference', async () => {
    const store = new ContentStore({ root: path.join(work, 'unknown-storage') });
    const tmpDir = path.join(work, 'unknown-tmp');
    for (const remote of [`${registry.host}/berth/sample:nope`, `${registry.host}/berth/nothing-here`]) {
      const err = await fetchPlugin({ store, tmpDir, remote }).catch((e: unknown) => e);
      expect(kindOf(err)).toBe('not-found');
      expect((err as Error).message).toMatch(/^error resolving plugin reference: (manifest unknown|name unknown)/);
    }
    await expectClean(store, tmpDir);
  });

  it('fails cleanly when the registry is not there', async () => {
    const err = await fetchPluginConfig({ remote: '127.0.0.1:1/berth/x:1' }).catch((e: unknown) => e);
    expect(kindOf(err)).toBe('unavailable');
    expect((err as Error).message).toContain('ECONNREFUSED');
  });
});

describe.skipIf(skip)('a registry with htpasswd auth', () => {
  const user = { username: 'testuser', password: 'testpassword' };
  let registry: RunningRegistry;
  let work: string;

  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: user });
    work = await tmp('berth-plugin-registry-auth-');
    await makeRootfs(path.join(work, 'rootfs'));
  });

  afterAll(async () => {
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('pushes and installs with the credentials of X-Registry-Auth, refuses bad ones', async () => {
    const remote = `${registry.host}/private/sample:latest`;
    const header = encodeRegistryAuth({ ...user, serverAddress: registry.host });
    const auth = decodeRegistryAuth(header);
    expect(auth).toEqual({ ...user, serverAddress: registry.host });
    const store = new ContentStore({ root: path.join(work, 'storage') });
    const tmpDir = path.join(work, 'tmp');

    const denied = await pushPlugin({ store, remote, config: sampleConfig(), rootfsDir: path.join(work, 'rootfs') }).catch((e: unknown) => e);
    expect(kindOf(denied)).toBe('unauthorized');
    expect((denied as Error).message).toBe('unauthorized: authentication required');

    const pushed = await pushPlugin({ store, remote, config: sampleConfig(), rootfsDir: path.join(work, 'rootfs'), auth });

    for (const bad of [undefined, { username: 'testuser', password: 'wrong' }]) {
      const err = await fetchPlugin({ store: new ContentStore({ root: path.join(work, 'bad') }), tmpDir, remote, auth: bad }).catch((e: unknown) => e);
      expect(kindOf(err)).toBe('unauthorized');
      expect((err as Error).message).toBe('error resolving plugin reference: unauthorized: authentication required');
    }
    const fetched = await fetchPlugin({ store: new ContentStore({ root: path.join(work, 'good') }), tmpDir, remote, auth });
    expect(fetched.manifestDigest).toBe(pushed.digest);

    // `docker login` through the daemon (POST /auth).
    expect(await loginRegistry({ serverAddress: registry.host, auth })).toEqual({ status: 'Login Succeeded' });
    const refused = await loginRegistry({ auth: { ...auth, password: 'nope' } }).catch((e: unknown) => e);
    expect(kindOf(refused)).toBe('unauthorized');
    expect((refused as Error).message).toBe(`login attempt to http://${registry.host}/v2/ failed with status: 401 Unauthorized`);
    await rm(fetched.rootfsDir, { recursive: true, force: true });
    await expectClean(store, tmpDir);
  });
});

describe.skipIf(skip)('a registry that stops in the middle of a pull', () => {
  let registry: RunningRegistry;
  let work: string;

  beforeAll(async () => {
    registry = await startRegistry();
    work = await tmp('berth-plugin-registry-kill-');
  });

  afterAll(async () => {
    await registry?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('leaves no rootfs, no partial blob and no blob that does not match its digest', async () => {
    const rootfs = path.join(work, 'rootfs');
    // Random bytes do not compress: the layer stays big enough to be cut in the middle.
    await makeRootfs(rootfs, { 'blob/big.bin': randomBytes(24 << 20) });
    const remote = `${registry.host}/berth/big:latest`;
    const pushed = await pushPlugin({
      store: new ContentStore({ root: path.join(work, 'push-storage') }),
      remote,
      config: sampleConfig(),
      rootfsDir: rootfs,
    });
    const layer = pushed.image.layerDigests[0] ?? '';

    const store = new ContentStore({ root: path.join(work, 'storage') });
    const tmpDir = path.join(work, 'tmp');
    let killedAt = -1;
    const err = await fetchPlugin({
      store,
      tmpDir,
      remote,
      onProgress: (m) => {
        if (m.status === 'Downloading' && killedAt < 0) {
          killedAt = m.progressDetail?.current ?? 0;
          registry.kill();
        }
      },
    }).catch((e: unknown) => e);
    expect(killedAt).toBeGreaterThanOrEqual(0);
    expect(err).toBeInstanceOf(Error);
    expect(kindOf(err)).toBe('unavailable');
    expect((err as Error).message).toContain(`error fetching blob ${layer}`);
    expect(await store.has(layer)).toBe(false);
    await expectClean(store, tmpDir);
  });
});

const noOpenssl = opensslUnavailable();
describe.skipIf(skip || (noOpenssl !== undefined && !process.env['CI']))('a registry with token auth', () => {
  const user = { username: 'tokenuser', password: 'tokenpassword' };
  let tokens: TokenServer;
  let registry: RunningRegistry;
  let work: string;

  beforeAll(async () => {
    tokens = await startTokenServer(user);
    registry = await startRegistry({ token: tokens.auth });
    work = await tmp('berth-plugin-registry-token-');
    await makeRootfs(path.join(work, 'rootfs'));
  });

  afterAll(async () => {
    await registry?.stop();
    await tokens?.close();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('gets tokens for the plugin resource class, which the registry accepts', async () => {
    const remote = `${registry.host}/tokens/sample:latest`;
    const store = new ContentStore({ root: path.join(work, 'storage') });
    const pushed = await pushPlugin({ store, remote, config: sampleConfig(), rootfsDir: path.join(work, 'rootfs'), auth: user });
    expect(tokens.requests[0]).toContain('repository(plugin):tokens/sample:pull,push');

    const fetched = await fetchPlugin({ store: new ContentStore({ root: path.join(work, 'pull') }), tmpDir: path.join(work, 'tmp'), remote, auth: user });
    expect(fetched.manifestDigest).toBe(pushed.digest);
    expect(tokens.requests.at(-1)).toContain('repository(plugin):tokens/sample:pull');
    await rm(fetched.rootfsDir, { recursive: true, force: true });

    const err = await fetchPluginConfig({ remote, auth: { username: user.username, password: 'wrong' } }).catch((e: unknown) => e);
    expect(kindOf(err)).toBe('unauthorized');
    expect(await loginRegistry({ serverAddress: `http://${registry.host}/`, auth: user })).toEqual({ status: 'Login Succeeded' });
    await expect(loginRegistry({ serverAddress: registry.host, auth: { ...user, password: 'wrong' } })).rejects.toThrow();

    // What a client without the class gets: a token the registry refuses.
    const basic = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
    const tokenRes = await fetch(`${tokens.auth.realm}?service=${tokens.auth.service}&scope=repository:tokens/sample:pull`, { headers: { authorization: basic } });
    const { token } = (await tokenRes.json()) as { token: string };
    const denied = await fetch(`http://${registry.host}/v2/tokens/sample/manifests/latest`, { headers: { authorization: `Bearer ${token}` } });
    expect(denied.status).toBe(401);
    expect(await denied.text()).toContain('UNAUTHORIZED');
  });
});
