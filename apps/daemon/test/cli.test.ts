import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Berthd, describeWithDocker, unixTime, type ExecResult } from './harness.js';

/**
 * Ports of moby's integration-cli volume tests, driven through the real docker CLI. Outputs are
 * compared whole: what the CLI prints is what users and scripts see.
 */

const HEADER = 'DRIVER    VOLUME NAME\n';
const row = (name: string): string => `local     ${name}\n`;
const ok = (stdout: string): ExecResult => ({ code: 0, stdout, stderr: '' });
const daemonError = (message: string, stdout = ''): ExecResult => ({ code: 1, stdout, stderr: `Error response from daemon: ${message}\n` });

describeWithDocker('docker CLI against berthd', () => {
  let daemon: Berthd;
  const docker = (...args: string[]): Promise<ExecResult> => daemon.docker(args);

  beforeAll(async () => {
    daemon = await Berthd.start();
  });
  afterAll(async () => {
    await daemon?.cleanup();
  });

  describe('docker volume create', () => {
    it('TestVolumeCLICreate', async () => {
      const anonymous = await docker('volume', 'create');
      expect(anonymous).toEqual(ok(expect.stringMatching(/^[0-9a-f]{64}\n$/) as unknown as string));
      const noDriver = await docker('volume', 'create', '-d', 'nosuchdriver');
      expect(noDriver.code).toBe(1);
      expect(noDriver.stderr).toMatch(
        /^Error response from daemon: create [0-9a-f]{64}: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found\n$/,
      );
      expect(await docker('volume', 'create', '--name=test')).toEqual(ok('test\n'));
      expect(await docker('volume', 'create', 'test2')).toEqual(ok('test2\n'));
    });

    it('refuses invalid local names with the text of moby', async () => {
      expect(await docker('volume', 'create', '../x')).toEqual(
        daemonError(
          'create ../x: "../x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
        ),
      );
    });

    it('TestVolumeCLICreateLabel', async () => {
      expect(await docker('volume', 'create', '--label', 'foo=bar', 'test-label')).toEqual(ok('test-label\n'));
      expect(await docker('volume', 'inspect', '--format', '{{ .Labels.foo }}', 'test-label')).toEqual(ok('bar\n'));
    });

    it('TestVolumeCLICreateLabelMultiple', async () => {
      const labels = { foo: 'bar', baz: 'foo', bar: 'baz' };
      const flags = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
      expect(await docker('volume', 'create', ...flags, 'test-labels')).toEqual(ok('test-labels\n'));
      for (const [k, v] of Object.entries(labels)) {
        expect(await docker('volume', 'inspect', '--format', `{{ .Labels.${k} }}`, 'test-labels')).toEqual(ok(`${v}\n`));
      }
    });

    it('TestVolumeCliInspectWithVolumeOpts', async () => {
      expect(await docker('volume', 'create', 'test-no-opts')).toEqual(ok('test-no-opts\n'));
      expect(await docker('volume', 'inspect', '--format', '{{ .Options }}', 'test-no-opts')).toEqual(ok('map[]\n'));
      const opts = ['--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m,uid=1000'];
      expect(await docker('volume', 'create', '-d', 'local', 'test-opts', ...opts)).toEqual(ok('test-opts\n'));
      expect(await docker('volume', 'inspect', '--format', '{{ .Options }}', 'test-opts')).toEqual(
        ok('map[device:tmpfs o:size=1m,uid=1000 type:tmpfs]\n'),
      );
      expect(await docker('volume', 'inspect', '--format', '{{ .Options.o }}', 'test-opts')).toEqual(ok('size=1m,uid=1000\n'));
    });
  });

  describe('docker volume inspect', () => {
    it('TestVolumeCLIInspect', async () => {
      expect(await docker('volume', 'inspect', 'doesnotexist')).toEqual(daemonError('get doesnotexist: no such volume', '[]\n'));
      const name = (await docker('volume', 'create')).stdout.trim();
      expect(await docker('volume', 'inspect', '--format={{ .Name }}', name)).toEqual(ok(`${name}\n`));
      await docker('volume', 'create', 'test-inspect');
      expect(await docker('volume', 'inspect', '--format={{ .Name }}', 'test-inspect')).toEqual(ok('test-inspect\n'));
    });

    it('TestVolumeCLIInspectMulti', async () => {
      for (const name of ['multi1', 'multi2', 'multi3']) await docker('volume', 'create', name);
      expect(await docker('volume', 'inspect', '--format={{ .Name }}', 'multi1', 'multi2', 'doesnotexist', 'multi3')).toEqual(
        daemonError('get doesnotexist: no such volume', 'multi1\nmulti2\nmulti3\n'),
      );
    });

    it('prints the whole volume as JSON', async () => {
      await docker('volume', 'create', '--label', 'a=b', 'as-json');
      const out = await docker('volume', 'inspect', 'as-json');
      expect(out.code).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual([
        {
          CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
          Driver: 'local',
          Labels: { a: 'b' },
          Mountpoint: join(daemon.dataRoot, 'volumes', 'as-json', '_data'),
          Name: 'as-json',
          Options: null,
          Scope: 'local',
        },
      ]);
    });
  });

  describe('docker volume ls', () => {
    it('TestVolumeLsFormat and -q', async () => {
      for (const name of ['fmt-aaa', 'fmt-bbb', 'fmt-ccc']) await docker('volume', 'create', name);
      const names = (await docker('volume', 'ls', '--format', '{{.Name}}')).stdout.split('\n');
      expect(names).toEqual(expect.arrayContaining(['fmt-aaa', 'fmt-bbb', 'fmt-ccc']));
      expect((await docker('volume', 'ls', '-q')).stdout.split('\n')).toEqual(expect.arrayContaining(['fmt-aaa', 'fmt-bbb', 'fmt-ccc']));
      expect(await docker('volume', 'ls', '--filter', 'name=fmt-b')).toEqual(ok(`${HEADER}${row('fmt-bbb')}`));
    });

    it('TestVolumeCLILsErrorWithInvalidFilterName', async () => {
      expect(await docker('volume', 'ls', '-f', 'FOO=123')).toEqual(daemonError("invalid filter 'foo'"));
    });

    it('TestVolumeCLILsWithIncorrectFilterValue', async () => {
      expect(await docker('volume', 'ls', '-f', 'dangling=invalid')).toEqual(daemonError("invalid filter 'dangling=[invalid]'"));
    });

    it('TestVolumeCLILsFilterLabels', async () => {
      await docker('volume', 'create', '--label', 'lsfoo=bar1', 'testvolcreatelabel-1');
      await docker('volume', 'create', '--label', 'lsfoo=bar2', 'testvolcreatelabel-2');
      expect(await docker('volume', 'ls', '--filter', 'label=lsfoo')).toEqual(
        ok(`${HEADER}${row('testvolcreatelabel-1')}${row('testvolcreatelabel-2')}`),
      );
      expect(await docker('volume', 'ls', '--filter', 'label=lsfoo=bar1')).toEqual(ok(`${HEADER}${row('testvolcreatelabel-1')}`));
      expect(await docker('volume', 'ls', '--filter', 'label=non-exist')).toEqual(ok(HEADER));
      expect(await docker('volume', 'ls', '--filter', 'label=lsfoo=non-exist')).toEqual(ok(HEADER));
    });

    it('TestVolumeCLILsFilterDrivers', async () => {
      await docker('volume', 'create', 'testvol-driver');
      expect((await docker('volume', 'ls', '--filter', 'driver=local')).stdout).toContain(row('testvol-driver'));
      for (const filter of ['driver=invaliddriver', 'driver=loca', 'driver=']) {
        expect(await docker('volume', 'ls', '--filter', filter), filter).toEqual(ok(HEADER));
      }
    });
  });

  describe('docker volume rm', () => {
    it('removes, and refuses missing volumes unless forced', async () => {
      await docker('volume', 'create', 'rm-a');
      await docker('volume', 'create', 'rm-b');
      expect(await docker('volume', 'rm', 'rm-a', 'rm-b')).toEqual(ok('rm-a\nrm-b\n'));
      expect(await docker('volume', 'rm', 'rm-a')).toEqual(daemonError('get rm-a: no such volume'));
    });

    it('TestVolumeCLIRmForceUsage', async () => {
      const name = (await docker('volume', 'create')).stdout.trim();
      expect(await docker('volume', 'rm', '-f', name)).toEqual(ok(`${name}\n`));
      expect(await docker('volume', 'rm', '--force', 'nonexist')).toEqual(ok('nonexist\n'));
    });

    it('TestVolumeCLIRmForce', async () => {
      expect(await docker('volume', 'create', 'rm-force')).toEqual(ok('rm-force\n'));
      // The volume's directory disappears behind the daemon's back.
      await rm(join(daemon.dataRoot, 'volumes', 'rm-force'), { recursive: true, force: true });
      expect(await docker('volume', 'rm', '-f', 'rm-force')).toEqual(ok('rm-force\n'));
      expect((await docker('volume', 'ls', '-q')).stdout.split('\n')).not.toContain('rm-force');
      expect(await docker('volume', 'create', 'rm-force')).toEqual(ok('rm-force\n'));
      expect(await docker('volume', 'rm', 'rm-force')).toEqual(ok('rm-force\n'));
    });

    it('refuses a volume held through the mount extension, with and without -f', async () => {
      await docker('volume', 'create', 'rm-held');
      expect((await daemon.http({ method: 'POST', path: '/volumes/rm-held/mount', body: { ID: 'job-7' } })).status).toBe(200);
      expect(await docker('volume', 'rm', 'rm-held')).toEqual(daemonError('remove rm-held: volume is in use - [job-7]'));
      expect(await docker('volume', 'rm', '-f', 'rm-held')).toEqual(daemonError('remove rm-held: volume is in use - [job-7]'));
      expect(await docker('volume', 'ls', '-q', '--filter', 'dangling=false', '--filter', 'name=rm-held')).toEqual(ok('rm-held\n'));
      expect((await daemon.http({ method: 'POST', path: '/volumes/rm-held/unmount', body: { ID: 'job-7' } })).status).toBe(204);
      expect(await docker('volume', 'rm', 'rm-held')).toEqual(ok('rm-held\n'));
    });
  });

  describe('docker info and docker version', () => {
    it('docker info prints the server section without errors', async () => {
      const out = await docker('info');
      expect(out.code).toBe(0);
      expect(out.stderr).toBe('');
      expect(out.stdout).toContain('\nServer:\n Containers: 0\n');
      expect(out.stdout).toContain(' Server Version: 0.0.0\n Plugins:\n  Volume: local\n');
      expect(out.stdout).toContain(' Swarm: inactive\n');
      expect(out.stdout).toContain(` Docker Root Dir: ${daemon.dataRoot}\n`);
    });

    it('docker version shows berth as the engine, at API 1.51', async () => {
      const out = await docker('version');
      expect(out.code).toBe(0);
      expect(out.stderr).toBe('');
      expect(out.stdout).toContain('\nServer: berth 0.0.0\n Engine:\n  Version:          0.0.0\n  API version:      1.51 (minimum version 1.24)\n');
      expect(await docker('version', '--format', '{{.Server.APIVersion}}')).toEqual(ok('1.51\n'));
    });
  });
});

