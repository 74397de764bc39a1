import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BoltFile, writeBolt } from '@berth/bbolt';
import { BerthError, notFound } from '@berth/errdefs';
import { fsyncDir } from '@berth/host';
import { noopLogger, type Logger } from '@berth/logger';
import { DEFAULT_DRIVER_NAME } from '@berth/volume-drivers';
import type { StringMap, VolumeRecordInput } from './metadata-store.js';
import { METADATA_FILE_NAME, METADATA_FILE_NAMES, SqliteMetadataStore } from './sqlite-metadata-store.js';
import { metadataPath } from './volumes-service.js';

/** dockerd's volume metadata: `<data-root>/volumes/metadata.db`, bucket `volumes`, key = name. */
export const DOCKER_METADATA_FILE_NAME = 'metadata.db';
const VOLUMES_BUCKET = 'volumes';

/**
 * Every file berth keeps beside the volumes in `<data-root>/volumes`: berth's database and its
 * companions, dockerd's `metadata.db`, and the stores adoption and export leave there. No volume
 * may take one of these names (the local driver refuses them).
 */
export const RESERVED_VOLUME_NAMES: readonly string[] = [
  ...METADATA_FILE_NAMES,
  DOCKER_METADATA_FILE_NAME,
  ...['', '-wal', '-shm', '-journal'].map((suffix) => `${METADATA_FILE_NAME}.adopting${suffix}`),
  `${METADATA_FILE_NAME}.exported`,
];

/** The path of dockerd's volume metadata under a data-root. */
export function dockerMetadataPath(root: string): string {
  return join(root, 'volumes', DOCKER_METADATA_FILE_NAME);
}

export interface AdoptDockerMetadataOptions {
  /** The data-root. */
  root: string;
  logger?: Logger | undefined;
  signal?: AbortSignal | undefined;
}

export interface AdoptionReport {
  /** The `metadata.db` read. */
  file: string;
  adopted: number;
  /** Records that could not be used, with why; none of them is fatal. */
  skipped: Array<{ key: string; reason: string }>;
  durationMs: number;
}

/**
 * Adopts a dockerd data-root: when `<root>/volumes/metadata.db` exists and berth has no metadata
 * there yet (no `metadata.sqlite`), every record of its `volumes` bucket (name, driver, labels,
 * options) becomes a record of berth's store, all in one transaction, before the volume service
 * restores them (so volumes on plugins keep their driver and come back with it). `metadata.db` is
 * only read. The store is built in a temporary file renamed into place once complete, so a crash
 * part way leaves no half adoption: the next start adopts again. A file that cannot be read is an
 * error naming it, and nothing in the data-root has changed. Returns `undefined` when there was
 * nothing to adopt.
 */
export async function adoptDockerMetadata(options: AdoptDockerMetadataOptions): Promise<AdoptionReport | undefined> {
  const logger = options.logger ?? noopLogger;
  const target = metadataPath(options.root);
  const file = dockerMetadataPath(options.root);
  if (existsSync(target) || !existsSync(file)) return undefined;
  const started = performance.now();

  const holder = lockHolder(file);
  if (holder !== undefined) {
    throw new BerthError('unavailable', `cannot adopt ${file}: it is locked by process ${holder} (a dockerd still running on this data-root?); stop it first`);
  }
  let bolt: BoltFile;
  try {
    bolt = await BoltFile.open(file, { signal: options.signal });
  } catch (err) {
    const detail = BerthError.is(err) ? err.message : `${file}: ${(err as Error).message}`;
    throw new BerthError(
      'system',
      `error reading Docker's volume metadata: ${detail}; nothing was changed: restore the file, or move it out of the data-root to start without Docker's labels, options and drivers`,
      { cause: err },
    );
  }
  const { records, skipped } = dockerRecords(bolt, join(options.root, 'volumes'));
  for (const { key, reason } of skipped) logger.warn('Skipping a volume record of Docker that berth cannot use', { file, volume: key, reason });

  // Built aside and renamed into place: either the whole adoption is there, or none of it.
  const staging = `${target}.adopting`;
  await removeSqliteFiles(staging);
  options.signal?.throwIfAborted();
  const store = await SqliteMetadataStore.open(staging, { reserveBytes: 0 });
  try {
    await store.importRecords(records);
  } finally {
    await store.close();
  }
  // Closing the last connection checkpoints the WAL into the file and deletes it.
  if (existsSync(`${staging}-wal`)) throw new BerthError('system', `adopting ${file}: ${staging}-wal was left behind`);
  await rename(staging, target);
  await fsyncDir(dirname(target));

  const report: AdoptionReport = { file, adopted: records.length, skipped, durationMs: Math.round(performance.now() - started) };
  logger.info(`Adopted ${records.length} volumes from Docker's metadata`, {
    file,
    adopted: records.length,
    skipped: skipped.length,
    durationMs: report.durationMs,
  });
  return report;
}

