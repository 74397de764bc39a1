export { noopLogger } from './logger.js';
export type { Logger, LogFields } from './logger.js';