describeWithDocker('docker volume prune', () => {
  let daemon: Berthd;
  const docker = (...args: string[]): Promise<ExecResult> => daemon.docker(args);
  const list = async (): Promise<string[]> => (await docker('volume', 'ls', '-q')).stdout.split('\n').filter((s) => s !== '').sort();

  beforeAll(async () => {
    daemon = await Berthd.start();
  });
  afterAll(async () => {
    await daemon?.cleanup();
  });

  it('prunes anonymous volumes, all unused ones with -a, and reports the space', async () => {
    const anonymous = (await docker('volume', 'create')).stdout.trim();
    await writeFile(join(daemon.dataRoot, 'volumes', anonymous, '_data', 'hello.txt'), 'hello');
    await docker('volume', 'create', 'named');
    expect(await docker('volume', 'prune', '-f')).toEqual(ok(`Deleted Volumes:\n${anonymous}\n\nTotal reclaimed space: 5B\n`));
    expect(await list()).toEqual(['named']);
    expect(await docker('volume', 'prune', '-f')).toEqual(ok('Total reclaimed space: 0B\n'));
    expect(await docker('volume', 'prune', '-af')).toEqual(ok('Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n'));
    expect(await list()).toEqual([]);
  });

  it('TestPruneVolumeLabel', async () => {
    const id1 = (await docker('volume', 'create', '--label', 'foo')).stdout.trim();
    const id2 = (await docker('volume', 'create', '--label', 'bar')).stdout.trim();
    const dangling = async (): Promise<string> => (await docker('volume', 'ls', '-q', '--filter', 'dangling=true')).stdout;
    expect(await dangling()).toContain(id1);
    expect(await dangling()).toContain(id2);

    expect((await docker('volume', 'prune', '--force', '--filter', 'label=foo')).code).toBe(0);
    expect(await dangling()).not.toContain(id1);
    expect(await dangling()).toContain(id2);

    const id3 = (await docker('volume', 'create', '--label', 'foo')).stdout.trim();
    expect((await docker('volume', 'prune', '--force', '--filter', 'label!=bar')).code).toBe(0);
    expect(await dangling()).not.toContain(id3);
    expect(await dangling()).toContain(id2);

    const id4 = (await docker('volume', 'create', '--label', 'baz')).stdout.trim();
    expect(await docker('volume', 'prune', '--force', '--filter', 'label=bar')).toEqual(ok(`Deleted Volumes:\n${id2}\n\nTotal reclaimed space: 0B\n`));
    expect(await dangling()).not.toContain(id2);
    expect(await dangling()).toContain(id4);
  });

  it('refuses filters prune does not know', async () => {
    expect(await docker('volume', 'prune', '-f', '--filter', 'name=x')).toEqual(daemonError("invalid filter 'name'"));
  });
});

