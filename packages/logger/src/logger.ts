/** Structured fields of a log record: `{ plugin: id, error: err }`. */
export type LogFields = Record<string, unknown>;

/**
 * What every berth package logs through: four levels, a message and structured fields. The host
 * application plugs its logger in (berthd's writes logrus-shaped text or JSON lines); libraries
 * stay silent by default with `noopLogger`.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** A logger that drops everything: the default wherever none is given. */
export const noopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
