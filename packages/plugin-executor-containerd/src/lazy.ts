// The part of the executor a daemon loads at start: nothing here imports gRPC or protobuf. They are
// loaded when a plugin first runs.
export { LazyContainerdExecutor } from './lazy-executor.js';
export type { LazyContainerdExecutorOptions } from './lazy-executor.js';
export { ContainerdSupervisor, CONTAINERD_MISSING } from './supervisor.js';
export type { ContainerdSupervisorOptions } from './supervisor.js';
