import { createHash } from 'node:crypto';
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parsePluginConfig, type PluginConfig } from '@berth/plugin-store';

/** A small volume plugin's config asking for privileges of every kind that shows. */
export const SAMPLE_CONFIG_JSON = {
  Description: 'sample volume plugin',
  Documentation: 'https://example.invalid/doc',
  Entrypoint: ['/bin/sample', '--serve'],
  Interface: { Types: ['docker.volumedriver/1.0'], Socket: 'sample.sock' },
  Network: { Type: 'host' },
  Mounts: [{ Name: 'state', Source: '/var/lib/sample', Destination: '/state', Type: 'bind', Options: ['rbind'] }],
  Linux: { Capabilities: ['CAP_SYS_ADMIN'], Devices: [{ Path: '/dev/fuse' }] },
  Env: [{ Name: 'DEBUG', Settable: ['value'], Value: '0' }],
  PropagatedMount: '/data',
};

export function sampleConfig(): PluginConfig {
  return parsePluginConfig(JSON.stringify(SAMPLE_CONFIG_JSON));
}

/** A few files, a nested directory, an empty one, a symlink and a hard link. */
export async function makeRootfs(dir: string, extra: Record<string, string | Buffer> = {}): Promise<void> {
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'etc/sample/conf.d'), { recursive: true });
  await mkdir(path.join(dir, 'data'), { recursive: true });
  await mkdir(path.join(dir, 'run/docker/plugins'), { recursive: true });
  await writeFile(path.join(dir, 'bin/sample'), '#!/bin/sh\necho sample\n');
  await chmod(path.join(dir, 'bin/sample'), 0o755);
  await writeFile(path.join(dir, 'etc/sample/sample.conf'), 'level = 3\n');
  await writeFile(path.join(dir, 'etc/sample/conf.d/secret'), 'x');
  await chmod(path.join(dir, 'etc/sample/conf.d/secret'), 0o600);
  await symlink('../etc/sample/sample.conf', path.join(dir, 'bin/conf'));
  await symlink('/bin/sample', path.join(dir, 'bin/abs-link'));
  await link(path.join(dir, 'bin/sample'), path.join(dir, 'bin/sample-hardlink'));
  for (const [name, content] of Object.entries(extra)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  const when = new Date('2024-01-02T03:04:05Z');
  await utimes(path.join(dir, 'etc/sample/sample.conf'), when, when);
}

export interface TreeEntry {
  type: 'dir' | 'file' | 'symlink';
  mode: number;
  sha256?: string;
  target?: string;
  /** Files sharing an inode share this (the first path of the group). */
  inode?: string;
  mtime?: number;
}

/** Everything about a tree that a layer round trip must keep, keyed by relative path. */
export async function snapshot(dir: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const inodes = new Map<number, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(dir, childRel);
      const info = await lstat(full);
      const mode = info.mode & 0o7777;
      if (info.isDirectory()) {
        out[childRel] = { type: 'dir', mode };
        await walk(childRel);
      } else if (info.isSymbolicLink()) {
        out[childRel] = { type: 'symlink', mode: 0, target: await readlink(full) };
      } else {
        const first = inodes.get(info.ino) ?? childRel;
        inodes.set(info.ino, first);
        out[childRel] = {
          type: 'file',
          mode,
          sha256: createHash('sha256').update(await readFile(full)).digest('hex'),
          inode: first,
          mtime: Math.floor(info.mtimeMs / 1000),
        };
      }
    }
  };
  await walk('');
  return out;
}
