import { noopLogger, type LogFields, type Logger as PackageLogger } from '@berth/logger';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

/** `@berth/logger`'s logger, which every package accepts, plus `child` for per-component fields. */
export interface Logger extends PackageLogger {
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; stderr by default, like dockerd. */
  write?: (line: string) => void;
  now?: () => Date;
}

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * Lines in logrus' shapes, since that is what dockerd's operators parse: text
 * `time="..." level=info msg="..." k=v`, or JSON `{"level":..,"msg":..,"time":..,...fields}`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = SEVERITY[options.level ?? 'info'];
  const format = options.format ?? 'text';
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? (() => new Date());

  const make = (bound: LogFields): Logger => {
    const logger = { child: (fields: LogFields) => make({ ...bound, ...fields }) } as Logger;
    for (const level of LEVELS) {
      logger[level] = (message, fields) => {
        if (SEVERITY[level] < threshold) return;
        const all = { ...bound, ...fields };
        const time = now().toISOString();
        write(format === 'json' ? jsonLine(level, message, time, all) : textLine(level, message, time, all));
      };
    }
    return logger;
  };
  return make({});
}

/** A logger that drops everything; the default wherever none is given. */
export const silentLogger: Logger = { ...noopLogger, child: () => silentLogger };

function jsonLine(level: LogLevel, msg: string, time: string, fields: LogFields): string {
  const record: LogFields = { level, msg, time };
  for (const [key, value] of Object.entries(fields)) {
    // logrus keeps its own keys; a clashing field is renamed the way logrus does.
    record[key in record ? `fields.${key}` : key] = plain(value);
  }
  return `${JSON.stringify(record)}\n`;
}

function textLine(level: LogLevel, msg: string, time: string, fields: LogFields): string {
  let line = `time=${quote(time)} level=${level} msg=${quote(msg)}`;
  for (const [key, value] of Object.entries(fields)) {
    const v = plain(value);
    line += ` ${key}=${quote(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v))}`;
  }
  return `${line}\n`;
}

function plain(value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** logrus quotes a value only when it has to. */
function quote(value: string): string {
  return /^[\w./:@+-]+$/.test(value) ? value : JSON.stringify(value);
}
