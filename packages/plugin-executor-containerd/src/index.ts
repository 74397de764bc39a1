export { ContainerdExecutor, BUNDLE_LABEL, DEFAULT_RUNTIME } from './executor.js';
export { LazyContainerdExecutor } from './lazy-executor.js';
export type { LazyContainerdExecutorOptions } from './lazy-executor.js';
export { ContainerdSupervisor, CONTAINERD_MISSING } from './supervisor.js';
export type { ContainerdSupervisorOptions } from './supervisor.js';
export type { ExitHandler, ContainerdConnection, ContainerdExecutorOptions, OperationOptions } from './executor.js';
export { ContainerdClient, DEFAULT_PLUGIN_NAMESPACE, NAMESPACE_HEADER, grpcTarget } from './client.js';
export type { ContainerdClientOptions, CallOptions } from './client.js';
export { startContainerd, containerdConfig, containerdPaths } from './containerd-process.js';
export type { StartContainerdOptions, ContainerdProcess, ContainerdExit } from './containerd-process.js';
export { fromGrpcError, kindOfGrpcCode } from './errors.js';
export { signalNumber } from './signals.js';
export { taskExitFilter } from './exit-monitor.js';
export {
  SPEC_TYPE_URL,
  RUNC_OPTIONS_TYPE_URL,
  TASK_EXIT_TYPE,
  packSpec,
  unpackSpec,
  packRuncOptions,
  unpackRuncOptions,
  unpackTaskExit,
} from './proto/messages.js';
export type {
  Any,
  Container,
  CreateTaskRequest,
  Envelope,
  ExitStatus,
  Process,
  RuncOptions,
  TaskExit,
  TaskStatus,
  VersionInfo,
} from './proto/messages.js';
