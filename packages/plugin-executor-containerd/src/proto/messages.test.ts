import { describe, expect, it } from 'vitest';
import {
  decode,
  encode,
  packRuncOptions,
  packSpec,
  toContainer,
  toDate,
  toEnvelope,
  toProcess,
  unpackRuncOptions,
  unpackSpec,
  unpackTaskExit,
  RUNC_OPTIONS_TYPE_URL,
  SPEC_TYPE_URL,
} from './messages.js';

const TASKS = 'containerd.services.tasks.v1';
const CONTAINERS = 'containerd.services.containers.v1';
const EVENTS = 'containerd.services.events.v1';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('wire format (field numbers and types pinned by hand-encoded bytes)', () => {
  it('KillRequest: container_id=1, signal=3 (uint32), all=4', () => {
    const bytes = encode(`${TASKS}.KillRequest`, { containerId: 'p', signal: 15, all: true });
    expect(hex(bytes)).toBe('0a0170' + '180f' + '2001');
  });

  it('CreateTaskRequest: stdout=5, stderr=6, options=9 (Any: type_url=1, value=2)', () => {
    const bytes = encode(`${TASKS}.CreateTaskRequest`, {
      containerId: 'p',
      stdout: 'o',
      stderr: 'e',
      options: { typeUrl: 'x', value: Buffer.from([1]) },
    });
    expect(hex(bytes)).toBe('0a0170' + '2a016f' + '320165' + '4a06' + '0a0178' + '120101');
  });

  it('runc Options: root=7, io_uid=4, systemd_cgroup=9', () => {
    const any = packRuncOptions({ root: '/r', ioUid: 5, systemdCgroup: true });
    expect(any.typeUrl).toBe(RUNC_OPTIONS_TYPE_URL);
    expect(hex(any.value)).toBe('2005' + '3a022f72' + '4801');
    expect(unpackRuncOptions(any)).toEqual({ root: '/r', ioUid: 5, systemdCgroup: true });
  });

  it('Process (Tasks.Get): status enum at 4, exit_status at 9, exited_at at 10', () => {
    // id="p" pid=42 status=RUNNING(2) stdout="/o" exit_status=0
    const bytes = Buffer.from('120170' + '182a' + '2002' + '32022f6f', 'hex');
    const w = decode('containerd.v1.types.Process', bytes);
    expect(toProcess(w)).toMatchObject({ id: 'p', pid: 42, status: 'running', stdout: '/o', exitStatus: 0, exitedAt: undefined });
    const stopped = encode('containerd.v1.types.Process', { status: 3, exitStatus: 137, exitedAt: { seconds: 1_700_000_000, nanos: 5e8 } });
    const p = toProcess(decode('containerd.v1.types.Process', stopped));
    expect(p.status).toBe('stopped');
    expect(p.exitStatus).toBe(137);
    expect(p.exitedAt?.toISOString()).toBe('2023-11-14T22:13:20.500Z');
  });

  it('SubscribeRequest: repeated filters=1', () => {
    const bytes = encode(`${EVENTS}.SubscribeRequest`, { filters: ['a', 'b'] });
    expect(hex(bytes)).toBe('0a0161' + '0a0162');
  });
});

describe('round trips of the messages berth uses', () => {
  it('Container with labels, runtime options and the OCI spec', () => {
    const spec = { ociVersion: '1.0.2', root: { path: '/plugins/x/rootfs' }, process: { args: ['/bin/sh'] } };
    const container = {
      id: 'abc',
      labels: { 'com.docker/engine.bundle.path': '/run/berth/plugins/abc' },
      runtime: { name: 'io.containerd.runc.v2', options: packRuncOptions({ root: '/run/runc' }) },
      spec: packSpec(spec),
    };
    const bytes = encode(`${CONTAINERS}.CreateContainerRequest`, { container });
    const back = toContainer(decode(`${CONTAINERS}.CreateContainerRequest`, bytes)['container']);
    expect(back.id).toBe('abc');
    expect(back.labels).toEqual(container.labels);
    expect(back.runtime.name).toBe('io.containerd.runc.v2');
    expect(unpackRuncOptions(back.runtime.options!)).toEqual({ root: '/run/runc' });
    expect(back.spec?.typeUrl).toBe(SPEC_TYPE_URL);
    expect(unpackSpec(back.spec!)).toEqual(spec);
    expect(back.snapshotter).toBe('');
  });

  it('Wait and Delete responses', () => {
    const wait = decode(`${TASKS}.WaitResponse`, encode(`${TASKS}.WaitResponse`, { exitStatus: 3, exitedAt: { seconds: 10, nanos: 0 } }));
    expect(wait['exitStatus']).toBe(3);
    expect(toDate(wait['exitedAt'])?.getTime()).toBe(10_000);
    const del = decode(`${TASKS}.DeleteResponse`, encode(`${TASKS}.DeleteResponse`, { id: 'p', pid: 7, exitStatus: 143 }));
    expect(del).toMatchObject({ id: 'p', pid: 7, exitStatus: 143 });
  });

  it('ListTasksResponse with several processes', () => {
    const bytes = encode(`${TASKS}.ListTasksResponse`, { tasks: [{ id: 'a', pid: 1, status: 2 }, { id: 'b', status: 3 }] });
    const tasks = (decode(`${TASKS}.ListTasksResponse`, bytes)['tasks'] as object[]).map((t) => toProcess(t));
    expect(tasks.map((t) => [t.id, t.status])).toEqual([
      ['a', 'running'],
      ['b', 'stopped'],
    ]);
  });

  it('Envelope carrying a TaskExit decodes; other events are ignored', () => {
    const exit = encode('containerd.events.TaskExit', { containerId: 'p', id: 'p', pid: 99, exitStatus: 137, exitedAt: { seconds: 5 } });
    const bytes = encode(`${EVENTS}.Envelope`, {
      timestamp: { seconds: 5, nanos: 1_000_000 },
      namespace: 'plugins.moby',
      topic: '/tasks/exit',
      event: { typeUrl: 'containerd.events.TaskExit', value: exit },
    });
    const envelope = toEnvelope(decode(`${EVENTS}.Envelope`, bytes));
    expect(envelope).toMatchObject({ namespace: 'plugins.moby', topic: '/tasks/exit' });
    expect(envelope.timestamp?.getTime()).toBe(5001);
    expect(unpackTaskExit(envelope.event)).toEqual({
      containerId: 'p',
      id: 'p',
      pid: 99,
      exitStatus: 137,
      exitedAt: new Date(5000),
    });
    const prefixed = { typeUrl: 'types.containerd.io/containerd.events.TaskExit', value: exit };
    expect(unpackTaskExit(prefixed)?.pid).toBe(99);
    expect(unpackTaskExit({ typeUrl: 'containerd.events.TaskStart', value: new Uint8Array([8, 1]) })).toBeUndefined();
    expect(unpackTaskExit(undefined)).toBeUndefined();
  });

  it("reads Go's zero time as no time", () => {
    expect(toDate({ seconds: -62135596800, nanos: 0 })).toBeUndefined();
    expect(toDate(null)).toBeUndefined();
  });

  it('refuses to unpack a non-spec Any as a spec', () => {
    expect(() => unpackSpec({ typeUrl: 'x', value: new Uint8Array() })).toThrow('not an OCI spec');
  });
});