/**
 * moby's `listMeta` with berth's checks: an empty value is skipped silently (as moby does); a value
 * that is not moby's `volumeMetadata` JSON (`Name`, `Driver`, `Labels`, `Options`, maps of strings)
 * is reported and skipped. A record without a driver (very old dockerd) is `local` when the local
 * driver has its directory, else reported.
 */
function dockerRecords(bolt: BoltFile, volumesDir: string): { records: VolumeRecordInput[]; skipped: AdoptionReport['skipped'] } {
  const records: VolumeRecordInput[] = [];
  const skipped: AdoptionReport['skipped'] = [];
  const bucket = bolt.bucket(VOLUMES_BUCKET);
  if (bucket === undefined) return { records, skipped };
  for (const { key: rawKey, value } of bucket.entries()) {
    const key = Buffer.from(rawKey).toString('utf8');
    if (value === undefined) {
      skipped.push({ key, reason: 'a nested bucket, not a volume record' });
      continue;
    }
    if (value.byteLength === 0) continue;
    const parsed = parseVolumeMetadata(value);
    if (typeof parsed === 'string') {
      skipped.push({ key, reason: parsed });
      continue;
    }
    let driver = parsed.driver;
    if (driver === '') {
      if (!existsSync(join(volumesDir, parsed.name, '_data'))) {
        skipped.push({ key, reason: 'no driver recorded, and the local driver has no such volume' });
        continue;
      }
      driver = DEFAULT_DRIVER_NAME;
    }
    records.push({ ...parsed, driver });
  }
  return { records, skipped };
}

/** moby's `volumeMetadata`, decoded as Go's encoding/json would (field names match case-insensitively); a string says why not. */
function parseVolumeMetadata(value: Uint8Array): VolumeRecordInput | string {
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(value).toString('utf8'));
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return 'not a JSON object';
  const field = (name: string): unknown => {
    const entries = Object.entries(document);
    return (entries.find(([k]) => k === name) ?? entries.find(([k]) => k.toLowerCase() === name.toLowerCase()))?.[1];
  };
  const name = field('Name');
  const driver = field('Driver') ?? '';
  if (typeof name !== 'string' || name === '') return 'no volume name';
  if (typeof driver !== 'string') return 'its driver is not a string';
  const labels = stringMap(field('Labels'));
  if (labels === false) return 'its labels are not a map of strings';
  const options = stringMap(field('Options'));
  if (options === false) return 'its options are not a map of strings';
  return { name, driver, labels, options };
}

function stringMap(value: unknown): StringMap | null | false {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return entries.every(([, v]) => typeof v === 'string') ? (Object.fromEntries(entries) as StringMap) : false;
}

export interface ExportDockerMetadataOptions {
  /** The data-root; its berth metadata must not be open in a running berthd. */
  root: string;
  signal?: AbortSignal | undefined;
}

