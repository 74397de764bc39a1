import { lstat, mkdir, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tarOf, tempDir, type TarEntry } from '../test/helpers.js';
import { extractPluginContext } from './tar-context.js';

describe('extractPluginContext', () => {
  let dir: string;
  let rootfs: string;
  beforeEach(async () => {
    dir = await tempDir();
    rootfs = path.join(dir, 'rootfs');
    await mkdir(rootfs);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps config.json, extracts rootfs/ and skips the rest', async () => {
    const result = await extractPluginContext(
      tarOf([
        { name: './config.json', content: '{"Description":"x"}' },
        { name: 'README.md', content: 'ignored' },
        { name: 'rootfs/', type: 'directory', mode: 0o755 },
        { name: 'rootfs/bin/', type: 'directory' },
        { name: 'rootfs/bin/tool', content: '#!/bin/sh\n', mode: 0o4755 },
        { name: 'rootfs/bin/sh', type: 'symlink', linkname: '/bin/tool' },
        { name: 'rootfs/bin/rel', type: 'symlink', linkname: '../bin/tool' },
        { name: 'rootfs/bin/hard', type: 'link', linkname: 'rootfs/bin/tool' },
        { name: 'rootfs/deep/er/file', content: 'implicit parents' },
        { name: 'rootfs/bin/tool2', content: 'first' },
        { name: 'rootfs/bin/tool2', content: 'second' },
      ]),
      rootfs,
    );
    expect(result.config?.toString()).toBe('{"Description":"x"}');
    expect(result.hasRootfs).toBe(true);
    expect(result.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect((await readdir(rootfs)).sort()).toEqual(['bin', 'deep']);
    expect((await stat(path.join(rootfs, 'bin/tool'))).mode & 0o7777).toBe(0o4755);
    expect(await readlink(path.join(rootfs, 'bin/sh'))).toBe('/bin/tool');
    expect(await readlink(path.join(rootfs, 'bin/rel'))).toBe('../bin/tool');
    expect((await stat(path.join(rootfs, 'bin/hard'))).ino).toBe((await stat(path.join(rootfs, 'bin/tool'))).ino);
    expect(await readFile(path.join(rootfs, 'deep/er/file'), 'utf8')).toBe('implicit parents');
    expect(await readFile(path.join(rootfs, 'bin/tool2'), 'utf8')).toBe('second');
  });

  it('reports a context without config.json or rootfs/', async () => {
    const empty = await extractPluginContext(tarOf([]), rootfs);
    expect(empty).toMatchObject({ config: undefined, hasRootfs: false });
    const onlyRootfs = await extractPluginContext(tarOf([{ name: 'rootfs/', type: 'directory' }]), rootfs);
    expect(onlyRootfs).toMatchObject({ config: undefined, hasRootfs: true });
  });

  const refused: Array<[string, TarEntry[], RegExp]> = [
    ['a ../ component', [{ name: 'rootfs/../../etc/evil', content: 'x' }], /paths must not contain "\.\."/],
    ['a ../ that stays inside', [{ name: 'rootfs/a/../b', content: 'x' }], /paths must not contain "\.\."/],
    ['an absolute name', [{ name: '/etc/evil', content: 'x' }], /absolute paths are not allowed/],
    ['a symlink climbing out', [{ name: 'rootfs/esc', type: 'symlink', linkname: '../../../etc' }], /symbolic link to "..\/..\/..\/etc" points outside the rootfs/],
    ['a nested symlink climbing out', [{ name: 'rootfs/a/b/esc', type: 'symlink', linkname: '../../../x' }], /points outside the rootfs/],
    ['a hard link out', [{ name: 'rootfs/h', type: 'link', linkname: '/etc/passwd' }], /hard link to "\/etc\/passwd" points outside the rootfs/],
    ['a hard link via ..', [{ name: 'rootfs/h', type: 'link', linkname: 'rootfs/../config.json' }], /points outside the rootfs/],
    ['a hard link to config.json', [{ name: 'config.json', content: '{}' }, { name: 'rootfs/h', type: 'link', linkname: 'config.json' }], /is not in the rootfs/],
    ['a character device', [{ name: 'rootfs/dev/mem', type: 'character-device' }], /character devices are not allowed/],
    ['a block device', [{ name: 'rootfs/sda', type: 'block-device' }], /block devices are not allowed/],
    ['a FIFO', [{ name: 'rootfs/fifo', type: 'fifo' }], /fifos are not allowed/],
    [
      'writing through a symlink',
      [
        { name: 'rootfs/etc', type: 'symlink', linkname: '/etc' },
        { name: 'rootfs/etc/passwd', content: 'root::0:0::/:/bin/sh' },
      ],
      /"rootfs\/etc" is a symbolic link/,
    ],
    [
      'writing through an absolute symlink to a directory inside',
      [
        { name: 'rootfs/real/', type: 'directory' },
        { name: 'rootfs/link', type: 'symlink', linkname: 'real' },
        { name: 'rootfs/link/file', content: 'x' },
      ],
      /"rootfs\/link" is a symbolic link/,
    ],
  ];
  for (const [what, entries, message] of refused) {
    it(`refuses ${what}, as invalid-parameter, writing nothing outside`, async () => {
      const err = await extractPluginContext(tarOf(entries), rootfs).catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: 'invalid-parameter' });
      expect((err as Error).message).toMatch(message);
      expect((await readdir(dir)).sort()).toEqual(['rootfs']);
      expect(await lstat('/etc/evil').catch(() => undefined)).toBeUndefined();
    });
  }

  it('refuses a config.json over the limit without reading it all', async () => {
    const big = tarOf([{ name: 'config.json', content: 'x'.repeat(5000) }]);
    await expect(extractPluginContext(big, rootfs, { maxConfigBytes: 4096 })).rejects.toMatchObject({
      kind: 'invalid-parameter',
      message: 'config.json is larger than 4096 bytes',
    });
  });

  it('refuses truncated and garbage archives as invalid-parameter', async () => {
    const chunks: Buffer[] = [];
    for await (const c of tarOf([{ name: 'rootfs/file', content: 'y'.repeat(2000) }])) chunks.push(Buffer.from(c));
    const whole = Buffer.concat(chunks);
    await expect(extractPluginContext(Readable.from([whole.subarray(0, 1024)]), rootfs)).rejects.toMatchObject({
      kind: 'invalid-parameter',
    });
    await expect(extractPluginContext(Readable.from([Buffer.alloc(1024, 7)]), rootfs)).rejects.toMatchObject({
      kind: 'invalid-parameter',
    });
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(512);
      controller.abort(new Error('client went away'));
      await new Promise((r) => setTimeout(r, 10));
      yield Buffer.alloc(512);
    }
    await expect(extractPluginContext(slow(), rootfs, { signal: controller.signal })).rejects.toThrow('client went away');
  });

  it('stops when aborted while the input stalls', async () => {
    const controller = new AbortController();
    const stalled = new Readable({ read() {} });
    stalled.push(Buffer.alloc(512));
    setTimeout(() => controller.abort(new Error('deadline')), 20);
    await expect(extractPluginContext(stalled, rootfs, { signal: controller.signal })).rejects.toThrow('deadline');
    expect(stalled.destroyed).toBe(true);
  });
});
