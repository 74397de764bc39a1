import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { conflict } from '@berth/errdefs';

/**
 * Makes `path` free to listen on: creates its directory, and removes a socket left behind by a
 * daemon that is gone. A socket some process still accepts connections on is never taken over,
 * and neither is anything that is not a socket.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stats.isSocket()) throw conflict(`${path} exists and is not a socket`);
  if (await isAnswering(path)) throw conflict(`another daemon is already listening on ${path}`);
  await unlink(path);
}

/** Docker's socket convention: mode 0660, group-owned by the daemon's socket group when there is one. */
export async function secureSocket(path: string, gid: number | undefined): Promise<void> {
  await chmod(path, 0o660);
  if (gid !== undefined) await chown(path, process.getuid?.() ?? 0, gid);
}

function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    // A daemon too busy to accept within this time still owns the socket.
    const timer = setTimeout(() => finish(true), 2000);
    const finish = (live: boolean, err?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err === undefined) resolve(live);
      else reject(err);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') finish(false);
      else finish(false, err);
    });
  });
}
