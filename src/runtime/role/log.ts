// Structured logs for the in-cluster roles: one JSON object per line on stderr, so that
// `kubectl logs` output can be filtered with jq and shipped by any log collector.
import type { Writer } from '../io';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  with(fields: LogFields): Logger;
}

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export function createJsonLogger(options: {
  readonly level: LogLevel;
  readonly out: Writer;
  readonly now: () => Date;
  readonly fields?: LogFields;
}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const base = options.fields ?? {};
  const emit =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}): void => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      const line = { time: options.now().toISOString(), level, msg, ...base, ...fields };
      options.out.write(`${JSON.stringify(line, errorReplacer)}\n`);
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    with: (fields) => createJsonLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
