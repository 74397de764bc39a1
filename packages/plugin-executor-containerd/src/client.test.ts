import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kindOf } from '@berth/errdefs';
import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type MethodDefinition,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { ContainerdClient, NAMESPACE_HEADER } from './client.js';
import { taskExitFilter } from './exit-monitor.js';
import { decode, encode, unpackTaskExit } from './proto/messages.js';

type Wire = Record<string, any>;

function method(path: string, req: string, res: string, responseStream = false): MethodDefinition<Wire, Wire> {
  return {
    path,
    requestStream: false,
    responseStream,
    requestSerialize: (v) => encode(req, v),
    requestDeserialize: (b) => decode(req, b),
    responseSerialize: (v) => encode(res, v),
    responseDeserialize: (b) => decode(res, b),
  };
}

const T = 'containerd.services.tasks.v1';
const E = 'containerd.services.events.v1';

/** A stand-in containerd that records what it is sent. */
class FakeContainerd {
  readonly server = new Server();
  readonly seen: Array<{ method: string; namespace: unknown; request: Wire; deadline: unknown }> = [];
  #streams: Array<ServerWritableStream<Wire, Wire>> = [];

  constructor() {
    const record = (name: string, call: { metadata: Metadata; request: Wire; getDeadline(): unknown }): void => {
      this.seen.push({ method: name, namespace: call.metadata.get(NAMESPACE_HEADER)[0], request: call.request, deadline: call.getDeadline() });
    };
    const definition = {
      Get: method(`/${T}.Tasks/Get`, `${T}.GetRequest`, `${T}.GetResponse`),
      Wait: method(`/${T}.Tasks/Wait`, `${T}.WaitRequest`, `${T}.WaitResponse`),
      Kill: method(`/${T}.Tasks/Kill`, `${T}.KillRequest`, 'google.protobuf.Empty'),
      Subscribe: method(`/${E}.Events/Subscribe`, `${E}.SubscribeRequest`, `${E}.Envelope`, true),
    };
    const impl: UntypedServiceImplementation = {
      Get: (call: ServerUnaryCall<Wire, Wire>, cb: sendUnaryData<Wire>) => {
        record('Get', call);
        if (call.request['containerId'] === 'missing') {
          cb({ code: status.NOT_FOUND, details: 'task missing not found: not found' });
          return;
        }
        cb(null, { process: { id: call.request['containerId'], pid: 42, status: 2, stdout: '/o', stderr: '/e' } });
      },
      // Never answers: a task that does not exit.
      Wait: (call: ServerUnaryCall<Wire, Wire>) => record('Wait', call),
      Kill: (call: ServerUnaryCall<Wire, Wire>, cb: sendUnaryData<Wire>) => {
        record('Kill', call);
        cb(null, {});
      },
      Subscribe: (call: ServerWritableStream<Wire, Wire>) => {
        record('Subscribe', call);
        this.#streams.push(call);
        const exit = encode('containerd.events.TaskExit', { containerId: 'p', id: 'p', pid: 42, exitStatus: 0 });
        call.write({ namespace: 'ns', topic: '/tasks/start', event: { typeUrl: 'containerd.events.TaskStart', value: Buffer.from([10, 1, 112]) } });
        call.write({ namespace: 'ns', topic: '/tasks/exit', event: { typeUrl: 'containerd.events.TaskExit', value: exit } });
      },
    };
    this.server.addService(definition, impl);
  }

  failStreams(): void {
    // grpc-js ends a server stream with an error status when the call emits 'error'.
    for (const s of this.#streams.splice(0)) s.emit('error', { code: status.UNAVAILABLE, details: 'going away' });
  }

  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }
}

describe('ContainerdClient against a fake containerd', () => {
  let dir: string;
  let fake: FakeContainerd;
  let client: ContainerdClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-client-'));
    fake = new FakeContainerd();
    await fake.listen(join(dir, 'c.sock'));
    client = new ContainerdClient({ address: join(dir, 'c.sock'), namespace: 'ns', timeoutMs: 2_000 });
  });

  afterAll(async () => {
    client.close();
    fake.server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it('sends the namespace header and a deadline on unary calls and maps the answer', async () => {
    const before = Date.now();
    const task = await client.getTask('p');
    expect(task).toMatchObject({ id: 'p', pid: 42, status: 'running', stdout: '/o', stderr: '/e' });
    const seen = fake.seen.find((s) => s.method === 'Get')!;
    expect(seen.namespace).toBe('ns');
    expect(seen.request['containerId']).toBe('p');
    const deadline = Number(seen.deadline);
    expect(deadline).toBeGreaterThan(before);
    expect(deadline).toBeLessThanOrEqual(Date.now() + 2_000);
  });

  it('sends Kill with the signal number', async () => {
    await client.killTask('p', 15);
    expect(fake.seen.find((s) => s.method === 'Kill')?.request).toMatchObject({ containerId: 'p', signal: 15, all: false });
  });

  it("maps containerd's errors to kinds with its message", async () => {
    const err = await client.getTask('missing').catch((e: unknown) => e);
    expect(kindOf(err)).toBe('not-found');
    expect((err as Error).message).toBe('task missing not found: not found');
  });

  it('gives up at the deadline, and on abort', async () => {
    const late = await client.waitTask('p', { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(kindOf(late)).toBe('deadline-exceeded');
    const controller = new AbortController();
    const pending = client.waitTask('p', { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    expect(kindOf(await pending.catch((e: unknown) => e))).toBe('canceled');
  });

  it('streams events with the filters and ends with unavailable when the stream breaks', async () => {
    const seen: string[] = [];
    let failure: unknown;
    try {
      for await (const envelope of client.subscribe([taskExitFilter('ns')])) {
        seen.push(envelope.topic);
        const exit = unpackTaskExit(envelope.event);
        if (exit !== undefined) {
          expect(exit).toMatchObject({ containerId: 'p', pid: 42 });
          fake.failStreams();
        }
      }
    } catch (err) {
      failure = err;
    }
    expect(seen).toEqual(['/tasks/start', '/tasks/exit']);
    expect(kindOf(failure)).toBe('unavailable');
    const sub = fake.seen.find((s) => s.method === 'Subscribe')!;
    expect(sub.request['filters']).toEqual(['namespace=="ns",topic=="/tasks/exit"']);
    expect(sub.namespace).toBe('ns');
  });

  it('fails calls on a closed client as unavailable instead of throwing', async () => {
    const closed = new ContainerdClient({ address: join(dir, 'c.sock') });
    closed.close();
    expect(kindOf(await closed.getTask('p').catch((e: unknown) => e))).toBe('unavailable');
    const events = closed.subscribe(['x'])[Symbol.asyncIterator]();
    expect(kindOf(await events.next().catch((e: unknown) => e))).toBe('unavailable');
  });

  it('reports an absent containerd as unavailable', async () => {
    const nobody = new ContainerdClient({ address: join(dir, 'nobody.sock'), timeoutMs: 1_000 });
    try {
      expect(kindOf(await nobody.version().catch((e: unknown) => e))).toBe('unavailable');
    } finally {
      nobody.close();
    }
  });
});
