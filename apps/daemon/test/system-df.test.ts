import { execFileSync } from 'node:child_process';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Berthd, describeWithDocker, type ExecResult } from './harness.js';

/**
 * `docker system df` (plain, `-v`, `--format json`) and the other listings a user runs against a
 * daemon, with the real docker CLI: volumes with their sizes and links, figures that agree with
 * `du`; empty images, containers, networks and build cache; `docker run` refused with berth's 501.
 */

/** go-units' `HumanSize`, as the docker CLI prints sizes: decimal units, 4 significant digits. */
function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < units.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${Number(size.toPrecision(4))}${units[unit]}`;
}

/**
 * The bytes `du -b` counts for what a directory holds: its files, symlinks as themselves, hard links
 * once, and not the directories' own entries (which moby's `directory.Size` leaves out too); with
 * the figure `du -sb` gives for the whole tree, directories included.
 */
function du(dir: string): { files: number; withDirectories: number } {
  const files = execFileSync('sh', ['-c', 'find "$1" ! -type d -print0 | du -cb --files0-from=- | tail -n 1', 'du', dir], { encoding: 'utf8' });
  const all = execFileSync('du', ['-sb', dir], { encoding: 'utf8' });
  return { files: Number(files.split('\t')[0]), withDirectories: Number(all.split('\t')[0]) };
}

interface DfVolume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  Labels: Record<string, string> | null;
  UsageData: { Size: number; RefCount: number };
}

describeWithDocker('docker system df and the empty listings, with the docker CLI', () => {
  let daemon: Berthd;
  const docker = (...args: string[]): Promise<ExecResult> => daemon.docker(args);
  const mountpoint = (name: string): string => join(daemon.dataRoot, 'volumes', name, '_data');

  beforeAll(async () => {
    daemon = await Berthd.start();
    for (const args of [['big'], ['small', '--label', 'b=2', '--label', 'a=1'], ['empty'], ['ram', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=1m']]) {
      const created = await docker('volume', 'create', ...args.slice(1), args[0] as string);
      expect(created.code, created.stderr).toBe(0);
    }
    const big = mountpoint('big');
    await mkdir(join(big, 'dir', 'deeper'), { recursive: true });
    await writeFile(join(big, 'one'), Buffer.alloc(123_457, 1));
    await writeFile(join(big, 'dir', 'deeper', 'two'), Buffer.alloc(4_321, 2));
    await link(join(big, 'one'), join(big, 'dir', 'same-as-one'));
    await symlink('one', join(big, 'link'));
    await writeFile(join(mountpoint('small'), 'note'), 'hello\n');
    expect((await daemon.http({ method: 'POST', path: '/volumes/big/mount', body: { ID: 'job-1' } })).status).toBe(200);
    expect((await daemon.http({ method: 'POST', path: '/volumes/big/mount', body: { ID: 'job-2' } })).status).toBe(200);
  });

  afterAll(async () => {
    await daemon.cleanup();
  });

  it('serves GET /system/df: every volume with the size du counts and its references; the rest empty', async () => {
    const res = await daemon.http({ path: '/system/df' });
    expect(res.status).toBe(200);
    const body = res.json as { LayersSize: number; Images: unknown[]; Containers: unknown[]; BuildCache: unknown[]; Volumes: DfVolume[] };
    expect(Object.keys(body)).toEqual(['LayersSize', 'Images', 'Containers', 'Volumes', 'BuildCache']);
    expect(body).toMatchObject({ LayersSize: 0, Images: [], Containers: [], BuildCache: [] });
    const sizes = Object.fromEntries(body.Volumes.map((v) => [v.Name, v.UsageData]));
    const big = du(mountpoint('big'));
    expect(big.files).toBe(123_457 + 4_321 + 'one'.length);
    expect(big.withDirectories).toBeGreaterThan(big.files);
    expect(sizes).toEqual({
      big: { Size: big.files, RefCount: 2 },
      small: { Size: du(mountpoint('small')).files, RefCount: 0 },
      empty: { Size: 0, RefCount: 0 },
      // Mounted from a device when used: not berth's disk, and not walked (moby leaves such volumes out).
      ram: { Size: -1, RefCount: 0 },
    });
    // Go's map order in the body itself.
    expect(res.body).toContain('"Labels":{"a":"1","b":"2"}');
    expect(res.body).toContain('"Options":{"device":"tmpfs","o":"size=1m","type":"tmpfs"}');

    // `type` (API 1.42+) picks the objects; before 1.42 it is ignored, as in moby.
    expect((await daemon.http({ path: '/system/df?type=volume' })).json).toMatchObject({ LayersSize: 0, Images: null, Containers: null, BuildCache: null });
    expect((await daemon.http({ path: '/system/df?type=image&type=container' })).json).toEqual({ LayersSize: 0, Images: [], Containers: [], Volumes: null, BuildCache: null });
    expect((await daemon.http({ path: '/v1.41/system/df?type=image' })).json).toMatchObject({ Volumes: expect.any(Array), BuildCache: [] });
    expect((await daemon.http({ path: '/system/df?type=layers' })).json).toEqual({ message: 'unknown object type: layers' });
  });

  it('docker system df -v lists every volume with its links and size', async () => {
    const out = await docker('system', 'df', '-v');
    expect(out.code, out.stderr).toBe(0);
    const section = out.stdout.split('Local Volumes space usage:')[1]?.split('Build cache usage:')[0] ?? '';
    const rows = section
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/));
    expect(rows).toEqual([
      ['big', '2', humanSize(du(mountpoint('big')).files)],
      ['empty', '0', '0B'],
      ['ram', '0', '-1B'],
      ['small', '0', humanSize(du(mountpoint('small')).files)],
    ]);
    expect(out.stdout).toContain('Build cache usage: 0B');
  });

  it('docker system df and docker system df --format json sum the volumes and show nothing else', async () => {
    const table = await docker('system', 'df');
    expect(table.code, table.stderr).toBe(0);
    const total = du(mountpoint('big')).files + du(mountpoint('small')).files;
    const json = await docker('system', 'df', '--format', 'json');
    expect(json.code, json.stderr).toBe(0);
    const lines = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(lines.map((l) => [l.Type, l.TotalCount, l.Active, l.Size])).toEqual([
      ['Images', '0', '0', '0B'],
      ['Containers', '0', '0', '0B'],
      ['Local Volumes', '4', '1', humanSize(total)],
      ['Build Cache', '0', '0', '0B'],
    ]);
    expect(table.stdout).toMatch(new RegExp(`^Local Volumes\\s+4\\s+1\\s+${humanSize(total).replace('.', '\\.')}\\s`, 'm'));
  });

  it('docker ps -a, images and network ls list nothing, and exit 0', async () => {
    for (const [args, header] of [
      [['ps', '-a'], /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/],
      [['images'], /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/],
      [['network', 'ls'], /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/],
    ] as const) {
      const out = await docker(...args);
      expect([args, out.code, out.stderr]).toEqual([args, 0, '']);
      expect(out.stdout.trimEnd().split('\n')).toHaveLength(1);
      expect(out.stdout.trimEnd()).toMatch(header);
    }
    expect(await docker('ps', '-aq', '--filter', 'label=com.docker.compose.project=x')).toEqual({ code: 0, stdout: '', stderr: '' });
    expect((await docker('ps', '--filter', 'status=sleeping')).stderr).toContain("invalid filter 'status=sleeping'");
  });

  it('docker run is refused with berth’s message and a non-zero exit; lookups say what is not there', async () => {
    const run = await docker('run', '--rm', 'busybox', 'true');
    expect(run.code).toBe(125);
    expect(run.stderr).toContain('docker: Error response from daemon: berthd manages volumes and plugins only: POST /containers/create is not supported');
    const pull = await docker('pull', 'busybox');
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain('berthd manages volumes and plugins only: POST /images/create is not supported');
    const network = await docker('network', 'create', 'n1');
    expect(network.stderr).toContain('berthd manages volumes and plugins only: POST /networks/create is not supported');
    expect((await docker('inspect', '--type', 'container', 'web')).stderr).toContain('No such container: web');
    expect((await docker('image', 'inspect', 'busybox')).stderr).toContain('No such image: busybox');
    expect((await docker('network', 'inspect', 'bridge')).stderr).toContain('network bridge not found');
  });
});
