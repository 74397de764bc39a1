import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteMetadataStore, metadataPath, type VolumeRecord } from '@berth/volume-service';
import { neverSent, RequestTimeout } from './bounded-http.js';
import { Berthd } from './harness.js';
import { prng } from './prng.js';
import { isRoot, mountPointsUnder, unmountAllUnder } from './small-fs.js';
import { call, diskMatchesApi, filtersQuery, listVolumes } from './state-check.js';

/**
 * Issue 10, acceptance 2: random creates, removes, mounts, unmounts with held and unheld references,
 * and prunes, from concurrent clients, with `kill -9` at a random moment of each round. After each
 * restart: every acknowledged answer still holds and every unanswered request went one way or the
 * other; the API, the disk and the mount table agree (a tmpfs volume is mounted exactly while it has
 * references); and, after a clean stop, the metadata database holds exactly what the API showed.
 */

if (!isRoot) throw new Error('fault-injection.test.ts needs root: its tmpfs volumes are real mounts');

/** At least this many kills; more (up to {@link MAX_ROUNDS}) while fewer than {@link MIN_OPERATIONS} were sent. */
const ROUNDS = 6;
const MAX_ROUNDS = 30;
const CLIENTS = 4;
/** At least this many operations in all (a few hundred). */
const MIN_OPERATIONS = 300;
const NAMES = Array.from({ length: 14 }, (_, i) => `fi-${i}`);
const TMPFS = { type: 'tmpfs', device: 'tmpfs', o: 'size=256k' };
/** Written into a tmpfs volume by each mount: gone when the tmpfs was unmounted under its holders. */
const MARKER = '.held';