describeWithDocker('docker events', () => {
  let daemon: Berthd;
  const docker = (...args: string[]): Promise<ExecResult> => daemon.docker(args);

  beforeAll(async () => {
    daemon = await Berthd.start();
  });
  afterAll(async () => {
    await daemon?.cleanup();
  });

  it('replays volume events between --since and --until', async () => {
    const since = unixTime();
    await docker('volume', 'create', 'ev1');
    await docker('volume', 'rm', 'ev1');
    const until = unixTime(0.3);
    const out = await docker('events', '--filter', 'type=volume', '--since', since, '--until', until);
    expect(out.code).toBe(0);
    expect(out.stderr).toBe('');
    const lines = out.stdout.split('\n').filter((l) => l !== '');
    const pattern = (action: string): RegExp => new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{9}Z volume ${action} ev1 \\(driver=local\\)$`);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(pattern('create'));
    expect(lines[1]).toMatch(pattern('destroy'));
    expect(await docker('events', '--filter', 'type=network', '--since', since, '--until', until)).toEqual(ok(''));
  });

  it('TestEventsFilterVolumeID', async () => {
    const since = unixTime();
    await docker('volume', 'create', 'test1');
    await docker('volume', 'create', 'test2');
    const out = await docker('events', '--since', since, '--until', unixTime(0.3), '--filter', 'volume=test1');
    const lines = out.stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('test1');
    expect(lines[0]).toContain('driver=local');
    expect(await docker('volume', 'rm', 'test1', 'test2')).toEqual(ok('test1\ntest2\n'));
  });

  it('shows mount and unmount of the mount extension, and prune', async () => {
    const since = unixTime();
    await docker('volume', 'create', 'ev-mount');
    await daemon.http({ method: 'POST', path: '/volumes/ev-mount/mount', body: { ID: 'r1' } });
    await daemon.http({ method: 'POST', path: '/volumes/ev-mount/unmount', body: { ID: 'r1' } });
    await docker('volume', 'prune', '-af');
    const out = await docker('events', '--since', since, '--until', unixTime(0.3), '--format', '{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}');
    expect(out.stdout.split('\n').filter((l) => l !== '')).toEqual([
      'create ev-mount {"driver":"local"}',
      'mount ev-mount {"driver":"local","ref":"r1"}',
      'unmount ev-mount {"driver":"local","ref":"r1"}',
      'destroy ev-mount {"driver":"local"}',
      'prune  {"reclaimed":"0"}',
    ]);
  });
});
