import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { system } from '@berth/errdefs';
import type { Logger } from '@berth/logger';

/** The directory of a volume that holds its data. */
export const VOLUME_DATA_DIR = '_data';

const SPARE_PREFIX = 'spare-';
const NEW_PREFIX = 'new-';
const REMOVING_DIR = 'removing';

/** A spare taken by a create: renamed away by it, then replaced (`refill`), or given up (`discard`). */
export interface Spare {
  readonly path: string;
  /** Makes a new spare where this one was; resolves once it is ready (or could not be made: logged). */
  refill(): Promise<void>;
  /** For a spare the create did not rename away: removes what is left of it and makes a new one. */
  discard(): Promise<void>;
}

type SlotState = 'ready' | 'busy' | 'empty';

/**
 * The local driver's staging area: a directory on the file system of the volumes root but outside
 * it (by default `<root>-staging`, i.e. `<data-root>/volumes-staging`), so that neither berth's scan
 * of the root nor a dockerd's ever takes anything in it for a volume. In it:
 *
 * - **spares**, `spare-<k>`: empty volume directories (0701, holding `_data` 0755), made ahead of
 *   the creates that take them, so that a create renames one into the root instead of allocating
 *   two directories on its path. Each create that takes one makes it again (in the background of
 *   its own commit: the caller waits for both), so the set of spares is the same whenever no create
 *   is in flight. Spares left by a previous run are kept when whole, remade otherwise.
 * - `new-<n>`: a volume built here when no spare was ready.
 * - **tombstones**, `removing/<volume name>`: a removed volume is renamed here before its record is
 *   deleted, and taken apart after. One found at start names a remove that was cut short: see
 *   {@link StagingArea.wasBeingRemoved}.
 *
 * Everything but whole spares is deleted when the area is opened.
 */
export class StagingArea {
  readonly dir: string;
  readonly #removing: string;
  readonly #logger: Logger;
  readonly #slots: SlotState[];
  /** Volumes whose tombstones were found at start (their removal was cut short). */
  readonly #interrupted: Set<string>;
  #serial = 0;

  private constructor(dir: string, spares: number, interrupted: Set<string>, logger: Logger) {
    this.dir = dir;
    this.#removing = join(dir, REMOVING_DIR);
    this.#slots = Array.from({ length: spares }, () => 'empty');
    this.#interrupted = interrupted;
    this.#logger = logger;
  }

