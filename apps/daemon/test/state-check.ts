import { lstat, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { boundedRequest, type BoundedRequest, type BoundedResponse } from './bounded-http.js';

/** What `GET /volumes` lists for one volume. */
export interface ListedVolume {
  Name: string;
  Driver: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  Mountpoint: string;
  Scope: string;
  CreatedAt?: string;
}

export interface DaemonLike {
  readonly socket: string;
  readonly dataRoot: string;
}

/**
 * Every path under `dir` (directories end in `/`), skipping the subtree `skip` (the volumes root,
 * which requests are allowed to change): taken before and after, it shows anything created or
 * deleted outside the data-root's volumes.
 */
export async function snapshotTree(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (path === skip) continue;
      out.push(relative(dir, path) + (entry.isDirectory() ? '/' : ''));
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(dir);
  return out.sort();
}

/** The files the metadata store may keep next to the volume directories. */
const METADATA_FILES = /^metadata\.sqlite(-wal|-shm|-journal|-reserve)?$/
/** What a local volume directory holds. */
const VOLUME_ENTRIES = new Set(['_data', 'opts.json']);

export function call(daemon: DaemonLike, req: BoundedRequest): Promise<BoundedResponse> {
  return boundedRequest(daemon.socket, { timeoutMs: 5_000, ...req });
}

export const filtersQuery = (f: Record<string, string[]>): string => encodeURIComponent(JSON.stringify(f));

export async function listVolumes(daemon: DaemonLike, filters?: Record<string, string[]>): Promise<ListedVolume[]> {
  const res = await call(daemon, { path: filters === undefined ? '/volumes' : `/volumes?filters=${filtersQuery(filters)}` });
  if (res.status !== 200) throw new Error(`GET /volumes answered ${res.status}: ${res.body}`);
  return (res.json as { Volumes: ListedVolume[] }).Volumes;
}

/**
 * The daemon's view and the disk agree: every directory under `<data-root>/volumes` is a volume the
 * API lists and every listed (local) volume has its directory with `_data`; volume directories hold
 * nothing but `_data` and `opts.json`; the volumes root holds nothing but them and the metadata
 * database; and `GET /volumes/{name}` answers 200 for every listed name. Returns the problems found
 * (empty when consistent) and the listed volumes.
 */
export async function diskMatchesApi(daemon: DaemonLike): Promise<{ problems: string[]; volumes: ListedVolume[] }> {
  const problems: string[] = [];
  const root = join(daemon.dataRoot, 'volumes');
  const volumes = await listVolumes(daemon);
  const listed = new Map(volumes.map((v) => [v.Name, v]));

  const dirs = new Set<string>();
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory()) dirs.add(entry.name);
    else if (!METADATA_FILES.test(entry.name)) problems.push(`stray ${entry.isFile() ? 'file' : 'entry'} in the volumes root: ${entry.name}`);
  }
  for (const dir of [...dirs].sort()) {
    if (!listed.has(dir)) problems.push(`directory without its volume: ${join(root, dir)} (holds ${JSON.stringify(await readdir(join(root, dir)))})`);
  }
  for (const volume of volumes) {
    if (volume.Driver !== 'local') {
      problems.push(`unexpected driver ${volume.Driver} for ${volume.Name}`);
      continue;
    }
    const dir = join(root, volume.Name);
    if (!dirs.has(volume.Name)) {
      problems.push(`volume without its directory: ${volume.Name}`);
      continue;
    }
    const data = await lstat(join(dir, '_data')).catch(() => undefined);
    if (data === undefined || !data.isDirectory()) problems.push(`volume without its _data directory: ${volume.Name}`);
    for (const entry of await readdir(dir)) {
      if (!VOLUME_ENTRIES.has(entry)) problems.push(`stray entry in volume ${volume.Name}: ${entry}`);
    }
    if (volume.Mountpoint !== join(dir, '_data')) problems.push(`mountpoint of ${volume.Name} is ${volume.Mountpoint}`);
    const got = await call(daemon, { path: `/volumes/${encodeURIComponent(volume.Name)}` });
    if (got.status !== 200) problems.push(`GET /volumes/${volume.Name} of a listed volume answered ${got.status}: ${got.body}`);
  }
  return { problems, volumes };
}
