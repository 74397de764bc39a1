import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoltFile, checkBolt, writeBolt } from '../src/index.js';
import { branchChildren, breakMetaChecksum, bucketRootPage, garbleMeta, pageFlags, setBranchChild } from './corrupt.js';

/**
 * The reader on files written by real bbolt: the `volumes/metadata.db` of the reference dockerd
 * (Debian's docker.io 20.10, bbolt 1.3.6) with 0, 1 and 20,000 volumes, made by
 * scripts/dockerd-metadata-fixtures.mjs (cached per dockerd version), and corrupted copies of
 * it. Without dockerd this is skipped with the reason, except under CI, where it fails.
 */

const FIXTURES = fileURLToPath(new URL('../../../scripts/dockerd-metadata-fixtures.mjs', import.meta.url));

function fixtures(): { dir?: string; reason?: string } {
  if (process.getuid?.() !== 0) return { reason: 'dockerd needs root' };
  const made = spawnSync(process.execPath, [FIXTURES], { encoding: 'utf8', timeout: 600_000 });
  if (made.status === 0) return { dir: made.stdout.trim() };
  return { reason: (made.stderr || made.error?.message || 'dockerd-metadata-fixtures.mjs failed').trim() };
}

const made = fixtures();
const suite = made.dir === undefined && process.env.CI === undefined ? describe.skip : describe;
if (made.dir === undefined && process.env.CI === undefined) console.warn(`Skipping the dockerd files: ${made.reason ?? ''} (under CI this fails instead).`);

interface VolumeRequest {
  Name: string;
  Driver: string;
  Labels?: Record<string, string>;
  DriverOpts?: Record<string, string>;
}

/** What dockerd 20.10 stores for a create request: moby's `volumeMetadata`. */
const stored = (r: VolumeRequest) => ({ Name: r.Name, Driver: r.Driver, Labels: r.Labels ?? null, Options: r.DriverOpts ?? null });

const volumes = (file: BoltFile): Array<{ key: string; value: unknown }> =>
  [...(file.bucket('volumes')?.entries() ?? [])].map((e) => ({ key: Buffer.from(e.key).toString(), value: JSON.parse(Buffer.from(e.value ?? []).toString()) }));

