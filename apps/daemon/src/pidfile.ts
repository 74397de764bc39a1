import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { conflict } from '@berth/errdefs';
import { processAlive } from '@berth/host';

/**
 * The daemon's pidfile: taken at start, refused while another live process holds it (a stale one
 * is replaced), removed at shutdown if it is still ours.
 */
export class PidFile {
  readonly path: string;
  readonly #pid: number;

  private constructor(path: string, pid: number) {
    this.path = path;
    this.#pid = pid;
  }

  static async acquire(path: string, pid: number = process.pid): Promise<PidFile> {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    // Written aside and linked into place, so nobody ever reads a half-written pidfile.
    const staged = `${path}.${pid}.tmp`;
    await writeFile(staged, String(pid), { mode: 0o644 });
    try {
      for (;;) {
        try {
          await link(staged, path);
          return new PidFile(path, pid);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const holder = await readPid(path);
        if (holder !== undefined && holder !== pid && processAlive(holder)) {
          throw conflict(`failed to start daemon, ensure berthd is not running or delete ${path}: process with PID ${holder} is still running`);
        }
        await unlink(path).catch(ignoreMissing);
      }
    } finally {
      await unlink(staged).catch(ignoreMissing);
    }
  }

  async release(): Promise<void> {
    if ((await readPid(this.path)) === this.#pid) await unlink(this.path).catch(ignoreMissing);
  }
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    ignoreMissing(err);
    return undefined;
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
