import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import { BUNDLE_LABEL, ContainerdClient, ContainerdExecutor, packRuncOptions, packSpec, unpackSpec } from '../src/index.js';
import { eventually, ExitRecorder, missingRequirements, Output, Sandbox } from '../src/testing.js';

// Plugins are PID 1 of their pid namespace, which ignores signals it has no handler for.
const PLUGIN = 'trap "echo bye; exit 0" TERM; echo hello; echo oops >&2; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2 & wait $!; done';
const STUBBORN = 'trap "" TERM; echo ready; while true; do sleep 0.2 & wait $!; done';

const missing = missingRequirements();
if (missing !== undefined && !process.env['CI']) {
  process.stdout.write(`skipping the containerd integration tests: ${missing}\n`);
}

describe.skipIf(missing !== undefined && !process.env['CI'])('ContainerdExecutor on a private containerd', () => {
  let box: Sandbox;
  let client: ContainerdClient;
  const executors: ContainerdExecutor[] = [];

  const executor = (exits: ExitRecorder): ContainerdExecutor => {
    const ex = new ContainerdExecutor({
      address: box.address,
      stateDir: box.stateDir,
      runtimeRoot: box.runtimeRoot,
      exitHandler: exits,
    });
    executors.push(ex);
    return ex;
  };

  const gone = async (id: string): Promise<void> => {
    expect(kindOf(await client.getTask(id).catch((e: unknown) => e))).toBe('not-found');
    expect(kindOf(await client.getContainer(id).catch((e: unknown) => e))).toBe('not-found');
  };

  beforeAll(async () => {
    if (missing !== undefined) throw new Error(`CI must run the containerd integration tests, but ${missing}`);
    box = await Sandbox.create();
    client = new ContainerdClient({ address: box.address });
  }, 30_000);

  afterEach(async () => {
    await Promise.all(executors.splice(0).map((ex) => ex.close()));
  });

  afterAll(async () => {
    client?.close();
    await box?.dispose();
  }, 30_000);

  it('runs a task: output reaches the streams, signal stops it, one exit, nothing left behind', async () => {
    const exits = new ExitRecorder();
    const ex = executor(exits);
    const out = new Output();
    const err = new Output();
    const spec = box.spec(PLUGIN);

    await ex.create('lifecycle', spec, out, err);
    await out.waitFor(/hello\ntick 0/);
    await err.waitFor(/oops/);
    expect(await ex.isRunning('lifecycle')).toBe(true);

    const container = await client.getContainer('lifecycle');
    expect(container.runtime.name).toBe('io.containerd.runc.v2');
    expect(container.labels[BUNDLE_LABEL]).toBe(`${box.stateDir}/lifecycle`);
    expect(unpackSpec(container.spec!)).toEqual(spec);
    expect(kindOf(await ex.create('lifecycle', spec, new Output(), new Output()).catch((e: unknown) => e))).toBe('conflict');

    await ex.signal('lifecycle', 'SIGTERM');
    await exits.waitFor('lifecycle');
    // Output is complete (and the streams ended) by the time the exit is reported.
    expect(out.text).toMatch(/bye\n$/);
    expect(out.ended && err.ended).toBe(true);
    await gone('lifecycle');
    await sleep(500);
    expect(exits.ids).toEqual(['lifecycle']);
    expect(kindOf(await ex.isRunning('lifecycle').catch((e: unknown) => e))).toBe('not-found');
    expect(kindOf(await ex.signal('lifecycle', 'SIGTERM').catch((e: unknown) => e))).toBe('not-found');
  }, 30_000);

  it('escalates to SIGKILL for a task that ignores SIGTERM, and replaces a container left behind', async () => {
    // A container and running task left behind by an earlier daemon (no stdio: neither is fine, one is not).
    const runtime = { name: 'io.containerd.runc.v2', options: packRuncOptions({ root: box.runtimeRoot }) };
    await client.createContainer({ id: 'stubborn', labels: {}, runtime, spec: packSpec(box.spec(STUBBORN)) });
    await client.createTask({ containerId: 'stubborn', stdout: '', stderr: '' });
    await client.startTask('stubborn');
    const exits = new ExitRecorder();
    const ex = executor(exits);
    const out = new Output();

    await ex.create('stubborn', box.spec(STUBBORN), out, new Output());
    await out.waitFor(/ready/);
    await ex.signal('stubborn', 15);
    await sleep(400);
    expect(await ex.isRunning('stubborn')).toBe(true);
    expect(exits.ids).toEqual([]);

    await ex.signal('stubborn', 'KILL');
    await exits.waitFor('stubborn');
    await gone('stubborn');
    await sleep(300);
    expect(exits.ids).toEqual(['stubborn']);
    expect(kindOf(await ex.signal('nothing', 'SIGTERM').catch((e: unknown) => e))).toBe('not-found');
  }, 30_000);

  it('reports a task that exits at once (Wait goes out before Start), and undoes a create that fails', async () => {
    const exits = new ExitRecorder();
    const ex = executor(exits);
    const out = new Output();
    await ex.create('brief', box.spec('echo done; exit 3'), out, new Output());
    await exits.waitFor('brief');
    expect(out.text).toBe('done\n');
    await gone('brief');

    const spec = box.spec('');
    (spec as { process: { args: string[] } }).process.args = ['/bin/no-such-binary'];
    const err = await ex.create('broken', spec, new Output(), new Output()).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no-such-binary/);
    await gone('broken');
    expect(await readdir(`${box.stateDir}/broken`)).toEqual([]);
    await sleep(300);
    expect(exits.ids).toEqual(['brief']);
  }, 30_000);

  it('restarts a plugin from inside the exit handler (what the manager does for crashed plugins)', async () => {
    const exits = new ExitRecorder();
    let ex!: ContainerdExecutor;
    const outputs = [new Output(), new Output()];
    const restarting = {
      handleExitEvent: async (id: string): Promise<void> => {
        exits.handleExitEvent(id);
        if (exits.count(id) === 1) await ex.create(id, box.spec(PLUGIN), outputs[1]!, new Output());
      },
    };
    ex = new ContainerdExecutor({ address: box.address, stateDir: box.stateDir, runtimeRoot: box.runtimeRoot, exitHandler: restarting });
    executors.push(ex);

    await ex.create('phoenix', box.spec(PLUGIN), outputs[0]!, new Output());
    await outputs[0]!.waitFor(/tick 0/);
    await ex.signal('phoenix', 'SIGKILL');
    await outputs[1]!.waitFor(/tick 0/);
    expect(await ex.isRunning('phoenix')).toBe(true);
    await sleep(300);
    expect(exits.ids).toEqual(['phoenix']);

    await ex.signal('phoenix', 'SIGTERM');
    await eventually(async () => exits.count('phoenix') === 2, 10_000, 'second exit');
    await gone('phoenix');
  }, 30_000);

  it('restore: a fresh executor re-attaches to a live task and cleans up one that died unwatched', async () => {
    const firstExits = new ExitRecorder();
    const first = executor(firstExits);
    const liveOut = new Output();
    await first.create('live', box.spec(PLUGIN), liveOut, new Output());
    await first.create('dead', box.spec(PLUGIN), new Output(), new Output());
    await liveOut.waitFor(/tick 1/);

    // The daemon goes away (tasks keep running), and one plugin dies while nobody watches.
    await first.close();
    await client.killTask('dead', 9);
    await eventually(async () => (await client.getTask('dead')).status === 'stopped', 10_000, 'dead to stop');

    const exits = new ExitRecorder();
    const second = executor(exits);
    const out = new Output();
    const err = new Output();
    expect(await second.restore('live', out, err)).toBe(true);
    expect(await second.restore('dead', new Output(), new Output())).toBe(false);
    expect(await second.restore('never-existed', new Output(), new Output())).toBe(false);
    await gone('dead');

    await out.waitFor(/tick \d+\ntick \d+\n/);
    expect(await second.isRunning('live')).toBe(true);
    await second.signal('live', 'SIGTERM');
    await exits.waitFor('live');
    expect(out.text).toMatch(/bye\n$/);
    await gone('live');
    await sleep(500);
    expect(exits.ids).toEqual(['live']);
    expect(firstExits.ids).toEqual([]);
  }, 30_000);

  it('survives a containerd crash: reconnects, reports an exit that happened meanwhile and the next one, once each', async () => {
    const exits = new ExitRecorder();
    const ex = executor(exits);
    const out = new Output();
    await ex.create('steady', box.spec(PLUGIN), out, new Output());
    await ex.create('victim', box.spec(PLUGIN), new Output(), new Output());
    await out.waitFor(/tick 0/);
    const victimPid = (await client.getTask('victim')).pid;

    await box.containerd.kill();
    process.kill(victimPid, 'SIGKILL');
    await sleep(300);
    const ticksWhileDown = out.text.length;
    await box.startContainerd();

    await exits.waitFor('victim', 15_000);
    await gone('victim');
    await eventually(() => ex.isRunning('steady'), 15_000, 'steady to be seen running again');
    await eventually(async () => out.text.slice(ticksWhileDown).includes('tick'), 10_000, 'output after the restart');

    await ex.signal('steady', 'SIGTERM');
    await exits.waitFor('steady');
    await gone('steady');
    await sleep(500);
    expect(exits.ids.sort()).toEqual(['steady', 'victim']);
  }, 60_000);
});
