export { BoltFile, BoltBucket, BoltCursor } from './reader.js';
export type { BoltEntry, BoltMeta, BoltOpenOptions, BoltFromBytesOptions } from './reader.js';
export { writeBolt } from './writer.js';
export type { BoltWriteBucket, BoltWriteEntry, BoltWriteOptions } from './writer.js';
export { checkBolt } from './check.js';
