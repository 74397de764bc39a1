export { fsyncDir } from './fsync-dir.js';
export { processAlive } from './process-alive.js';
