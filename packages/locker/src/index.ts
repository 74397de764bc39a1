export { KeyedLock } from './keyed-lock.js';
export type { LockHandle } from './keyed-lock.js';
export { GroupSync } from './group-sync.js';
export type { GroupSyncOptions, GroupSyncRun } from './group-sync.js';
