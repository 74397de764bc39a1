/** Structured logging the host application plugs in (the daemon passes pino); silent by default. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const noop = (): void => {};

export const noopLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
