import { readFileSync } from 'node:fs';

/** One line of `/proc/self/mountinfo`. */
export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-mount options, e.g. `rw,relatime`. */
  mountOptions: string;
  /** File-system options, e.g. `rw,size=1024k`. */
  superOptions: string;
}

export const PROC_MOUNTINFO = '/proc/self/mountinfo';

/** Parses mountinfo text (proc(5)); malformed lines are skipped. */
export function parseMountInfo(text: string): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 4) continue;
    mounts.push({
      mountPoint: unescapeOctal(fields[4] ?? ''),
      mountOptions: fields[5] ?? '',
      fsType: unescapeOctal(fields[dash + 1] ?? ''),
      source: unescapeOctal(fields[dash + 2] ?? ''),
      superOptions: fields[dash + 3] ?? '',
    });
  }
  return mounts;
}

// The kernel writes space, tab, newline and backslash as \ooo.
function unescapeOctal(value: string): string {
  return value.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The mounts of this process's mount namespace. Read in place: procfs generates the text from
 * memory without touching a disk, and an asynchronous read costs five thread-pool round trips
 * (open, fstat, read, read, close) on every volume remove.
 */
export async function readMountInfo(file: string = PROC_MOUNTINFO): Promise<MountInfo[]> {
  return parseMountInfo(readFileSync(file, 'utf8'));
}
