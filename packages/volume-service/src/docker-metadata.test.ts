import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BoltFile, writeBolt } from '@berth/bbolt';
import { kindOf } from '@berth/errdefs';
import { describe, expect, it } from 'vitest';
import { Filters } from '@berth/filters';
import type { Logger } from '@berth/logger';
import { FakeDriver, FakeRegistry, scratchDir } from '../test/fakes.js';
import { adoptDockerMetadata, dockerMetadataPath, exportDockerMetadata } from './docker-metadata.js';
import { SqliteMetadataStore } from './sqlite-metadata-store.js';
import { metadataPath, VolumesService } from './volumes-service.js';

/** A data-root with a dockerd-style `volumes/metadata.db` holding `records` (key → value). */
async function dockerRoot(records: Record<string, string>): Promise<string> {
  const root = await scratchDir();
  await mkdir(join(root, 'volumes'), { recursive: true });
  const entries = Object.entries(records).map(([key, value]) => ({ key, value: Buffer.from(value) }));
  await writeFile(dockerMetadataPath(root), writeBolt([{ name: 'volumes', entries }]), { mode: 0o600 });
  return root;
}

const record = (name: string, driver: string, labels: unknown = null, options: unknown = null): string =>
  JSON.stringify({ Name: name, Driver: driver, Labels: labels, Options: options });

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> } {
  const lines: Array<{ level: string; message: string; fields?: Record<string, unknown> }> = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { lines, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

const digest = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

async function storedRecords(root: string) {
  // Read only: no reserve file, so that the directory shows what adoption and export left.
  const store = await SqliteMetadataStore.open(metadataPath(root), { reserveBytes: 0 });
  try {
    return (await store.list()).map(({ name, driver, labels, options, pending, refs }) => ({ name, driver, labels, options, pending, refs }));
  } finally {
    await store.close();
  }
}

describe('adoptDockerMetadata', () => {
  it('imports every usable record, leaves metadata.db as it was, and reports the rest', async () => {
    const root = await dockerRoot({
      dv1: record('dv1', 'local', { team: 'a' }),
      dv2: record('dv2', 'local', null, { type: 'tmpfs', device: 'tmpfs' }),
      pv1: record('pv1', 'myplug:latest', {}, { size: '1g' }),
      old: record('old', ''),
      gone: record('gone', ''),
      empty: '',
      garbage: '{"Name": "garb',
      numbers: record('numbers', 'local', { n: 1 }),
      lower: '{"name":"lower","driver":"local"}',
    });
    await mkdir(join(root, 'volumes', 'old', '_data'), { recursive: true });
    const before = await digest(dockerMetadataPath(root));
    const logger = recordingLogger();

    const report = await adoptDockerMetadata({ root, logger });

    expect(report).toMatchObject({ file: dockerMetadataPath(root), adopted: 5 });
    expect(report?.skipped).toEqual([
      { key: 'garbage', reason: expect.stringMatching(/^not JSON: /) },
      { key: 'gone', reason: 'no driver recorded, and the local driver has no such volume' },
      { key: 'numbers', reason: 'its labels are not a map of strings' },
    ]);
    expect(await storedRecords(root)).toEqual([
      { name: 'dv1', driver: 'local', labels: { team: 'a' }, options: null, pending: false, refs: [] },
      { name: 'dv2', driver: 'local', labels: null, options: { type: 'tmpfs', device: 'tmpfs' }, pending: false, refs: [] },
      { name: 'lower', driver: 'local', labels: null, options: null, pending: false, refs: [] },
      { name: 'old', driver: 'local', labels: null, options: null, pending: false, refs: [] },
      { name: 'pv1', driver: 'myplug:latest', labels: {}, options: { size: '1g' }, pending: false, refs: [] },
    ]);
    expect(await digest(dockerMetadataPath(root))).toBe(before);
    expect((await readdir(join(root, 'volumes'))).sort()).toEqual(['metadata.db', 'metadata.sqlite', 'old']);
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.fields?.volume)).toEqual(['garbage', 'gone', 'numbers']);
    expect(logger.lines.find((l) => l.level === 'info')).toMatchObject({ message: "Adopted 5 volumes from Docker's metadata", fields: { adopted: 5, skipped: 3 } });
  });

  it('hands the records to the restore: a volume on a plugin that is away comes back with it, labels and all', async () => {
    const root = await dockerRoot({ dv1: record('dv1', 'local', { team: 'a' }), pv1: record('pv1', 'myplug:latest', { on: 'plugin' }, { size: '1g' }) });
    await adoptDockerMetadata({ root });
    const local = new FakeDriver('local');
    const plugin = new FakeDriver('myplug:latest');
    await local.create('dv1', undefined);
    await plugin.create('pv1', undefined);
    const registry = new FakeRegistry(local);
    const shown = async () => {
      const service = await VolumesService.open({ root, drivers: registry });
      try {
        return (await service.list(Filters.empty())).volumes.map((v) => [v.Name, v.Driver, v.Labels, v.Options]);
      } finally {
        await service.close();
      }
    };
    expect(await shown()).toEqual([['dv1', 'local', { team: 'a' }, null]]);
    registry.register(plugin);
    expect(await shown()).toEqual([
      ['dv1', 'local', { team: 'a' }, null],
      ['pv1', 'myplug:latest', { on: 'plugin' }, { size: '1g' }],
    ]);
  });

  it('adopts once: with berth metadata present, or without metadata.db, it does nothing', async () => {
    const root = await dockerRoot({ dv1: record('dv1', 'local') });
    expect((await adoptDockerMetadata({ root }))?.adopted).toBe(1);
    await writeFile(dockerMetadataPath(root), writeBolt([{ name: 'volumes', entries: [{ key: 'x', value: Buffer.from(record('x', 'local')) }] }]));
    expect(await adoptDockerMetadata({ root })).toBeUndefined();
    expect((await storedRecords(root)).map((r) => r.name)).toEqual(['dv1']);
    expect(await adoptDockerMetadata({ root: await scratchDir() })).toBeUndefined();
  });

  it('starts over after a crash that left a half-built store aside', async () => {
    const root = await dockerRoot({ dv1: record('dv1', 'local') });
    await writeFile(`${metadataPath(root)}.adopting`, 'half');
    await writeFile(`${metadataPath(root)}.adopting-wal`, 'half');
    expect((await adoptDockerMetadata({ root }))?.adopted).toBe(1);
    expect((await readdir(join(root, 'volumes'))).sort()).toEqual(['metadata.db', 'metadata.sqlite']);
  });

  it('refuses a damaged metadata.db with an error naming it, and changes nothing', async () => {
    const root = await dockerRoot({ dv1: record('dv1', 'local') });
    const file = dockerMetadataPath(root);
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, 8192));
    await expect(adoptDockerMetadata({ root })).rejects.toThrow(
      `error reading Docker's volume metadata: ${file}: truncated bbolt file: its 4 pages of 4096 bytes need 16384 bytes, the file has 8192; nothing was changed`,
    );
    bytes.fill(0x5a, 0, 200);
    bytes.fill(0x5a, 4096, 4296);
    await writeFile(file, bytes);
    const error = await adoptDockerMetadata({ root }).catch((err: unknown) => err);
    expect(String(error)).toContain(`error reading Docker's volume metadata: ${file}: not a bbolt file, or both meta pages are damaged`);
    expect(kindOf(error)).toBe('system');
    expect(await readdir(join(root, 'volumes'))).toEqual(['metadata.db']);
  });

  it('refuses while another process (a running dockerd) holds the file locked', async () => {
    const root = await dockerRoot({ dv1: record('dv1', 'local') });
    const file = dockerMetadataPath(root);
    // flock(1) takes the same exclusive lock bbolt takes on its file.
    const holder = spawn('flock', ['--exclusive', file, 'sleep', '30'], { stdio: 'ignore' });
    try {
      const { ino } = statSync(file);
      for (let i = 0; i < 250 && !(await readFile('/proc/locks', 'utf8')).includes(`:${ino} `); i++) await new Promise((r) => setTimeout(r, 20));
      await expect(adoptDockerMetadata({ root })).rejects.toThrow(
        `cannot adopt ${file}: it is locked by process ${holder.pid} (flock) (a dockerd still running on this data-root?); stop it first`,
      );
      expect(existsSync(metadataPath(root))).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('exportDockerMetadata', () => {
  it("writes berth's records as dockerd's metadata.db, leaving out unacknowledged creates", async () => {
    const root = await scratchDir();
    const store = await SqliteMetadataStore.open(metadataPath(root));
    await store.importRecords([
      { name: 'b', driver: 'local', labels: { z: '1', a: '<&>' }, options: null },
      { name: 'a', driver: 'plug:latest', labels: {}, options: { size: '1g' } },
    ]);
    await store.markPending({ name: 'c', driver: 'local', labels: null, options: null });
    await store.close();

    const before = await storedRecords(root);
    expect(await exportDockerMetadata({ root })).toEqual({ file: dockerMetadataPath(root), exported: 2, keptStore: `${metadataPath(root)}.exported` });
    // The reserve the daemon's store kept stays, for the next store (adoption makes one again anyway).
    expect((await readdir(join(root, 'volumes'))).sort()).toEqual(['metadata.db', 'metadata.sqlite-reserve', 'metadata.sqlite.exported']);
    const file = await BoltFile.open(dockerMetadataPath(root));
    const values = [...(file.bucket('volumes')?.entries() ?? [])].map((e) => [Buffer.from(e.key).toString(), Buffer.from(e.value ?? []).toString()]);
    expect(values).toEqual([
      ['a', '{"Name":"a","Driver":"plug:latest","Labels":{},"Options":{"size":"1g"}}'],
      ['b', '{"Name":"b","Driver":"local","Labels":{"a":"<&>","z":"1"},"Options":null}'],
    ]);
    expect((statSync(dockerMetadataPath(root)).mode & 0o777).toString(8)).toBe('600');
    // And back: the next start adopts the export (and whatever dockerd changed in it).
    expect((await adoptDockerMetadata({ root }))?.adopted).toBe(2);
    expect(await storedRecords(root)).toEqual(before.filter((r) => r.name !== 'c'));
  });

  it('refuses while a berthd holds the store, and when berth never ran there', async () => {
    const root = await scratchDir();
    await expect(exportDockerMetadata({ root })).rejects.toThrow(`nothing to export: ${metadataPath(root)} does not exist`);
    const running = await SqliteMetadataStore.open(metadataPath(root));
    try {
      await expect(exportDockerMetadata({ root })).rejects.toThrow(
        `error while opening volume store metadata database (${metadataPath(root)}): timeout: a berthd is running on ${root}; stop it first`,
      );
      expect(existsSync(dockerMetadataPath(root))).toBe(false);
    } finally {
      await running.close();
    }
  });
});
