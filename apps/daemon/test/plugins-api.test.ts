import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tarArchive, type TarEntry } from './fixtures/tar.js';
import { Berthd, describeWithDocker, type ExecResult } from './harness.js';
import { pluginLeftovers, shortTempDir } from './plugin-helpers.js';

/**
 * The plugin API without running any plugin: ports of moby's API-only plugin tests
 * (`TestPluginCreate`, `TestPluginSet`, `TestPluginListDefaultFormat`, `TestPluginInvalidJSON`,
 * `TestPluginListFilterEnabled`, `TestPluginListFilterCapability`), the refusal of unsafe build
 * contexts, and a berthd that has no containerd at all. These need neither root nor containerd.
 */

const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });
const fails = (stderr: string, stdout = ''): ExecResult => ({ code: 1, stdout, stderr: `${stderr}\n` });
const daemonError = (message: string, stdout = ''): ExecResult => fails(`Error response from daemon: ${message}`, stdout);

const CONTAINERD_MISSING =
  'containerd is not available: install containerd and runc (Debian: apt-get install containerd runc) ' +
  'or start berthd with --containerd <socket>';

/** A build context as `docker plugin create` wants it: `config.json` and a `rootfs/` (empty here). */
async function pluginDir(dir: string, config: object): Promise<string> {
  await mkdir(join(dir, 'rootfs'), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

const VOLUME_CONFIG = {
  Description: 'a volume plugin',
  Entrypoint: ['/plugin'],
  Interface: { Socket: 'vol.sock', Types: ['docker.volumedriver/1.0'] },
};

describeWithDocker('plugins through the Engine API, without running them', () => {
  let dir: string;
  let daemon: Berthd;

  beforeAll(async () => {
    dir = await shortTempDir();
    // No containerd reachable: PATH has none, and no --containerd. Everything here must work anyway.
    daemon = await Berthd.start({ dir: join(dir, 'd'), env: { ...process.env, PATH: '/nonexistent' } });
  });

  afterAll(async () => {
    await daemon?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const docker = (...args: string[]): Promise<ExecResult> => daemon.docker(args);
  const inspect = async (format: string, name: string): Promise<string> => (await docker('plugin', 'inspect', '-f', format, name)).stdout.trim();
  const remove = async (...names: string[]): Promise<void> => {
    for (const name of names) expect((await docker('plugin', 'rm', '-f', name)).code).toBe(0);
  };

  it('creates a plugin from a directory, once (TestPluginCreate)', async () => {
    const context = await pluginDir(join(dir, 'foo'), { description: 'foo plugin' });
    expect(await docker('plugin', 'create', 'foo/bar-driver', context)).toEqual(ok('foo/bar-driver\n'));
    expect((await docker('plugin', 'ls')).stdout).toContain('foo/bar-driver');
    expect(await docker('plugin', 'create', 'foo/bar-driver', context)).toEqual(daemonError('plugin foo/bar-driver:latest already exists'));
    const ls = await docker('plugin', 'ls');
    expect(ls.stdout).toContain('foo/bar-driver');
    expect(ls.stdout.trim().split('\n')).toHaveLength(2);

    // The Engine API object, moby-shaped, by a name with `/` and `:`; a minimal config has nil arrays.
    const raw = await daemon.http({ path: '/plugins/foo/bar-driver:latest/json' });
    expect(raw.status).toBe(200);
    const plugin = raw.json as Record<string, unknown> & { Config: Record<string, unknown>; Settings: Record<string, unknown> };
    expect(plugin).toMatchObject({ Name: 'foo/bar-driver:latest', Enabled: false, Running: false, PluginReference: 'foo/bar-driver:latest' });
    expect(plugin.Id).toMatch(/^[0-9a-f]{64}$/);
    expect(plugin.Config).toMatchObject({ Description: 'foo plugin', Entrypoint: null, Interface: { Socket: '', Types: null } });
    expect(plugin.Config.rootfs).toEqual({ type: 'layers', diff_ids: [expect.stringMatching(/^sha256:[0-9a-f]{64}$/)] });
    expect(plugin.Settings).toEqual({ Mounts: [], Env: [], Args: [], Devices: [] });
    expect(await readdir(join(daemon.dataRoot, 'plugins'))).toEqual(expect.arrayContaining([plugin.Id, 'tmp']));
    await remove('foo/bar-driver');
  });

  it('sets env, mount sources and device paths while disabled (TestPluginSet)', async () => {
    const context = await pluginDir(join(dir, 'set'), {
      Description: 'test plugin',
      Env: [{ Name: 'DEBUG', Value: '0', Settable: ['value'] }],
      Mounts: [
        { Name: 'pmount1', Settable: ['source'], Type: 'none', Source: 'foo' },
        { Name: 'pmount2', Settable: ['source'], Type: 'none' }, // no Source: cannot be set
      ],
      Linux: {
        Devices: [
          { Name: 'pdev1', Path: '/dev/bar', Settable: ['path'] },
          { Name: 'pdev2', Settable: ['path'] }, // no Path: cannot be set
        ],
      },
    });
    expect(await docker('plugin', 'create', 'test', context)).toEqual(ok('test\n'));
    expect(await inspect('{{.Settings.Env}}', 'test')).toBe('[DEBUG=0]');
    expect(await docker('plugin', 'set', 'test', 'DEBUG=1')).toEqual(ok(''));
    expect(await inspect('{{.Settings.Env}}', 'test')).toBe('[DEBUG=1]');

    const firstMount = '{{with $mount := index .Settings.Mounts 0}}{{$mount.Source}}{{end}}';
    expect(await inspect(firstMount, 'test')).toBe('foo');
    expect(await docker('plugin', 'set', 'test', 'pmount1.source=bar')).toEqual(ok(''));
    expect(await inspect(firstMount, 'test')).toBe('bar');
    expect(await docker('plugin', 'set', 'test', 'pmount2.source=bar2')).toEqual(daemonError('plugin config has no mount source'));
    expect(await docker('plugin', 'set', 'test', 'pdev2.path=/dev/bar2')).toEqual(daemonError('plugin config has no device path'));
    expect(await docker('plugin', 'set', 'test', 'NOPE=1')).toEqual(daemonError('setting "NOPE" not found in the plugin configuration'));
    expect(await docker('plugin', 'set', 'test', '=1')).toEqual(daemonError('invalid format, must be <name>[.<field>][=<value>]'));

    // Through the API: a JSON array of strings; `null` and an empty body set nothing (204).
    for (const body of ['null', '[]', '']) {
      const res = await daemon.http({ method: 'POST', path: '/plugins/test/set', body, headers: { 'Content-Type': 'application/json' } });
      expect([res.status, res.body]).toEqual([204, '']);
    }
    const wrongType = await daemon.http({ method: 'POST', path: '/plugins/test/set', body: { DEBUG: '1' } });
    expect([wrongType.status, wrongType.json]).toEqual([400, { message: 'invalid JSON: json: cannot unmarshal object into Go value of type []string' }]);
    await remove('test');
  });

  it("prints raw `plugin ls` with the CLI's pluginsFormat (TestPluginListDefaultFormat)", async () => {
    const config = join(dir, 'cli-config');
    await mkdir(config, { recursive: true });
    await writeFile(join(config, 'config.json'), '{"pluginsFormat": "raw"}');
    await docker('plugin', 'create', 'test:latest', await pluginDir(join(dir, 'fmt'), { Description: 'test plugin' }));
    const id = await inspect('{{.ID}}', 'test:latest');
    const out = await daemon.docker(['plugin', 'ls', '--no-trunc'], { configDir: config });
    expect(out.stdout.trim()).toContain(`plugin_id: ${id}\nname: test:latest\ndescription: test plugin\nenabled: false`);
    await remove('test:latest');
  });

  it('answers bad JSON bodies with 400 and moby texts, an empty body with less than 500 (TestPluginInvalidJSON)', async () => {
    for (const path of ['/plugins/foobar/set', '/plugins/foobar/upgrade', '/plugins/pull']) {
      const post = (body: string, contentType: string) =>
        daemon.http({ method: 'POST', path, body, headers: { 'Content-Type': contentType } });
      let res = await post('[]', 'text/plain');
      expect([path, res.status, res.json]).toEqual([path, 400, { message: "unsupported Content-Type header (text/plain): must be 'application/json'" }]);
      res = await post('{invalid json', 'application/json');
      expect([path, res.status, res.json]).toEqual([path, 400, { message: "invalid JSON: invalid character 'i' looking for beginning of object key string" }]);
      res = await post('[] trailing content', 'application/json');
      expect([path, res.status, res.json]).toEqual([path, 400, { message: 'unexpected content after JSON' }]);
      res = await post('', 'application/json');
      expect(res.status, `${path}: ${res.body}`).toBeLessThan(500);
    }
  });

  it('filters the list by enabled and capability, as moby parses them (TestPluginListFilterEnabled, TestPluginListFilterCapability)', async () => {
    await docker('plugin', 'create', 'vol', await pluginDir(join(dir, 'vol'), VOLUME_CONFIG));
    expect((await docker('plugin', 'ls', '--filter', 'enabled=true')).stdout).not.toContain('vol');
    const disabled = await docker('plugin', 'ls', '--filter', 'enabled=false');
    expect(disabled.stdout).toContain('vol:latest');
    expect(disabled.stdout).toContain('false');
    expect((await docker('plugin', 'ls')).stdout).toContain('vol:latest');

    expect((await docker('plugin', 'ls', '--filter', 'capability=volumedriver')).stdout).toContain('vol:latest');
    expect((await docker('plugin', 'ls', '--filter', 'capability=authz')).stdout).not.toContain('vol:latest');
    // A regular expression that must match every capability of the plugin.
    expect((await docker('plugin', 'ls', '--filter', 'capability=volume.*', '-q')).stdout.trim()).toHaveLength(12);

    const filters = (f: object) => daemon.http({ path: `/plugins?filters=${encodeURIComponent(JSON.stringify(f))}` });
    expect((await filters({ enable: { true: true } })).json).toEqual({ message: "invalid filter 'enable'" });
    expect((await filters({ enabled: { maybe: true } })).json).toEqual({ message: "invalid filter 'enabled=[maybe]'" });
    expect((await filters({ enabled: ['0'] })).json).toEqual([expect.objectContaining({ Name: 'vol:latest' })]);
    expect((await filters({ capability: { authz: true } })).json).toEqual([]);
    expect((await daemon.http({ path: '/plugins?filters=nope' })).status).toBe(400);
    await remove('vol');
    expect((await daemon.http({ path: '/plugins' })).json).toEqual([]);
  });

  it('resolves names, tags, IDs and ID prefixes, with moby texts for unknown ones', async () => {
    await docker('plugin', 'create', 'sample/vol:v1', await pluginDir(join(dir, 'named'), VOLUME_CONFIG));
    const id = await inspect('{{.Id}}', 'sample/vol:v1');
    for (const ref of [id, id.slice(0, 5), 'docker.io/sample/vol:v1']) expect(await inspect('{{.Name}}', ref)).toBe('sample/vol:v1');
    expect(await docker('plugin', 'inspect', 'sample/vol')).toEqual(daemonError('plugin "sample/vol" not found', '[]\n'));
    expect(await docker('plugin', 'enable', 'nosuch')).toEqual(daemonError('plugin "nosuch" not found'));
    expect(await docker('plugin', 'disable', 'sample/vol:v1')).toEqual(
      daemonError('plugin is already disabled: plugin sample/vol:v1 found but disabled'),
    );
    expect((await daemon.http({ path: '/plugins/nosuch/json' })).json).toEqual({ message: 'plugin "nosuch" not found' });
    await remove(id.slice(0, 5));
    expect(await docker('plugin', 'inspect', id)).toEqual(daemonError(`plugin "${id}" not found`, '[]\n'));
  });

  it("needs enable's timeout, and says how to get containerd when a plugin cannot be started", async () => {
    await docker('plugin', 'create', 'vol', await pluginDir(join(dir, 'vol2'), VOLUME_CONFIG));
    const enable = (query: string) => daemon.http({ method: 'POST', path: `/plugins/vol/enable${query}` });
    expect((await enable('')).json).toEqual({ message: 'strconv.Atoi: parsing "": invalid syntax' });
    expect((await enable('?timeout=abc')).json).toEqual({ message: 'strconv.Atoi: parsing "abc": invalid syntax' });
    expect((await enable('?timeout=1.5')).status).toBe(400);
    expect((await enable('?timeout=99999999999999999999')).json).toEqual({
      message: 'strconv.Atoi: parsing "99999999999999999999": value out of range',
    });
    expect((await daemon.http({ method: 'POST', path: '/plugins/nosuch/enable?timeout=1' })).status).toBe(404);

    const refused = await enable('?timeout=5');
    expect([refused.status, refused.json]).toEqual([503, { message: CONTAINERD_MISSING }]);
    expect(await docker('plugin', 'enable', 'vol')).toEqual(daemonError(CONTAINERD_MISSING));
    expect(await inspect('{{.Enabled}}', 'vol')).toBe('false');
    // Everything that needs no plugin process still works.
    expect(await docker('volume', 'create', 'still-fine')).toEqual(ok('still-fine\n'));
    expect(await docker('volume', 'create', '-d', 'vol', 'pv')).toEqual(daemonError('create pv: error looking up volume plugin vol: plugin vol found but disabled'));
    expect(existsSync(join(daemon.execRoot, 'containerd', 'containerd.pid'))).toBe(false);
    await remove('vol');
  });

  it('asks the registry for privileges and checks pull, push and upgrade requests as moby does', async () => {
    await docker(
      'plugin',
      'create',
      'priv',
      await pluginDir(join(dir, 'priv'), { ...VOLUME_CONFIG, Network: { Type: 'host' }, Linux: { Capabilities: ['CAP_SYS_ADMIN'] } }),
    );
    // Privileges come from the registry, never from an installed plugin of that name; a registry
    // that cannot be reached gives `[]` (moby's quirk), and the pull then says why.
    const unreachable = '127.0.0.1:1/berth/none:1';
    expect((await daemon.http({ path: '/plugins/privileges?remote=priv' })).body).toBe('[]\n');
    expect((await daemon.http({ path: `/plugins/privileges?remote=${unreachable}` })).body).toBe('[]\n');
    expect((await daemon.http({ path: '/plugins/privileges?remote=Bad' })).status).toBe(400);
    const install = await docker('plugin', 'install', '--grant-all-permissions', unreachable);
    expect(install.code).toBe(1);
    expect(install.stderr).toMatch(/^Error response from daemon: error resolving plugin reference: GET http:\/\/127\.0\.0\.1:1\/v2\/: connect ECONNREFUSED/);

    const post = (path: string) => daemon.http({ method: 'POST', path });
    expect((await post(`/plugins/pull?remote=${unreachable}&name=priv`)).json).toEqual({ message: 'plugin priv:latest already exists' });
    expect((await post(`/plugins/pull?remote=${unreachable}&name=x@sha256:` + 'a'.repeat(64))).json).toEqual({ message: 'cannot use digest in plugin tag' });
    expect((await post('/plugins/nosuch/push')).status).toBe(404);
    // The plugin's name says where it goes: a registry that is not there.
    await docker('plugin', 'create', '127.0.0.1:1/berth/pushme', await pluginDir(join(dir, 'pushme'), VOLUME_CONFIG));
    const push = await docker('plugin', 'push', '127.0.0.1:1/berth/pushme');
    expect(push.code).toBe(1);
    expect(push.stdout).toMatch(/^The push refers to repository \[127\.0\.0\.1:1\/berth\/pushme\]\n/);
    expect(push.stderr).toMatch(/^error pushing plugin: GET http:\/\/127\.0\.0\.1:1\/v2\/: connect ECONNREFUSED/);
    expect((await post(`/plugins/nosuch/upgrade?remote=${unreachable}`)).status).toBe(404);
    expect((await post('/v1.25/plugins/priv/upgrade?remote=vieux/sshfs')).json).toEqual({
      message: 'POST /plugins/{name:.*}/upgrade requires minimum API version 1.26',
    });
    await remove('priv', '127.0.0.1:1/berth/pushme');
  });

  it('emits create and remove events with the ID as actor and the name as attribute', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    await docker('plugin', 'create', 'evt', await pluginDir(join(dir, 'evt'), VOLUME_CONFIG));
    const id = await inspect('{{.Id}}', 'evt');
    await docker('plugin', 'rm', id.slice(0, 6));
    const until = (Date.now() / 1000 + 0.5).toFixed(3);
    const out = await docker('events', '--since', since, '--until', until, '--filter', 'type=plugin', '--format', '{{json .}}');
    const events = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } });
    expect(events.map((e) => [e.Type, e.Action, e.Actor.ID, e.Actor.Attributes])).toEqual([
      ['plugin', 'create', id, { name: 'evt:latest' }],
      ['plugin', 'remove', id, { name: id.slice(0, 6) }],
    ]);
  });

  // Acceptance 5: a build context that tries to write outside its rootfs, carries device nodes, or
  // lacks a usable config.json is refused with a 4xx, and nothing is left under <data-root>/plugins.
  const canary = `/tmp/berth-canary-${process.pid}`;
  const config = { name: 'config.json', content: JSON.stringify(VOLUME_CONFIG) };
  const rootfs: TarEntry = { name: 'rootfs/', type: 'directory' };
  const refusals: Array<[string, TarEntry[], number, RegExp | string]> = [
    ['a ../ entry climbing out of the rootfs', [config, rootfs, { name: `rootfs/../../../../../../../..${canary}`, content: 'x' }], 400, /\.\./],
    ['a ../ entry outside rootfs/', [config, rootfs, { name: `../../../../../../../..${canary}`, content: 'x' }], 400, /\.\./],
    ['an absolute name', [config, rootfs, { name: canary, content: 'x' }], 400, /absolute/],
    ['an absolute rootfs name', [config, { name: '/rootfs/etc/x', content: 'x' }], 400, /absolute/],
    ['a symlink pointing outside', [config, rootfs, { name: 'rootfs/out', type: 'symlink', linkname: '../../../../../../../../tmp' }], 400, /symlink|link/],
    ['a hard link to a host file', [config, rootfs, { name: 'rootfs/passwd', type: 'link', linkname: '/etc/passwd' }], 400, /link/],
    ['a hard link climbing out', [config, rootfs, { name: 'rootfs/passwd', type: 'link', linkname: 'rootfs/../../../../../../etc/passwd' }], 400, /link|\.\./],
    [
      'a write through a symlink',
      [config, rootfs, { name: 'rootfs/etc', type: 'symlink', linkname: '/tmp' }, { name: `rootfs/etc/berth-canary-${process.pid}`, content: 'x' }],
      400,
      /is a symbolic link/,
    ],
    ['a character device', [config, rootfs, { name: 'rootfs/dev/null', type: 'char' }], 400, /device/],
    ['a block device', [config, rootfs, { name: 'rootfs/sda', type: 'block' }], 400, /device/],
    ['a FIFO', [config, rootfs, { name: 'rootfs/fifo', type: 'fifo' }], 400, /FIFO|fifo/],
    ['no config.json', [rootfs, { name: 'rootfs/x', content: 'x' }], 400, 'config not found'],
    ['no rootfs', [config], 400, 'no rootfs found: EOF'],
    ['an invalid config.json', [{ name: 'config.json', content: '{invalid' }, rootfs], 400, /^failed to parse config: /],
    ['a config.json of the wrong shape', [{ name: 'config.json', content: '{"Entrypoint": "sh"}' }, rootfs], 400, /^failed to parse config: /],
  ];

  for (const [what, entries, status, message] of refusals) {
    it(`refuses a build context with ${what}, leaving nothing behind`, async () => {
      const res = await daemon.http({
        method: 'POST',
        path: '/plugins/create?name=evil',
        body: tarArchive(entries),
        headers: { 'Content-Type': 'application/x-tar' },
      });
      expect(res.status).toBe(status);
      expect((res.json as { message: string }).message).toMatch(message);
      expect(await pluginLeftovers(daemon.dataRoot)).toEqual({ plugins: [], tmp: [] });
      expect(existsSync(canary)).toBe(false);
      expect((await daemon.http({ path: '/plugins' })).json).toEqual([]);
    });
  }

  it('refuses garbage, truncated archives and bad names with 4xx, and still creates a good context afterwards', async () => {
    const create = (name: string, body: Buffer) =>
      daemon.http({ method: 'POST', path: `/plugins/create?name=${encodeURIComponent(name)}`, body, headers: { 'Content-Type': 'application/x-tar' } });
    const good = tarArchive([
      { name: 'config.json', content: JSON.stringify(VOLUME_CONFIG) },
      { name: 'rootfs/', type: 'directory' },
      { name: 'rootfs/bin/', type: 'directory' },
      { name: 'rootfs/bin/plugin', content: '#!/bin/sh\n', mode: 0o755 },
      { name: 'rootfs/bin/sh', type: 'symlink', linkname: '/bin/plugin' },
      { name: 'rootfs/bin/hard', type: 'link', linkname: 'rootfs/bin/plugin' },
    ]);
    const cases: Array<[string, Buffer, number]> = [
      ['evil', Buffer.from('this is not a tar archive, not even close'.repeat(40)), 400],
      ['evil', good.subarray(0, 700), 400],
      ['UPPER', good, 400],
      ['evil@sha256:' + 'a'.repeat(64), good, 400],
      ['', good, 400],
    ];
    for (const [name, body, status] of cases) {
      const res = await create(name, body);
      expect([name, res.status], res.body).toEqual([name, status]);
      expect(await pluginLeftovers(daemon.dataRoot)).toEqual({ plugins: [], tmp: [] });
    }
    expect((await create('good', good)).status).toBe(204);
    const [id] = (await pluginLeftovers(daemon.dataRoot)).plugins;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await readdir(join(daemon.dataRoot, 'plugins', id as string, 'rootfs', 'bin'))).sort()).toEqual(['hard', 'plugin', 'sh']);
    expect((await create('good', good)).json).toEqual({ message: 'plugin good:latest already exists' });
    await remove('good');
    expect(await pluginLeftovers(daemon.dataRoot)).toEqual({ plugins: [], tmp: [] });
  });
});
