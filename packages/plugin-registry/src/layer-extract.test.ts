import { mkdtemp, readFile, readlink, rm, stat, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { applyLayer } from './layer-extract.js';
import { packRootfs } from './rootfs-tar.js';

type Header = Parameters<tar.Pack['entry']>[0];

/** A tar made of `[header, content]` pairs. */
async function tarOf(entries: [Header, string?][]): Promise<Buffer> {
  const pack = tar.pack();
  for (const [header, content] of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, content ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('applyLayer', () => {
  let dir: string;
  let rootfs: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-layer-'));
    rootfs = path.join(dir, 'rootfs');
    await mkdir(rootfs);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('extracts plain and gzip layers, with a "." root entry as moby\'s create writes it', async () => {
    const layer = await tarOf([
      [{ name: '.', type: 'directory', mode: 0o711 }],
      [{ name: 'bin/', type: 'directory', mode: 0o755 }],
      [{ name: 'bin/tool', mode: 0o750 }, 'run'],
      [{ name: 'bin/tool-link', type: 'link', linkname: 'bin/tool' }],
      [{ name: 'lib/deep/file', mode: 0o644 }, 'deep'],
    ]);
    await applyLayer([gzipSync(layer)], rootfs);
    expect(await readFile(path.join(rootfs, 'bin/tool'), 'utf8')).toBe('run');
    expect((await stat(path.join(rootfs, 'bin/tool'))).mode & 0o777).toBe(0o750);
    expect((await stat(path.join(rootfs, 'bin/tool-link'))).ino).toBe((await stat(path.join(rootfs, 'bin/tool'))).ino);
    expect((await stat(rootfs)).mode & 0o777).toBe(0o711);
    await applyLayer([layer], path.join(dir, 'rootfs'));
    expect(await readFile(path.join(rootfs, 'lib/deep/file'), 'utf8')).toBe('deep');
  });

  it('applies whiteouts of later layers, keeping what the same layer wrote', async () => {
    await applyLayer([await tarOf([[{ name: 'a/old' }, '1'], [{ name: 'a/keep' }, '2'], [{ name: 'b/x' }, '3'], [{ name: 'c' }, '4']])], rootfs);
    await applyLayer(
      [await tarOf([[{ name: 'b/new' }, '5'], [{ name: 'b/.wh..wh..opq' }], [{ name: 'a/.wh.old' }], [{ name: '.wh.c' }], [{ name: '.wh.missing' }]])],
      rootfs,
    );
    await expect(stat(path.join(rootfs, 'a/old'))).rejects.toThrow();
    expect(await readFile(path.join(rootfs, 'a/keep'), 'utf8')).toBe('2');
    await expect(stat(path.join(rootfs, 'b/x'))).rejects.toThrow();
    expect(await readFile(path.join(rootfs, 'b/new'), 'utf8')).toBe('5');
    await expect(stat(path.join(rootfs, 'c'))).rejects.toThrow();
  });

  it.each([
    ['a parent directory name', [[{ name: '../escape' }, 'x']], 'paths must not contain ".."'],
    ['an absolute name', [[{ name: '/etc/passwd' }, 'x']], 'absolute paths are not allowed'],
    ['a device node', [[{ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 }]], 'character devices are not allowed'],
    ['a fifo', [[{ name: 'pipe', type: 'fifo' }]], 'fifos are not allowed'],
    ['a symlink out of the rootfs', [[{ name: 'up', type: 'symlink', linkname: '../../..' }]], 'points outside the rootfs'],
    ['an entry below a symlink', [[{ name: 'etc', type: 'symlink', linkname: '/etc' }], [{ name: 'etc/shadow' }, 'x']], '"etc" is a symbolic link'],
    ['a hard link out of the rootfs', [[{ name: 'h', type: 'link', linkname: '../../etc/passwd' }]], 'points outside the rootfs'],
    ['a hard link to nothing', [[{ name: 'h', type: 'link', linkname: 'missing' }]], 'is not in the rootfs'],
  ] as [string, [Header, string?][], string][])('refuses %s', async (_what, entries, text) => {
    const err = await applyLayer([await tarOf(entries)], rootfs).catch((e: unknown) => e);
    expect(kindOf(err)).toBe('invalid-parameter');
    expect((err as Error).message).toContain(text);
  });

  it('never writes through a symlink left by an earlier layer', async () => {
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    await symlink(outside, path.join(rootfs, 'link'));
    await expect(applyLayer([await tarOf([[{ name: 'link/file' }, 'x']])], rootfs)).rejects.toThrow('is a symbolic link');
    // A file entry replaces the symlink itself, never its target.
    await writeFile(path.join(outside, 'kept'), 'kept');
    await applyLayer([await tarOf([[{ name: 'link' }, 'now a file']])], rootfs);
    expect(await readFile(path.join(rootfs, 'link'), 'utf8')).toBe('now a file');
    expect(await readFile(path.join(outside, 'kept'), 'utf8')).toBe('kept');
  });

  it('refuses a truncated or garbage layer and honours the signal', async () => {
    const layer = gzipSync(await tarOf([[{ name: 'f' }, 'x'.repeat(10_000)]]));
    await expect(applyLayer([layer.subarray(0, layer.length / 2)], rootfs)).rejects.toThrow(/^error applying layer: /);
    const controller = new AbortController();
    controller.abort();
    await expect(applyLayer([layer], rootfs, { signal: controller.signal })).rejects.toBe(controller.signal.reason);
  });
});

describe('packRootfs', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-pack-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('packs a tree that applyLayer rebuilds, the same bytes every time', async () => {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'b/c'), { recursive: true });
    await writeFile(path.join(src, 'b/c/file'), 'content');
    await writeFile(path.join(src, 'a'), 'a');
    await symlink('b/c/file', path.join(src, 'link'));
    const first = await collect(packRootfs(src));
    const second = await collect(packRootfs(src));
    expect(first.equals(second)).toBe(true);
    const names: string[] = [];
    const extract = tar.extract();
    extract.end(first);
    for await (const entry of extract) {
      names.push(entry.header.name);
      entry.resume();
    }
    expect(names).toEqual(['a', 'b', 'b/c', 'b/c/file', 'link']);
    const out = path.join(dir, 'out');
    await mkdir(out);
    await applyLayer([first], out);
    expect(await readFile(path.join(out, 'b/c/file'), 'utf8')).toBe('content');
    expect(await readlink(path.join(out, 'link'))).toBe('b/c/file');
  });

  it('fails the stream when the directory is missing', async () => {
    await expect(collect(packRootfs(path.join(dir, 'missing')))).rejects.toThrow('ENOENT');
  });
});
