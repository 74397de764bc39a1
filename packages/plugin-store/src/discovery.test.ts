import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakePlugin, tempDir } from '../test/fake-plugin.js';
import { findLegacyPlugin, scanLegacyPlugins } from './discovery.js';
import { defaultLegacyDirs, type LegacyDirs } from './index.js';

/** moby's test `Setup`: one directory serves as socket and spec directory. */
async function setup(): Promise<{ dir: string; dirs: LegacyDirs }> {
  const dir = await tempDir();
  return { dir, dirs: { socketDirs: [dir], specDirs: [dir] } };
}

async function write(file: string, content: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

describe('legacy discovery: spec files', () => {
  it('reads .spec files in both layouts (TestFileSpecPlugin)', async () => {
    const { dir, dirs } = await setup();
    const cases: Array<[string, string, string]> = [
      ['echo.spec', 'echo', 'unix://var/lib/docker/plugins/echo.sock'],
      ['echo/echo.spec', 'echo', 'unix://var/lib/docker/plugins/echo.sock'],
      ['foo.spec', 'foo', 'tcp://localhost:8080'],
      ['foo/foo.spec', 'foo', 'tcp://localhost:8080'],
    ];
    for (const [file, name, addr] of cases) {
      await write(path.join(dir, file), `  ${addr}\n`);
      const spec = await findLegacyPlugin(name, dirs);
      expect(spec).toEqual({ name, addr, tls: { insecureSkipVerify: true }, source: path.join(dir, `${name}.spec`) });
    }
    await write(path.join(dir, 'bar.spec'), 'localhost:8080');
    await expect(findLegacyPlugin('bar', dirs)).rejects.toThrow(/^Unknown protocol$/);
  });

  it('reads .json files with their TLS settings (TestFileJSONSpecPlugin)', async () => {
    const { dir, dirs } = await setup();
    await write(
      path.join(dir, 'example.json'),
      JSON.stringify({
        Name: 'plugin-example',
        Addr: 'https://example.com/docker/plugin',
        TLSConfig: {
          CAFile: '/usr/shared/docker/certs/example-ca.pem',
          CertFile: '/usr/shared/docker/certs/example-cert.pem',
          KeyFile: '/usr/shared/docker/certs/example-key.pem',
        },
      }),
    );
    expect(await findLegacyPlugin('example', dirs)).toEqual({
      name: 'example',
      addr: 'https://example.com/docker/plugin',
      tls: {
        caFile: '/usr/shared/docker/certs/example-ca.pem',
        certFile: '/usr/shared/docker/certs/example-cert.pem',
        keyFile: '/usr/shared/docker/certs/example-key.pem',
        insecureSkipVerify: false,
      },
      source: path.join(dir, 'example.json'),
    });
  });

  it('has no TLS settings without TLSConfig (TestFileJSONSpecPluginWithoutTLSConfig)', async () => {
    const { dir, dirs } = await setup();
    await write(path.join(dir, 'example.json'), '{"Name": "plugin-example", "Addr": "https://example.com/docker/plugin"}');
    expect(await findLegacyPlugin('example', dirs)).toMatchObject({ addr: 'https://example.com/docker/plugin', tls: undefined });
  });

  it('decodes .json case-insensitively, skips verification without a CA, and reports bad files', async () => {
    const { dir, dirs } = await setup();
    await write(path.join(dir, 'a.json'), '{"addr": "tcp://10.0.0.1:9000", "tlsconfig": {"certfile": "/c.pem"}}');
    expect(await findLegacyPlugin('a', dirs)).toMatchObject({
      addr: 'tcp://10.0.0.1:9000',
      tls: { caFile: '', certFile: '/c.pem', keyFile: '', insecureSkipVerify: true },
    });
    await write(path.join(dir, 'b.json'), '{"Addr": 42}');
    await expect(findLegacyPlugin('b', dirs)).rejects.toThrow(
      `${path.join(dir, 'b.json')}: json: cannot unmarshal number into Go struct field Plugin.Addr of type string`,
    );
    await write(path.join(dir, 'c.json'), '{"Addr": ');
    await expect(findLegacyPlugin('c', dirs)).rejects.toThrow(`${path.join(dir, 'c.json')}: invalid JSON: `);
  });

  it('prefers .spec over .json within a directory and earlier directories over later ones', async () => {
    const first = await tempDir();
    const second = await tempDir();
    const dirs = { socketDirs: [], specDirs: [first, second] };
    await write(path.join(first, 'p', 'p.json'), '{"Addr": "tcp://json:1"}');
    await write(path.join(first, 'p.spec'), 'tcp://spec:1');
    await write(path.join(second, 'p.spec'), 'tcp://second:1');
    expect((await findLegacyPlugin('p', dirs))?.addr).toBe('tcp://spec:1');
    await write(path.join(second, 'q.spec'), 'tcp://second:1');
    expect((await findLegacyPlugin('q', dirs))?.addr).toBe('tcp://second:1');
  });

  it('never looks outside its directories', async () => {
    const { dir, dirs } = await setup();
    await write(path.join(dir, 'inner', 'x.spec'), 'tcp://x:1');
    for (const name of ['../x', 'inner/x', '.', '..', '', 'a\0b']) expect(await findLegacyPlugin(name, dirs)).toBeUndefined();
  });
});

describe('legacy discovery: sockets', () => {
  it('finds <name>.sock and <name>/<name>.sock (TestLocalSocket)', async () => {
    for (const layout of ['echo.sock', 'echo/echo.sock']) {
      const { dir, dirs } = await setup();
      const socket = path.join(dir, layout);
      await mkdir(path.dirname(socket), { recursive: true });
      const plugin = await startFakePlugin(socket);
      const spec = await findLegacyPlugin('echo', dirs);
      expect(spec).toEqual({ name: 'echo', addr: `unix://${socket}`, tls: { insecureSkipVerify: true }, source: socket });
      expect(await findLegacyPlugin('echo', dirs)).toEqual(spec);
      await plugin.close();
    }
  });

  it('ignores a regular file named like a socket', async () => {
    const { dir, dirs } = await setup();
    await write(path.join(dir, 'fake.sock'), '');
    expect(await findLegacyPlugin('fake', dirs)).toBeUndefined();
  });
});

describe('legacy discovery: scan', () => {
  it('lists nothing in empty or missing directories, then what a spec names (TestScan)', async () => {
    const { dir, dirs } = await setup();
    expect(await scanLegacyPlugins(dirs)).toEqual([]);
    expect(await scanLegacyPlugins({ socketDirs: [path.join(dir, 'none')], specDirs: [path.join(dir, 'gone')] })).toEqual([]);
    await write(path.join(dir, 'echo.spec'), 'unix://var/lib/docker/plugins/echo.sock');
    expect(await findLegacyPlugin('echo', dirs)).toBeDefined();
    expect(await scanLegacyPlugins(dirs)).toEqual(['echo']);
  });

  it('ignores files in sub-directories named differently (TestScanNotPlugins)', async () => {
    const { dir, dirs } = await setup();
    const notPlugin = path.join(dir, 'not-a-plugin');
    await mkdir(notPlugin);
    await startFakePlugin(path.join(notPlugin, 'foo.sock'));
    await write(path.join(notPlugin, 'foo.spec'), '');
    expect(await scanLegacyPlugins(dirs)).toEqual([]);
    await write(path.join(notPlugin, 'not-a-plugin.spec'), '');
    expect(await scanLegacyPlugins(dirs)).toEqual(['not-a-plugin']);
  });

  it('lists sockets in both layouts once each, and ignores managed plugins exec directories', async () => {
    const sockets = await tempDir();
    const specs = await tempDir();
    await startFakePlugin(path.join(sockets, 'a.sock'));
    await mkdir(path.join(sockets, 'b'));
    await startFakePlugin(path.join(sockets, 'b', 'b.sock'));
    const id = 'f'.repeat(64);
    await mkdir(path.join(sockets, id));
    await startFakePlugin(path.join(sockets, id, 'plugin.sock'));
    await write(path.join(specs, 'a.spec'), 'tcp://a:1');
    await write(path.join(specs, 'c.json'), '{}');
    await write(path.join(specs, 'readme.txt'), '');
    expect(await scanLegacyPlugins({ socketDirs: [sockets], specDirs: [specs] })).toEqual(['a', 'b', 'c']);
  });
});

describe('legacy discovery: default directories', () => {
  it('uses moby directories, and per-user spec directories under rootlesskit', () => {
    expect(defaultLegacyDirs({})).toEqual({
      socketDirs: ['/run/docker/plugins'],
      specDirs: ['/etc/docker/plugins', '/usr/lib/docker/plugins'],
    });
    expect(defaultLegacyDirs({ ROOTLESSKIT_STATE_DIR: '/run/user/1000/rk', HOME: '/home/u' }).specDirs).toEqual([
      '/home/u/.config/docker/plugins',
      '/home/u/.local/lib/docker/plugins',
    ]);
    expect(
      defaultLegacyDirs({ ROOTLESSKIT_STATE_DIR: '/x', HOME: '/home/u', XDG_CONFIG_HOME: '/cfg' }).specDirs[0],
    ).toBe('/cfg/docker/plugins');
    expect(defaultLegacyDirs({ ROOTLESSKIT_STATE_DIR: '/x' }).specDirs).toEqual([
      '/etc/docker/plugins',
      '/usr/lib/docker/plugins',
    ]);
  });
});
