export { KeyedLock } from './keyed-lock.js';
export type { LockHandle } from './keyed-lock.js';
export { abortable } from './abortable.js';
export { GroupSync } from './group-sync.js';
export type { GroupSyncOptions, GroupSyncRun } from './group-sync.js';
