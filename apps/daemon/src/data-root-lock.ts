import { spawnSync } from 'node:child_process';
import { closeSync, constants, existsSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError, conflict } from '@berth/errdefs';

/** util-linux's `flock`, where Debian puts it (as `/bin/mount` for mounts), whatever berthd's PATH; else from PATH. */
const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((path) => existsSync(path)) ?? 'flock';

/** The lock file in the data-root; it holds the PID of the berthd that holds the lock. */
export const DATA_ROOT_LOCK_FILE = 'berthd.lock';

/**
 * The exclusive lock a berthd holds on its data-root for as long as it runs, as dockerd holds its
 * bolt files: `flock(2)` on `<data-root>/berthd.lock`. A second berthd on the same data-root is
 * refused (`data-root <dir> is in use by another berthd (PID <n>)`) before it touches anything.
 *
 * Node has no `flock`; `flock(1)` (util-linux) takes it for us. A flock belongs to the *open file
 * description*, not to the process: the lock file is opened here (close-on-exec, as every file Node
 * opens) and handed to `flock --nonblock --exclusive 3` as its fd 3; the lock it takes stays on the
 * description that berthd's descriptor still holds after `flock` exits, and the kernel drops it
 * when berthd's descriptor closes, at `release()` or when the process dies, `kill -9` included:
 * there is never a stale lock. No other child inherits the descriptor.
 */
export class DataRootLock {
  readonly path: string;
  #fd: number | undefined;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#fd = fd;
  }

  static acquire(dataRoot: string, pid: number = process.pid): DataRootLock {
    const path = join(dataRoot, DATA_ROOT_LOCK_FILE);
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EROFS') throw new BerthError('system', `data-root ${dataRoot} is on a read-only file system`, { cause: err });
      throw new BerthError('system', `cannot open the lock file of the data-root: ${(err as Error).message}`, { cause: err });
    }
    try {
      const flock = spawnSync(FLOCK, ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], encoding: 'utf8' });
      if (flock.error !== undefined) {
        const missing = (flock.error as NodeJS.ErrnoException).code === 'ENOENT';
        throw new BerthError('system', `cannot lock the data-root: ${missing ? 'flock(1) from util-linux is not installed' : flock.error.message}`);
      }
      if (flock.status === 1) {
        const holder = readFileSync(path, 'utf8').trim();
        throw conflict(`data-root ${dataRoot} is in use by another berthd (PID ${/^\d+$/.test(holder) ? holder : 'unknown'})`);
      }
      if (flock.status !== 0) throw new BerthError('system', `cannot lock the data-root: flock: ${flock.stderr.trim() || `exit status ${String(flock.status)}`}`);
      recordHolder(fd, pid);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new DataRootLock(path, fd);
  }

  /** Drops the lock (the file stays: removing it would let two daemons lock two different files). */
  release(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/**
 * Writes the PID over the previous one, padded to a fixed width: the file keeps its size and its
 * one block, so that a berthd can still start (and say who holds the lock) on a full disk. On a
 * full disk that never held a PID the lock is held all the same, its holder then unknown.
 */
function recordHolder(fd: number, pid: number): void {
  const text = `${String(pid).padEnd(HOLDER_WIDTH - 1)}\n`;
  try {
    writeSync(fd, text, 0);
    ftruncateSync(fd, HOLDER_WIDTH);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
  }
}

const HOLDER_WIDTH = 16;
