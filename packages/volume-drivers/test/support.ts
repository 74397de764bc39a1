import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import type { Logger } from '@berth/logger';
import { parseMountInfo, type MountInfo } from '../src/mountinfo.js';
import type { Mounter, MountRequest } from '../src/mounter.js';

export const isRoot = process.getuid?.() === 0;

/** A fresh directory under the OS temp dir (symlinks resolved, so mountinfo paths compare equal). */
export async function makeTempDir(): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), 'berth-volume-drivers-')));
}

export async function mountsUnder(dir: string): Promise<MountInfo[]> {
  const mounts = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
  return mounts.filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(dir + sep));
}

/** Unmounts whatever a test left mounted below `dir` (deepest first), then deletes it. */
export async function removeTempDir(dir: string): Promise<void> {
  if (process.platform === 'linux') {
    const mounts = (await mountsUnder(dir)).map((m) => m.mountPoint).sort((a, b) => b.length - a.length);
    for (const mountPoint of mounts) execFileSync('/bin/umount', ['-l', '--', mountPoint]);
  }
  await rm(dir, { recursive: true, force: true });
}

export interface LogEntry {
  level: keyof Logger;
  message: string;
  fields: Record<string, unknown> | undefined;
}

export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const log =
    (level: keyof Logger) =>
    (message: string, fields?: Record<string, unknown>): void =>
      void entries.push({ level, message, fields });
  return { entries, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** An in-memory mount table, for what does not need the kernel. */
export class FakeMounter implements Mounter {
  readonly table = new Map<string, MountRequest>();
  readonly calls: string[] = [];
  failWith: string | undefined;
  /** When set, mounts wait for it before completing. */
  gate: Promise<void> | undefined;

  async mount(request: MountRequest): Promise<void> {
    this.calls.push(`mount ${request.target}`);
    await this.gate;
    if (this.failWith !== undefined) throw new Error(this.failWith);
    this.table.set(request.target, request);
  }

  async unmount(target: string): Promise<void> {
    this.calls.push(`unmount ${target}`);
    if (!this.table.delete(target)) throw new Error(`umount: ${target}: not mounted.`);
  }

  async mounts(): Promise<MountInfo[]> {
    return [...this.table.values()].map((r) => ({
      mountPoint: r.target,
      fsType: r.type,
      source: r.device,
      mountOptions: 'rw',
      superOptions: r.options,
    }));
  }
}