suite('metadata.db files written by dockerd 20.10', () => {
  let dir: string;
  let scratch: string;

  beforeAll(async () => {
    if (made.dir === undefined) throw new Error(`CI must read real dockerd files, but ${made.reason ?? ''}`);
    dir = made.dir;
    scratch = await mkdtemp(join(tmpdir(), 'bbolt-'));
  });

  afterAll(async () => {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  it('reads the file of a dockerd without volumes: an empty volumes bucket', async () => {
    const file = await BoltFile.open(join(dir, '0.db'));
    expect(file.meta.pageSize).toBe(4096);
    expect([...file.root.entries()].map((e) => [Buffer.from(e.key).toString(), e.value])).toEqual([['volumes', undefined]]);
    expect(volumes(file)).toEqual([]);
    expect(checkBolt(file)).toEqual([]);
  });

  it('reads one volume with its label and options (an inline bucket)', async () => {
    const file = await BoltFile.open(join(dir, '1.db'));
    expect(volumes(file)).toEqual([
      { key: 'dv1', value: { Name: 'dv1', Driver: 'local', Labels: { team: 'a' }, Options: { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' } } },
    ]);
    expect(checkBolt(file)).toEqual([]);
  });

  it('reads 20,000 volumes over branch, leaf and overflow pages, each as dockerd was asked', async () => {
    const requests = JSON.parse(await readFile(join(dir, 'requests.json'), 'utf8')) as VolumeRequest[];
    const file = await BoltFile.open(join(dir, '20000.db'));
    const bytes = await readFile(join(dir, '20000.db'));
    const root = bucketRootPage(bytes, 'volumes');
    expect(pageFlags(bytes, root)).toBe(0x01); // a branch page
    const read = volumes(file);
    expect(read).toHaveLength(20_000);
    const expected = [...requests].sort((a, b) => (a.Name < b.Name ? -1 : 1)).map((r) => ({ key: r.Name, value: stored(r) }));
    expect(read).toEqual(expected);
    expect((read.find((v) => v.key === 'vol-04242')?.value as { Labels: { big: string } }).Labels.big).toHaveLength(10_000);
    // Byte for byte as Go's encoding/json wrote it: struct fields in order, map keys sorted.
    expect(Buffer.from(file.bucket('volumes')?.get('vol-12345') ?? []).toString()).toBe(
      '{"Name":"vol-12345","Driver":"local","Labels":{"com.example.owner":"owner-12345","team":"t4"},"Options":{"device":"tmpfs","o":"size=7m","type":"tmpfs"}}',
    );
    expect(checkBolt(file)).toEqual([]);
  });

  it('writes back what it read, in a file that reads the same', async () => {
    const file = await BoltFile.open(join(dir, '20000.db'));
    const entries = [...(file.bucket('volumes')?.entries() ?? [])].map((e) => ({ key: e.key, value: e.value ?? new Uint8Array() }));
    const copy = BoltFile.fromBytes(writeBolt([{ name: 'volumes', entries }]));
    expect(volumes(copy)).toEqual(volumes(file));
    expect(checkBolt(copy)).toEqual([]);
  });

  describe('corrupted copies are refused with an error naming the file and what is wrong', () => {
    const damaged = async (name: string, edit: (bytes: Buffer) => void): Promise<string> => {
      const path = join(scratch, name);
      const bytes = await readFile(join(dir, '20000.db'));
      edit(bytes);
      await writeFile(path, bytes);
      return path;
    };
    const readAll = async (path: string): Promise<number> => [...((await BoltFile.open(path)).bucket('volumes')?.entries() ?? [])].length;

    it('truncated', async () => {
      const path = join(scratch, 'truncated.db');
      await copyFile(join(dir, '20000.db'), path);
      const size = (await stat(path)).size;
      const { highWaterMark } = (await BoltFile.open(path)).meta;
      await truncate(path, Math.floor((highWaterMark * 4096) / 2));
      await expect(readAll(path)).rejects.toThrow(new RegExp(`^${path}: truncated bbolt file: its ${highWaterMark} pages of 4096 bytes need ${highWaterMark * 4096} bytes, the file has \\d+$`));
      expect(size).toBeGreaterThan(0);
    });

    it('both metas garbled', async () => {
      const path = await damaged('garbled.db', (b) => {
        garbleMeta(b, 0, 4096);
        garbleMeta(b, 1, 4096);
      });
      await expect(readAll(path)).rejects.toThrow(`${path}: not a bbolt file, or both meta pages are damaged (page 0: bad magic`);
    });

    it('the newer meta garbled: the previous commit is read, as bbolt does', async () => {
      const path = await damaged('one-meta.db', (b) => {
        const newer = BoltFile.fromBytes(b).meta.txid % 2;
        garbleMeta(b, newer as 0 | 1, 4096);
      });
      // The last create is not in the previous commit.
      expect(await readAll(path)).toBe(19_999);
    });

    it('bad checksums', async () => {
      const path = await damaged('checksum.db', (b) => {
        breakMetaChecksum(b, 0, 4096);
        breakMetaChecksum(b, 1, 4096);
      });
      await expect(readAll(path)).rejects.toThrow(new RegExp(`^${path}: not a bbolt file, or both meta pages are damaged \\(page 0: checksum mismatch .*; page 1: checksum mismatch`));
    });

    it('a page id beyond the file', async () => {
      let root = 0;
      const path = await damaged('beyond.db', (b) => {
        root = bucketRootPage(b, 'volumes');
        setBranchChild(b, root, 3, 1_000_000);
      });
      await expect(readAll(path)).rejects.toThrow(`${path}: corrupt bbolt file: branch page ${root} element 3 points to page 1000000, outside the file's pages 2..`);
    });

    it('a cycle', async () => {
      let root = 0;
      const path = await damaged('cycle.db', (b) => {
        root = bucketRootPage(b, 'volumes');
        setBranchChild(b, root, 2, root);
      });
      await expect(readAll(path)).rejects.toThrow(`${path}: corrupt bbolt file: branch page ${root} of bucket "volumes" points back to page ${root}, which leads to it (a cycle)`);
    });

    it('a leaf reached twice', async () => {
      const path = await damaged('twice.db', (b) => {
        const root = bucketRootPage(b, 'volumes');
        setBranchChild(b, root, 2, branchChildren(b, root)[1] as number);
      });
      await expect(readAll(path)).rejects.toThrow(`${path}: corrupt bbolt file: leaf page`);
      await expect(readAll(path)).rejects.toThrow('keys out of order');
    });
  });
});
