import { BerthError } from '@berth/errdefs';
import { Client, credentials, Metadata, type Interceptor } from '@grpc/grpc-js';
import { fromGrpcError } from './errors.js';
import {
  decode,
  encode,
  toContainer,
  toEnvelope,
  toExitStatus,
  toProcess,
  type Container,
  type CreateTaskRequest,
  type Envelope,
  type ExitStatus,
  type Process,
  type VersionInfo,
} from './proto/messages.js';

/** moby's `config.DefaultPluginNamespace`. */
export const DEFAULT_PLUGIN_NAMESPACE = 'plugins.moby';

/** gRPC metadata key that scopes a call to a containerd namespace (`namespaces.GRPCHeader`). */
export const NAMESPACE_HEADER = 'containerd-namespace';

export interface ContainerdClientOptions {
  /** containerd's gRPC socket: a path or a `unix://` URL. */
  address: string;
  /** containerd namespace every call is scoped to. Default `plugins.moby`. */
  namespace?: string | undefined;
  /** Deadline of every unary call but Wait, in ms. Default 10 000. */
  timeoutMs?: number | undefined;
  /** Deadline of Tasks.Wait, in ms; a Wait that outlives it is simply issued again. Default 1 h. */
  waitTimeoutMs?: number | undefined;
  /** grpc-js interceptors, e.g. to count or trace calls. */
  interceptors?: Interceptor[] | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the client's deadline for this call, in ms. */
  timeoutMs?: number | undefined;
}

const CONTAINERS = 'containerd.services.containers.v1';
const TASKS = 'containerd.services.tasks.v1';
const EVENTS = 'containerd.services.events.v1';
const VERSION = 'containerd.services.version.v1';
const EMPTY = 'google.protobuf.Empty';

/** Turns a socket path into the `unix:` target grpc-js resolves. */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix:')) return address;
  return address.startsWith('/') ? `unix://${address}` : `unix:${address}`;
}

/**
 * A minimal client for containerd's containers, tasks, events and version services over one
 * HTTP/2 connection. Every call carries the namespace header; every unary call has a deadline.
 * Failures are BerthErrors carrying containerd's own message (see `fromGrpcError`).
 */
export class ContainerdClient {
  readonly address: string;
  readonly namespace: string;
  readonly #client: Client;
  readonly #timeoutMs: number;
  readonly #waitTimeoutMs: number;