  /**
   * Opens (creating it 0700 if needed) the area for the volumes root `root`. `undefined`, logged,
   * when it is not a directory on the root's file system (a volume could not be renamed between
   * the two): the driver then stages inside the root, as berth did before.
   */
  static async open(options: { root: string; dir: string; spares: number; logger: Logger }): Promise<StagingArea | undefined> {
    const { root, dir, logger } = options;
    try {
      await mkdir(join(dir, REMOVING_DIR), { recursive: true, mode: 0o700 });
      const own = lstatSync(dir);
      if (!own.isDirectory()) throw new Error('not a directory');
      if (own.dev !== statSync(root).dev) throw new Error(`not on the file system of ${root}`);
    } catch (err) {
      logger.warn('cannot use the staging directory of the local volumes; staging inside the volumes root', { path: dir, error: String(err) });
      return undefined;
    }
    const interrupted = new Set<string>();
    const area = new StagingArea(dir, Math.max(0, Math.floor(options.spares)), interrupted, logger);
    const leftovers: string[] = [];
    for (const name of readdirSync(area.#removing)) {
      interrupted.add(name);
      leftovers.push(join(area.#removing, name));
    }
    for (const entry of readdirSync(dir)) {
      if (entry === REMOVING_DIR) continue;
      const slot = entry.startsWith(SPARE_PREFIX) ? Number(entry.slice(SPARE_PREFIX.length)) : Number.NaN;
      if (Number.isInteger(slot) && slot >= 0 && slot < area.#slots.length && String(slot) === entry.slice(SPARE_PREFIX.length) && isWholeSpare(join(dir, entry))) {
        area.#slots[slot] = 'ready';
      } else {
        leftovers.push(join(dir, entry));
      }
    }
    if (leftovers.length > 0) logger.info('removing what interrupted volume creates and removes left behind', { paths: leftovers });
    // `rm` removes a symlink, never what it points to.
    await Promise.all(
      leftovers.map((path) => rm(path, { recursive: true, force: true }).catch((err: unknown) => logger.warn('cannot remove leftover volume directory', { path, error: String(err) }))),
    );
    await Promise.all(area.#slots.map((state, slot) => (state === 'empty' ? area.#fill(slot) : undefined)));
    return area;
  }

  /**
   * Whether a tombstone of `name` was found at start: its remove was cut short after the volume's
   * directory left the root, so a record of it outlived the directory. Answered once per name.
   */
  wasBeingRemoved(name: string): boolean {
    return this.#interrupted.delete(name);
  }

  /** A ready spare, marked taken; `undefined` when none is ready. */
  takeSpare(): Spare | undefined {
    const slot = this.#slots.indexOf('ready');
    if (slot === -1) return undefined;
    this.#slots[slot] = 'busy';
    const path = this.#sparePath(slot);
    return {
      path,
      refill: () => this.#fill(slot),
      discard: async () => {
        await rm(path, { recursive: true, force: true }).catch(() => undefined);
        await this.#fill(slot);
      },
    };
  }

  /**
   * Makes again a spare that could not be made before (a full disk, say), if any: for a create
   * that found none ready. Resolves once it is made or failed.
   */
  refillOne(): Promise<void> {
    const slot = this.#slots.indexOf('empty');
    return slot === -1 ? Promise.resolve() : this.#fill(slot);
  }

  /** A fresh path in the area to build one volume in, when no spare was ready. */
  newPath(): string {
    return join(this.dir, `${NEW_PREFIX}${this.#serial++}`);
  }

  /** Where the directory of volume `name` goes while it is removed. */
  tombstonePath(name: string): string {
    return join(this.#removing, name);
  }

  #sparePath(slot: number): string {
    return join(this.dir, `${SPARE_PREFIX}${slot}`);
  }

  /**
   * Makes spare `slot`. In place, on the event loop, once the current turn of it is over (so the
   * create that took the spare has its commit and sync under way first): `mkdir` costs system time
   * rather than waiting on the disk, and on the thread pool it queued the syncs of other creates
   * behind it (measured 16 at a time: 1,609 creates/s and 613 µs of CPU each on the pool, 2,248/s
   * and 467 µs in place; load 3.5).
   */
  async #fill(slot: number): Promise<void> {
    this.#slots[slot] = 'busy';
    const path = this.#sparePath(slot);
    try {
      await new Promise((resolve) => setImmediate(resolve));
      makeVolumeDirsSync(path);
      this.#slots[slot] = 'ready';
    } catch (err) {
      this.#logger.debug('cannot make a spare volume directory', { path, error: String(err) });
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
      this.#slots[slot] = 'empty';
    }
  }
}

/**
 * Makes a new directory `dir` (0701) and its `_data` (0755), whatever the umask, in place (see
 * `StagingArea#fill` for why). Errors read as moby's, naming the volume's paths (`named`; the
 * spare's own by default).
 */
export function makeVolumeDirsSync(dir: string, named: { rootPath: string; dataPath: string } = { rootPath: dir, dataPath: join(dir, VOLUME_DATA_DIR) }): void {
  try {
    mkdirSync(dir, { mode: 0o701 });
    chmodSync(dir, 0o701);
  } catch (err) {
    throw system(`error while creating volume root path '${named.rootPath}': ${(err as Error).message}`, { cause: err });
  }
  const data = join(dir, VOLUME_DATA_DIR);
  try {
    mkdirSync(data, { mode: 0o755 });
    chmodSync(data, 0o755);
  } catch (err) {
    throw system(`error while creating volume data path '${named.dataPath}': ${(err as Error).message}`, { cause: err });
  }
}

/** A spare as {@link makeVolumeDirs} makes it and nobody changed: `_data` alone in it, empty, modes as made. */
function isWholeSpare(dir: string): boolean {
  try {
    const own = lstatSync(dir);
    const data = lstatSync(join(dir, VOLUME_DATA_DIR));
    return (
      own.isDirectory() &&
      (own.mode & 0o7777) === 0o701 &&
      data.isDirectory() &&
      (data.mode & 0o7777) === 0o755 &&
      own.uid === data.uid &&
      own.uid === process.getuid?.() &&
      readdirSync(dir).length === 1 &&
      readdirSync(join(dir, VOLUME_DATA_DIR)).length === 0
    );
  } catch {
    return false;
  }
}
