import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The daemon's persistent identity (`docker info` ID), kept in `<data-root>/engine-id` as dockerd does. */
export async function loadOrCreateEngineId(dataRoot: string): Promise<string> {
  const path = join(dataRoot, 'engine-id');
  try {
    const id = (await readFile(path, 'utf8')).trim();
    if (id !== '') return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomUUID();
  await writeFile(path, id, { mode: 0o600 });
  return id;
}
