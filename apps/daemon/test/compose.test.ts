import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Berthd, describeWith, onPath, type ExecResult } from './harness.js';

/**
 * docker-compose (Debian's 1.29, which speaks to the daemon through docker-py) against berthd: a
 * project with named volumes (labels, `driver_opts`) and a service on `network_mode: none` (berth has
 * no networks, so compose's default network would stop it first). `up -d` creates the volumes with
 * compose's labels and ends on berth's 501 for the image pull; `ps` and `images` list nothing;
 * `down -v` removes the volumes.
 */

const COMPOSE_FILE = `version: "3.8"
services:
  app:
    image: busybox
    network_mode: none
    command: ["sleep", "1000"]
    volumes:
      - data:/data
      - scratch:/scratch
volumes:
  data:
    labels:
      team: storage
      com.example.tier: gold
  scratch:
    driver: local
    driver_opts:
      type: tmpfs
      device: tmpfs
      o: size=16m
`;

describeWith('docker-compose against berthd', onPath('docker-compose') ? undefined : 'docker-compose is not installed (Debian: apt-get install docker-compose)', () => {
  let daemon: Berthd;
  let project: string;

  const compose = (...args: string[]): Promise<ExecResult> =>
    new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: daemon.dir, DOCKER_HOST: `unix://${daemon.socket}`, DOCKER_CONFIG: join(daemon.dir, 'docker-config') };
      execFile('docker-compose', ['--ansi', 'never', '-p', 'shop', ...args], { cwd: project, env, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') reject(err);
        else resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
      });
    });

  const inspect = async (name: string) => daemon.http({ path: `/volumes/${name}` });

  beforeAll(async () => {
    daemon = await Berthd.start();
    project = join(daemon.dir, 'project');
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'docker-compose.yml'), COMPOSE_FILE);
  });

  afterAll(async () => {
    await daemon.cleanup();
  });

  it('up -d creates the named volumes with compose’s labels and options, then stops on berth’s 501 for the pull', async () => {
    const up = await compose('up', '-d');
    expect(up.code).toBe(1);
    expect(up.stderr).toContain('Creating volume "shop_data" with default driver');
    expect(up.stderr).toContain('Creating volume "shop_scratch" with local driver');
    expect(up.stderr.trimEnd().split('\n').at(-1)).toBe('berthd manages volumes and plugins only: POST /images/create is not supported');

    const data = await inspect('shop_data');
    expect(data.status).toBe(200);
    expect(data.json).toMatchObject({
      Driver: 'local',
      Name: 'shop_data',
      Options: null,
      Labels: { 'com.docker.compose.project': 'shop', 'com.docker.compose.version': '1.29.2', 'com.docker.compose.volume': 'data', 'com.example.tier': 'gold', team: 'storage' },
    });
    // Labels in Go's order, whatever order compose sent them in.
    expect(data.body).toContain(
      '"Labels":{"com.docker.compose.project":"shop","com.docker.compose.version":"1.29.2","com.docker.compose.volume":"data","com.example.tier":"gold","team":"storage"}',
    );
    expect((await inspect('shop_scratch')).json).toMatchObject({ Options: { device: 'tmpfs', o: 'size=16m', type: 'tmpfs' } });

    // Again: the volumes exist, compose finds them and goes on to the same end.
    const again = await compose('up', '-d');
    expect(again.code).toBe(1);
    expect(again.stderr).not.toContain('Creating volume');
    expect(again.stderr.trimEnd().split('\n').at(-1)).toBe('berthd manages volumes and plugins only: POST /images/create is not supported');
  });

  it('ps and images succeed with empty lists', async () => {
    const ps = await compose('ps');
    expect([ps.code, ps.stderr]).toEqual([0, '']);
    expect(ps.stdout.trimEnd().split('\n')).toEqual([expect.stringMatching(/^Name\s+Command\s+State\s+Ports$/), expect.stringMatching(/^-+$/)]);
    const quiet = await compose('ps', '-q');
    expect(quiet).toEqual({ code: 0, stdout: '', stderr: '' });
    const images = await compose('images');
    expect([images.code, images.stderr]).toEqual([0, '']);
    expect(images.stdout.trimEnd().split('\n')).toHaveLength(2);
  });

  it('down -v removes the project’s volumes', async () => {
    const down = await compose('down', '-v');
    expect([down.code, down.stderr]).toEqual([0, expect.stringContaining('Removing volume shop_data')]);
    expect(down.stderr).toContain('Removing volume shop_scratch');
    for (const name of ['shop_data', 'shop_scratch']) {
      expect(await inspect(name)).toMatchObject({ status: 404, json: { message: `get ${name}: no such volume` } });
    }
    expect((await daemon.docker(['volume', 'ls', '-q'])).stdout).toBe('');
  });
});
