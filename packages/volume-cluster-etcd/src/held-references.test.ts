import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noopLogger, type Logger } from '@berth/logger';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HELD_REFERENCES_FILE, HeldReferenceFile } from './held-references.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-held-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('HeldReferenceFile', () => {
  it('keeps references and the lease across a reopen, in one readable file', async () => {
    const held = await HeldReferenceFile.open(join(dir, 'cluster'), noopLogger);
    await Promise.all([held.add('v', 'gfs', 'r1'), held.add('v', 'gfs', 'r2'), held.add('w', 'nfs', 'r3'), held.setLease('42')]);
    expect(await held.remove('v', 'r1')).toBe(true);
    expect(await held.remove('v', 'nope')).toBe(false);
    await held.drop('w');

    const again = await HeldReferenceFile.open(join(dir, 'cluster'), noopLogger);
    expect(again.lease).toBe('42');
    expect(again.snapshot()).toEqual(new Map([['v', { driver: 'gfs', refs: ['r2'] }]]));
    expect(JSON.parse(await readFile(join(dir, 'cluster', HELD_REFERENCES_FILE), 'utf8'))).toEqual({ version: 1, lease: '42', volumes: { v: { driver: 'gfs', refs: ['r2'] } } });
    expect(await readdir(join(dir, 'cluster'))).toEqual([HELD_REFERENCES_FILE]); // no temp files left
  });

  it('moves an unreadable file aside and starts holding nothing, with a warning', async () => {
    await writeFile(join(dir, HELD_REFERENCES_FILE), '{"version":1,"volumes":{"v":{"driver":3}}}');
    const warnings: string[] = [];
    const logger: Logger = { ...noopLogger, warn: (message) => void warnings.push(message) };
    const held = await HeldReferenceFile.open(dir, logger);
    expect(held.snapshot().size).toBe(0);
    expect(warnings).toEqual(['The references this host held on global volumes could not be read; starting without them']);
    expect((await readdir(dir)).filter((f) => f.startsWith(`${HELD_REFERENCES_FILE}.unreadable-`))).toHaveLength(1);
  });
});