  constructor(options: ContainerdClientOptions) {
    this.address = options.address;
    this.namespace = options.namespace ?? DEFAULT_PLUGIN_NAMESPACE;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 3_600_000;
    this.#client = new Client(grpcTarget(options.address), credentials.createInsecure(), {
      // grpc-js backs off up to 2 min between reconnects by default; a restarted containerd on a
      // local socket should be found again within a second or two.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
      ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
    });
  }

  async version(options?: CallOptions): Promise<VersionInfo> {
    const w = await this.#unary(`${VERSION}.Version/Version`, EMPTY, {}, `${VERSION}.VersionResponse`, options);
    return { version: w['version'] ?? '', revision: w['revision'] ?? '' };
  }

  async createContainer(container: Container, options?: CallOptions): Promise<Container> {
    const w = await this.#unary(
      `${CONTAINERS}.Containers/Create`,
      `${CONTAINERS}.CreateContainerRequest`,
      { container },
      `${CONTAINERS}.CreateContainerResponse`,
      options,
    );
    return toContainer(w['container']);
  }

  async getContainer(id: string, options?: CallOptions): Promise<Container> {
    const w = await this.#unary(
      `${CONTAINERS}.Containers/Get`,
      `${CONTAINERS}.GetContainerRequest`,
      { id },
      `${CONTAINERS}.GetContainerResponse`,
      options,
    );
    return toContainer(w['container']);
  }

  async deleteContainer(id: string, options?: CallOptions): Promise<void> {
    await this.#unary(`${CONTAINERS}.Containers/Delete`, `${CONTAINERS}.DeleteContainerRequest`, { id }, EMPTY, options);
  }

  async createTask(request: CreateTaskRequest, options?: CallOptions): Promise<{ pid: number }> {
    const w = await this.#unary(
      `${TASKS}.Tasks/Create`,
      `${TASKS}.CreateTaskRequest`,
      request,
      `${TASKS}.CreateTaskResponse`,
      options,
    );
    return { pid: w['pid'] ?? 0 };
  }

  async startTask(containerId: string, options?: CallOptions): Promise<{ pid: number }> {
    const w = await this.#unary(`${TASKS}.Tasks/Start`, `${TASKS}.StartRequest`, { containerId }, `${TASKS}.StartResponse`, options);
    return { pid: w['pid'] ?? 0 };
  }

  /** Deletes a stopped task. containerd 1.6 refuses a live one with an untyped (`system`) error. */
  async deleteTask(containerId: string, options?: CallOptions): Promise<ExitStatus & { pid: number }> {
    const w = await this.#unary(
      `${TASKS}.Tasks/Delete`,
      `${TASKS}.DeleteTaskRequest`,
      { containerId },
      `${TASKS}.DeleteResponse`,
      options,
    );
    return { ...toExitStatus(w), pid: w['pid'] ?? 0 };
  }

  async killTask(
    containerId: string,
    signal: number,
    options?: CallOptions & { all?: boolean | undefined },
  ): Promise<void> {
    await this.#unary(
      `${TASKS}.Tasks/Kill`,
      `${TASKS}.KillRequest`,
      { containerId, signal, all: options?.all ?? false },
      EMPTY,
      options,
    );
  }

  /** Resolves when the task's init process has exited (at once if it already has). */
  async waitTask(containerId: string, options?: CallOptions): Promise<ExitStatus> {
    const w = await this.#unary(`${TASKS}.Tasks/Wait`, `${TASKS}.WaitRequest`, { containerId }, `${TASKS}.WaitResponse`, {
      ...options,
      timeoutMs: options?.timeoutMs ?? this.#waitTimeoutMs,
    });
    return toExitStatus(w);
  }

  async getTask(containerId: string, options?: CallOptions): Promise<Process> {
    const w = await this.#unary(`${TASKS}.Tasks/Get`, `${TASKS}.GetRequest`, { containerId }, `${TASKS}.GetResponse`, options);
    return toProcess(w['process']);
  }

  async listTasks(options?: CallOptions & { filter?: string | undefined }): Promise<Process[]> {
    const w = await this.#unary(
      `${TASKS}.Tasks/List`,
      `${TASKS}.ListTasksRequest`,
      { filter: options?.filter ?? '' },
      `${TASKS}.ListTasksResponse`,
      options,
    );
    return (w['tasks'] as unknown[]).map((p) => toProcess(p as Record<string, unknown>));
  }

  /**
   * Streams events matching any of `filters` (containerd filter syntax; the conditions inside one
   * filter are ANDed). The stream has no deadline; it ends with a BerthError when containerd goes
   * away (`unavailable`) or the signal aborts (`canceled`).
   */
  async *subscribe(filters: readonly string[], options?: { signal?: AbortSignal | undefined }): AsyncGenerator<Envelope> {
    const signal = options?.signal;
    if (signal?.aborted) throw BerthError.from(signal.reason, 'canceled');
    const call = this.#call(() =>
      this.#client.makeServerStreamRequest(
        `/${EVENTS}.Events/Subscribe`,
        (value: object) => encode(`${EVENTS}.SubscribeRequest`, value),
        (bytes: Buffer) => decode(`${EVENTS}.Envelope`, bytes),
        { filters: [...filters] },
        this.#metadata(),
        {},
      ),
    );
    const onAbort = (): void => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const w of call) yield toEnvelope(w as Record<string, unknown>);
    } catch (err) {
      throw fromGrpcError(err);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      call.cancel();
    }
  }

  /** Closes the connection; later calls fail as unavailable. */
  close(): void {
    this.#client.close();
  }

  #metadata(): Metadata {
    const md = new Metadata();
    md.set(NAMESPACE_HEADER, this.namespace);
    return md;
  }

  /** `method` is `<package>.<Service>/<Method>`, as in the gRPC path. */
  #unary(
    method: string,
    requestType: string,
    request: object,
    responseType: string,
    options: CallOptions | undefined,
  ): Promise<Record<string, any>> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(BerthError.from(signal.reason, 'canceled'));
    return new Promise((resolve, reject) => {
      const call = this.#call(() =>
        this.#client.makeUnaryRequest(
          `/${method}`,
          (value: object) => encode(requestType, value),
          (bytes: Buffer) => decode(responseType, bytes),
          request,
          this.#metadata(),
          { deadline: Date.now() + (options?.timeoutMs ?? this.#timeoutMs) },
          (err, response) => {
            signal?.removeEventListener('abort', onAbort);
            if (err !== null || response === undefined) reject(fromGrpcError(err ?? new Error(`${method}: empty response`)));
            else resolve(response);
          },
        ),
      );
      const onAbort = (): void => call.cancel();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** grpc-js throws (instead of failing the call) once the channel is closed. */
  #call<T>(start: () => T): T {
    try {
      return start();
    } catch (err) {
      throw new BerthError('unavailable', `containerd client: ${(err as Error).message}`, { cause: err });
    }
  }
}
