import { root } from './schema.js';

/** `google.protobuf.Any`: a message of another type, named by its URL. */
export interface Any {
  typeUrl: string;
  value: Uint8Array;
}

export type TaskStatus = 'unknown' | 'created' | 'running' | 'stopped' | 'paused' | 'pausing';

/** `containerd.v1.types.Process`, what Tasks.Get and Tasks.List answer. */
export interface Process {
  containerId: string;
  /** The exec ID; equal to the container ID (or empty) for the task's init process. */
  id: string;
  pid: number;
  status: TaskStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exitStatus: number;
  exitedAt: Date | undefined;
}

/** `containerd.services.containers.v1.Container`, the fields berth sets or reads. */
export interface Container {
  id: string;
  labels: Record<string, string>;
  runtime: { name: string; options?: Any | undefined };
  spec?: Any | undefined;
  /** Empty for containers whose rootfs is a plain directory named in the spec. */
  snapshotter?: string | undefined;
  createdAt?: Date | undefined;
  updatedAt?: Date | undefined;
}

export interface CreateTaskRequest {
  containerId: string;
  /** Paths of FIFOs (or `file://`/`binary://` URIs) the shim writes to. Set both or neither. */
  stdout: string;
  stderr: string;
  options?: Any | undefined;
}

/** Answer of Tasks.Wait and Tasks.Delete. */
export interface ExitStatus {
  exitStatus: number;
  exitedAt: Date | undefined;
}

/** `containerd.events.TaskExit`, published on topic `/tasks/exit`. */
export interface TaskExit {
  containerId: string;
  id: string;
  pid: number;
  exitStatus: number;
  exitedAt: Date | undefined;
}

/** `containerd.services.events.v1.Envelope`: one event of the Subscribe stream. */
export interface Envelope {
  timestamp: Date | undefined;
  namespace: string;
  topic: string;
  event: Any | undefined;
}

export interface VersionInfo {
  version: string;
  revision: string;
}

/** `containerd.runc.v1.Options`, the runc shim's runtime options. */
export interface RuncOptions {
  noPivotRoot?: boolean;
  binaryName?: string;
  /** runc's `--root`: where runc keeps container state. */
  root?: string;
  systemdCgroup?: boolean;
  ioUid?: number;
  ioGid?: number;
}

export const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
export const RUNC_OPTIONS_TYPE_URL = 'containerd.runc.v1.Options';
export const TASK_EXIT_TYPE = 'containerd.events.TaskExit';

/** Protobuf object as protobufjs hands it out; mapped into the types above before anyone sees it. */
type Wire = Record<string, any>;

const TO_OBJECT = { longs: Number, enums: Number, defaults: true, arrays: true, objects: true } as const;

export function encode(typeName: string, value: object): Buffer {
  const type = root.lookupType(typeName);
  const bytes = type.encode(type.fromObject(value)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function decode(typeName: string, bytes: Uint8Array): Wire {
  const type = root.lookupType(typeName);
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

const STATUSES: readonly TaskStatus[] = ['unknown', 'created', 'running', 'stopped', 'paused', 'pausing'];

// Go's zero time.Time (year 1) is what containerd sends for "never"; it means no time at all.
const GO_ZERO_TIME_SECONDS = -62135596800;

export function toDate(ts: Wire | null | undefined): Date | undefined {
  if (ts === null || ts === undefined) return undefined;
  const seconds = Number(ts['seconds'] ?? 0);
  const nanos = Number(ts['nanos'] ?? 0);
  if (seconds <= GO_ZERO_TIME_SECONDS || (seconds === 0 && nanos === 0)) return undefined;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

function toAny(any: Wire | null | undefined): Any | undefined {
  if (any === null || any === undefined) return undefined;
  return { typeUrl: String(any['typeUrl'] ?? ''), value: (any['value'] as Uint8Array | undefined) ?? new Uint8Array() };
}

export function toProcess(p: Wire | null | undefined): Process {
  const w = p ?? {};
  return {
    containerId: w['containerId'] ?? '',
    id: w['id'] ?? '',
    pid: w['pid'] ?? 0,
    status: STATUSES[w['status'] as number] ?? 'unknown',
    stdin: w['stdin'] ?? '',
    stdout: w['stdout'] ?? '',
    stderr: w['stderr'] ?? '',
    terminal: w['terminal'] ?? false,
    exitStatus: w['exitStatus'] ?? 0,
    exitedAt: toDate(w['exitedAt']),
  };
}

export function toContainer(c: Wire | null | undefined): Container {
  const w = c ?? {};
  const runtime = (w['runtime'] as Wire | null) ?? {};
  return {
    id: w['id'] ?? '',
    labels: { ...(w['labels'] as Record<string, string> | undefined) },
    runtime: { name: runtime['name'] ?? '', options: toAny(runtime['options']) },
    spec: toAny(w['spec']),
    snapshotter: w['snapshotter'] ?? '',
    createdAt: toDate(w['createdAt']),
    updatedAt: toDate(w['updatedAt']),
  };
}

export function toExitStatus(w: Wire): ExitStatus {
  return { exitStatus: w['exitStatus'] ?? 0, exitedAt: toDate(w['exitedAt']) };
}

export function toEnvelope(w: Wire): Envelope {
  return {
    timestamp: toDate(w['timestamp']),
    namespace: w['namespace'] ?? '',
    topic: w['topic'] ?? '',
    event: toAny(w['event']),
  };
}

/** The OCI runtime spec travels as JSON inside an `Any`. */
export function packSpec(spec: object): Any {
  return { typeUrl: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) };
}

export function unpackSpec(any: Any): unknown {
  if (any.typeUrl !== SPEC_TYPE_URL) throw new TypeError(`not an OCI spec: ${any.typeUrl}`);
  return JSON.parse(Buffer.from(any.value).toString('utf8'));
}

export function packRuncOptions(options: RuncOptions): Any {
  return { typeUrl: RUNC_OPTIONS_TYPE_URL, value: encode(RUNC_OPTIONS_TYPE_URL, options) };
}

export function unpackRuncOptions(any: Any): RuncOptions {
  const w = decode(RUNC_OPTIONS_TYPE_URL, any.value);
  const out: RuncOptions = {};
  for (const key of ['noPivotRoot', 'binaryName', 'root', 'systemdCgroup', 'ioUid', 'ioGid'] as const) {
    const v = w[key];
    if (v !== undefined && v !== '' && v !== 0 && v !== false) (out as Wire)[key] = v;
  }
  return out;
}

/**
 * The `TaskExit` inside an envelope, or undefined for any other event. Type URLs of events are
 * bare message names (`containerd.events.TaskExit`); a `types.example.com/`-style prefix is tolerated.
 */
export function unpackTaskExit(event: Any | undefined): TaskExit | undefined {
  if (event === undefined) return undefined;
  const name = event.typeUrl.slice(event.typeUrl.lastIndexOf('/') + 1);
  if (name !== TASK_EXIT_TYPE) return undefined;
  const w = decode(TASK_EXIT_TYPE, event.value);
  return {
    containerId: w['containerId'] ?? '',
    id: w['id'] ?? '',
    pid: w['pid'] ?? 0,
    exitStatus: w['exitStatus'] ?? 0,
    exitedAt: toDate(w['exitedAt']),
  };
}
