export type { ErrorKind, BerthErrorOptions } from './berth-error.js';
export {
  BerthError,
  kindOf,
  isKind,
  isNotFound,
  isInvalidParameter,
  isConflict,
  isUnavailable,
  notFound,
  invalidParameter,
  conflict,
  unavailable,
  system,
  wrap,
} from './berth-error.js';
