// For tests of this package and of the packages above it: a private containerd in a temp dir,
// and helpers to watch what the executor reports.
export { Sandbox, ExitRecorder, Output, eventually, missingRequirements, reapContainerd } from './sandbox.js';
export type { ReapOptions } from './sandbox.js';