const seed = Number(process.env.BERTH_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const context = `seed ${seed} (replay with BERTH_FAULT_SEED=${seed})`;
const random = prng(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

type Presence = 'yes' | 'no' | 'maybe';
interface ModelVolume {
  present: Presence;
  /** `undefined`: one of two creates, so either's. */
  labels: Record<string, string> | null | undefined;
  /** `undefined`: one of two creates, so either's. */
  tmpfs: boolean | undefined;
  /** `held` after a 200 mount, `maybe` while a mount or unmount of it went unanswered. */
  refs: Map<string, 'held' | 'maybe'>;
  busy: boolean;
  last: string;
}

type Answer = { kind: 'answer'; status: number; json: unknown; body: string } | { kind: 'never-sent' } | { kind: 'lost' };

let daemon: Berthd | undefined;
afterAll(async () => {
  if (daemon === undefined) return;
  await daemon.kill();
  unmountAllUnder(daemon.dir);
  await daemon.cleanup();
});

describe('fault injection', () => {
  it(`keeps API, metadata, disk and mounts in agreement through ${ROUNDS} or more kills of ${MIN_OPERATIONS} or more random operations`, { timeout: 110_000 }, async () => {
    daemon = await Berthd.start();
    const model = new Map<string, ModelVolume>(NAMES.map((n) => [n, { present: 'no', labels: null, tmpfs: false, refs: new Map(), busy: false, last: 'none' }]));
    const problems: string[] = [];
    let operations = 0;
    let serial = 0;

    for (let round = 1; round <= MAX_ROUNDS && (round <= ROUNDS || operations < MIN_OPERATIONS); round++) {
      const live = daemon;
      let active = 0;
      let pruning = false;
      const send = async (method: string, path: string, body?: object): Promise<Answer> => {
        try {
          const res = await call(live, { method, path, ...(body === undefined ? {} : { body }), timeoutMs: 15_000 });
          operations++;
          return { kind: 'answer', status: res.status, json: res.json, body: res.body.trim() };
        } catch (err) {
          if (err instanceof RequestTimeout) problems.push(`round ${round}: ${method} ${path} timed out`);
          if (neverSent(err)) return { kind: 'never-sent' };
          operations++;
          return { kind: 'lost' };
        }
      };
      const unexpected = (what: string, a: Answer & { kind: 'answer' }): void => void problems.push(`round ${round}: ${what} answered ${a.status} ${a.body}`);

      const create = async (name: string, v: ModelVolume): Promise<Answer> => {
        const tmpfs = random() < 0.4;
        const labels = random() < 0.2 ? null : { round: String(round), n: String(serial++) };
        const a = await send('POST', '/volumes/create', { Name: name, ...(labels === null ? {} : { Labels: labels }), ...(tmpfs ? { DriverOpts: TMPFS } : {}) });
        if (a.kind === 'never-sent') return a;
        if (a.kind === 'lost') {
          // Either the new volume or none (or, if it was there, the old one unchanged).
          if (v.present !== 'yes') Object.assign(v, { present: 'maybe', labels, tmpfs });
          return a;
        }
        if (a.status !== 201) unexpected(`create ${name}`, a);
        // Over an unanswered create that did happen, the first one's volume is answered.
        else if (v.present === 'maybe') Object.assign(v, { present: 'yes', labels: undefined, tmpfs: undefined });
        else if (v.present === 'no') Object.assign(v, { present: 'yes', labels, tmpfs });
        return a;
      };
      const remove = async (name: string, v: ModelVolume): Promise<Answer> => {
        const held = [...v.refs.values()].includes('held');
        const maybeRefs = v.refs.size > 0;
        const a = await send('DELETE', `/volumes/${name}`);
        if (a.kind === 'lost' && !held) v.present = 'maybe';
        if (a.kind !== 'answer') return a;
        if (a.status === 204 && !held) Object.assign(v, { present: 'no', refs: new Map() });
        else if (a.status === 409 && maybeRefs) v.present = 'yes';
        else unexpected(`remove ${name} (refs ${JSON.stringify([...v.refs])})`, a);
        return a;
      };
      const mount = async (name: string, v: ModelVolume): Promise<Answer> => {
        const held = [...v.refs].filter(([, s]) => s === 'held').map(([r]) => r);
        const ref = held.length > 0 && random() < 0.3 ? pick(held) : `ref-${serial++}`;
        const before = v.refs.get(ref);
        v.refs.set(ref, before ?? 'maybe');
        const a = await send('POST', `/volumes/${name}/mount`, { ID: ref });
        if (a.kind === 'never-sent' && before === undefined) v.refs.delete(ref);
        if (a.kind !== 'answer') return a;
        if (a.status === 200) {
          v.refs.set(ref, 'held');
          // Synchronously after the answer (no kill can come in between): the data a holder keeps.
          if (v.tmpfs === true) writeFileSync(join((a.json as { Mountpoint: string }).Mountpoint, MARKER), name, { flag: 'a' });
        } else {
          if (before === undefined) v.refs.delete(ref);
          unexpected(`mount ${name} ${ref}`, a);
        }
        return a;
      };
      const unmount = async (name: string, v: ModelVolume, heldRef: boolean): Promise<Answer> => {
        const held = [...v.refs].filter(([, s]) => s === 'held').map(([r]) => r);
        // An unheld reference: never taken, or taken and released already.
        const ref = heldRef && held.length > 0 ? pick(held) : random() < 0.5 ? `never-${serial++}` : `ref-${Math.floor(random() * serial)}`;
        const state = v.refs.get(ref);
        if (state === 'held') v.refs.set(ref, 'maybe');
        const a = await send('POST', `/volumes/${name}/unmount`, { ID: ref });
        if (a.kind === 'never-sent' && state === 'held') v.refs.set(ref, 'held');
        if (a.kind !== 'answer') return a;
        if (a.status === 204) {
          v.refs.delete(ref);
          if (v.tmpfs === true && [...v.refs.values()].includes('held') && !existsSync(join(live.dataRoot, 'volumes', name, '_data', MARKER))) {
            problems.push(`round ${round}: unmount ${name} ${ref} (${state ?? 'not held'}) took the data of the holders ${JSON.stringify([...v.refs])}`);
          }
        } else {
          if (state === 'held') v.refs.set(ref, 'held');
          unexpected(`unmount ${name} ${ref} (${state ?? 'not held'})`, a);
        }
        return a;
      };
      const prune = async (): Promise<Answer> => {
        const a = await send('POST', `/volumes/prune?filters=${filtersQuery({ all: ['true'] })}`);
        for (const v of model.values()) {
          if (v.present !== 'no' && ![...v.refs.values()].includes('held') && a.kind === 'lost') v.present = 'maybe';
        }
        if (a.kind !== 'answer') return a;
        if (a.status !== 200) {
          unexpected('prune', a);
          return a;
        }
        const deleted = new Set((a.json as { VolumesDeleted: string[] | null }).VolumesDeleted ?? []);
        for (const [name, v] of model) {
          if (deleted.has(name)) {
            if ([...v.refs.values()].includes('held')) problems.push(`round ${round}: prune deleted ${name}, which holds ${JSON.stringify([...v.refs])}`);
            Object.assign(v, { present: 'no', refs: new Map() });
          } else if (v.present === 'yes' && v.refs.size === 0 && v.tmpfs === false) {
            // Prune takes local volumes without driver options (moby): never the tmpfs ones.
            problems.push(`round ${round}: prune left ${name}, which has no references`);
          }
        }
        return a;
      };

      const client = async (): Promise<void> => {
        for (;;) {
          while (pruning) await new Promise((r) => setTimeout(r, 2));
          if (random() < 0.03) {
            pruning = true;
            while (active > 0) await new Promise((r) => setTimeout(r, 2));
            const a = await prune();
            pruning = false;
            if (a.kind !== 'answer') return;
            continue;
          }
          const name = pick(NAMES);
          const v = model.get(name) as ModelVolume;
          if (v.busy) {
            await new Promise((r) => setTimeout(r, 1));
            continue;
          }
          v.busy = true;
          active++;
          const r = random();
          let a: Answer;
          const what = v.present !== 'yes' ? 'create' : r < 0.25 ? 'remove' : r < 0.5 ? 'mount' : r < 0.7 ? 'unmount-held' : r < 0.85 ? 'unmount-unheld' : 'create';
          if (what === 'create') a = await create(name, v);
          else if (what === 'remove') a = await remove(name, v);
          else if (what === 'mount') a = await mount(name, v);
          else a = await unmount(name, v, what === 'unmount-held');
          v.last = `${what} in round ${round}: ${a.kind === 'answer' ? a.status : a.kind}`;
          v.busy = false;
          active--;
          if (a.kind !== 'answer') return;
        }
      };

      const clients = Array.from({ length: CLIENTS }, () => client());
      const delay = 100 + Math.floor(random() * 500);
      await new Promise((resolve) => setTimeout(resolve, delay));
      await live.kill();
      await Promise.all(clients);

      daemon = await Berthd.start({ dir: live.dir });
      const summary = await verify(daemon, model, `round ${round}:`, problems);
      // A clean stop, then the metadata itself: exactly what the API showed.
      await daemon.stop();
      await checkMetadata(daemon, model, `round ${round}:`, problems);
      daemon = await Berthd.start({ dir: live.dir });
      console.info(`fault injection round ${round}: killed after ${delay} ms; ${operations} operations so far; ${summary}; ${context}`);
    }
    expect(operations, context).toBeGreaterThanOrEqual(MIN_OPERATIONS);
    expect(problems, context).toEqual([]);
  });
});

/** Resolves the model to what the restarted daemon has, reporting every answer that did not hold. */
async function verify(daemon: Berthd, model: Map<string, ModelVolume>, tag: string, problems: string[]): Promise<string> {
  const listed = new Map((await listVolumes(daemon)).map((v) => [v.Name, v]));
  const inUse = new Set((await listVolumes(daemon, { dangling: ['false'] })).map((v) => v.Name));
  for (const [name, v] of model) {
    const got = listed.get(name);
    if (got === undefined) {
      if (v.present === 'yes') problems.push(`${tag} ${name} was acknowledged and is gone [last: ${v.last}]`);
      if ([...v.refs.values()].includes('held')) problems.push(`${tag} ${name} is gone while a reference was held [last: ${v.last}]`);
      Object.assign(v, { present: 'no', refs: new Map() });
      continue;
    }
    if (v.present === 'no') problems.push(`${tag} ${name} was removed but is listed [last: ${v.last}]`);
    if (v.present === 'yes' && v.labels !== undefined && canonical(got.Labels) !== canonical(v.labels)) {
      problems.push(`${tag} ${name} has labels ${JSON.stringify(got.Labels)}, expected ${JSON.stringify(v.labels)} [last: ${v.last}]`);
    }
    v.present = 'yes';
    v.labels = got.Labels;
    v.tmpfs = got.Options?.['type'] === 'tmpfs';

    let refs: string[] = [];
    if (inUse.has(name)) {
      const res = await call(daemon, { method: 'DELETE', path: `/volumes/${name}?force=1` });
      const m = /^remove .+: volume is in use - \[(.*)\]$/.exec((res.json as { message?: string } | undefined)?.message ?? '');
      if (res.status !== 409 || m === null) problems.push(`${tag} DELETE of in-use ${name} answered ${res.status} ${res.body}`);
      else refs = (m[1] as string).split(', ');
    }
    const wasHeld = [...v.refs.values()].includes('held');
    for (const [ref, state] of v.refs) if (state === 'held' && !refs.includes(ref)) problems.push(`${tag} ${name} lost its held reference ${ref} [last: ${v.last}]`);
    for (const ref of refs) if (!v.refs.has(ref)) problems.push(`${tag} ${name} holds ${ref}, never taken or already released [last: ${v.last}]`);
    v.refs = new Map(refs.map((r) => [r, 'held']));

    if (v.tmpfs) {
      const data = join(daemon.dataRoot, 'volumes', name, '_data');
      const mounted = mountPointsUnder(data).length > 0;
      if (mounted !== refs.length > 0) problems.push(`${tag} ${name} is ${mounted ? '' : 'not '}mounted with references ${JSON.stringify(refs)} [last: ${v.last}]`);
      if (mounted && wasHeld && !existsSync(join(data, MARKER))) problems.push(`${tag} ${name} lost the data its holders wrote [last: ${v.last}]`);
      // References that were unanswered before the kill are held now: their data from here on.
      if (mounted) writeFileSync(join(data, MARKER), name, { flag: 'a' });
    }
  }
  const disk = await diskMatchesApi(daemon);
  for (const p of disk.problems) problems.push(`${tag} ${p}`);
  const present = [...model].filter(([, v]) => v.present === 'yes');
  return `${present.length} volumes, ${present.filter(([, v]) => v.refs.size > 0).length} held, ${present.filter(([, v]) => v.tmpfs).length} tmpfs`;
}

/** Labels as text that does not depend on key order (the API answers Go's sorted order, the store keeps the client's). */
function canonical(labels: unknown): string {
  if (labels === null || typeof labels !== 'object') return JSON.stringify(labels);
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** After a clean stop: the records are the volumes the API listed, with their labels and references. */
async function checkMetadata(daemon: Berthd, model: Map<string, ModelVolume>, tag: string, problems: string[]): Promise<void> {
  const store = await SqliteMetadataStore.open(metadataPath(daemon.dataRoot));
  let records: VolumeRecord[];
  try {
    records = await store.list();
  } finally {
    await store.close();
  }
  const shown = (r: { name: string; labels: unknown; refs: readonly string[]; pending?: boolean }): string =>
    JSON.stringify([r.name, canonical(r.labels), [...r.refs].sort(), r.pending ?? false]);
  const inStore = records.map(shown).sort();
  const expected = [...model]
    .filter(([, v]) => v.present === 'yes')
    .map(([name, v]) => shown({ name, labels: v.labels, refs: [...v.refs.keys()] }))
    .sort();
  if (JSON.stringify(inStore) !== JSON.stringify(expected)) {
    problems.push(`${tag} the metadata holds ${JSON.stringify(inStore.filter((r) => !expected.includes(r)))} beyond and misses ${JSON.stringify(expected.filter((r) => !inStore.includes(r)))}`);
  }
}
