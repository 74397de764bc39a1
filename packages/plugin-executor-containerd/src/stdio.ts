import { execFile } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { BerthError } from '@berth/errdefs';
import type { Logger } from '@berth/logger';

const run = promisify(execFile);

export interface FifoPaths {
  stdout: string;
  stderr: string;
}

/** moby's naming: `<bundle>/<id>-stdout`, `<bundle>/<id>-stderr`. */
export function fifoPaths(dir: string, id: string): FifoPaths {
  return { stdout: join(dir, `${id}-stdout`), stderr: join(dir, `${id}-stderr`) };
}

/** Makes fresh FIFOs (a stale one from an earlier run may still be held open by a dead shim). */
export async function makeFifos(dir: string, id: string): Promise<FifoPaths> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = fifoPaths(dir, id);
  for (const path of [paths.stdout, paths.stderr]) {
    await rm(path, { force: true });
    // Node has no mkfifo(3).
    try {
      await run('mkfifo', ['-m', '0600', path]);
    } catch (err) {
      throw new BerthError('system', `mkfifo ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  return paths;
}

export async function removeFifos(paths: FifoPaths): Promise<void> {
  await Promise.all([rm(paths.stdout, { force: true }), rm(paths.stderr, { force: true })]);
}

/**
 * The daemon's read ends of a task's stdout and stderr FIFOs, copied into the caller's streams.
 *
 * Each FIFO is opened O_RDONLY|O_NONBLOCK and read through a `net.Socket`, so reads are polled by
 * libuv instead of parking a thread-pool thread. The caller's stream is ended when its FIFO reaches
 * EOF, which is when the shim has closed its write end: the process is gone and all its output was
 * delivered (moby closes the writers at the same point).
 */
export class TaskStdio {
  readonly paths: FifoPaths;
  readonly #sockets: Socket[] = [];
  readonly #keepers: number[] = [];
  readonly #eof: Promise<void>;

  /**
   * @param holdOpen keep a write end open of our own until `release()`: a reader with no writer
   *   sees EOF at once, and the shim opens its write end only during Tasks.Create.
   */
  constructor(paths: FifoPaths, streams: { stdout: Writable; stderr: Writable }, logger: Logger, holdOpen: boolean) {
    this.paths = paths;
    const ends: Array<Promise<void>> = [];
    try {
      for (const [path, dest] of [
        [paths.stdout, streams.stdout],
        [paths.stderr, streams.stderr],
      ] as const) {
        const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
        if (holdOpen) {
          try {
            this.#keepers.push(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
          } catch (err) {
            closeSync(fd);
            throw err;
          }
        }
        const socket = new Socket({ fd, readable: true, writable: false });
        socket.on('error', (err) => logger.warn('reading task output failed', { path, error: err.message }));
        ends.push(new Promise((resolve) => socket.once('close', () => resolve())));
        socket.pipe(dest);
        this.#sockets.push(socket);
      }
    } catch (err) {
      this.close();
      throw BerthError.from(err);
    }
    this.#eof = Promise.all(ends).then(() => undefined);
  }

  /** Drops our own write ends once the shim holds its own. */
  release(): void {
    for (const fd of this.#keepers.splice(0)) closeSync(fd);
  }

  /** Waits until both FIFOs reached EOF, at most `timeoutMs`; true if they did. */
  async drained(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.#eof.then(() => true as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops reading. The caller's streams are left open, so output can be re-attached elsewhere. */
  close(): void {
    this.release();
    for (const socket of this.#sockets) {
      socket.unpipe();
      socket.destroy();
    }
  }
}