/**
 * The way back to dockerd: writes `<root>/volumes/metadata.db` as dockerd 20.10 reads it, one
 * record per volume of berth's store (name, driver, labels, options; creates that were never
 * acknowledged are left out), replacing the file atomically. Runs only while no berthd holds the
 * data-root: the store's exclusive lock says so. Then berth's `metadata.sqlite` is renamed to
 * `metadata.sqlite.exported`: the next berthd on this data-root adopts `metadata.db` again. Local
 * volumes need nothing more: their options are in `<name>/opts.json`, in dockerd's format. Mount
 * references are not exported (dockerd rebuilds them from its containers).
 */
export async function exportDockerMetadata(options: ExportDockerMetadataOptions): Promise<{ file: string; exported: number; keptStore: string }> {
  const source = metadataPath(options.root);
  const file = dockerMetadataPath(options.root);
  if (!statSync(source, { throwIfNoEntry: false })?.isFile()) {
    throw notFound(`nothing to export: ${source} does not exist (has berthd ever run on ${options.root}?)`);
  }
  let store: SqliteMetadataStore;
  try {
    store = await SqliteMetadataStore.open(source, { reserveBytes: 0 });
  } catch (err) {
    if (BerthError.is(err) && err.kind === 'unavailable') {
      throw new BerthError('unavailable', `${err.message}: a berthd is running on ${options.root}; stop it first`, { cause: err });
    }
    throw err;
  }
  let records;
  try {
    records = (await store.list()).filter((r) => !r.pending);
  } finally {
    await store.close();
  }
  options.signal?.throwIfAborted();
  const entries = records.map((r) => ({ key: r.name, value: Buffer.from(volumeMetadataJson(r)) }));
  await writeFileAtomically(file, writeBolt([{ name: VOLUMES_BUCKET, entries }]));
  // The data-root is dockerd's again: berth's store steps aside (kept, not deleted), so that the
  // next berthd adopts metadata.db afresh, with whatever dockerd changed in the meantime.
  const keptStore = `${source}.exported`;
  await rename(source, keptStore);
  await fsyncDir(dirname(source));
  return { file, exported: entries.length, keptStore };
}

/**
 * moby's `volumeMetadata` as Go's encoding/json writes it: fields in struct order, map keys sorted,
 * nil maps as `null`. (Go also escapes `<`, `>`, `&` inside strings; its decoder reads either form.)
 */
function volumeMetadataJson(record: VolumeRecordInput): string {
  const sorted = (map: Readonly<StringMap> | null) => (map === null ? null : Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  return JSON.stringify({ Name: record.name, Driver: record.driver, Labels: sorted(record.labels), Options: sorted(record.options) });
}

async function writeFileAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

async function removeSqliteFiles(path: string): Promise<void> {
  await Promise.all(['', '-wal', '-shm', '-journal'].map((suffix) => rm(`${path}${suffix}`, { force: true })));
}

/**
 * The process holding a lock on `path`, from `/proc/locks` (bbolt holds an exclusive `flock` on
 * its file for as long as dockerd runs): `"<pid> (<command>)"`, or `undefined` when none does or
 * this is not Linux.
 */
function lockHolder(path: string): string | undefined {
  let locks: string;
  try {
    locks = readFileSync('/proc/locks', 'utf8');
  } catch {
    return undefined;
  }
  const st = statSync(path, { bigint: true });
  const major = Number((st.dev >> 8n) & 0xfffn);
  const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n));
  for (const line of locks.split('\n')) {
    const m = /^\d+:\s+(?:->\s+)?\S+\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/.exec(line);
    if (m === null || BigInt(m[4] as string) !== st.ino) continue;
    if (parseInt(m[2] as string, 16) !== major || parseInt(m[3] as string, 16) !== minor) continue;
    const pid = m[1] as string;
    let command = '';
    try {
      command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // Gone already, or another pid namespace.
    }
    return command === '' ? pid : `${pid} (${command})`;
  }
  return undefined;
}
