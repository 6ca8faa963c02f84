// One JSON object per line on stderr, for the worker, the API and the CLI. Callers pass ids, never
// addresses or secrets; redact() (src/redact.ts) is the backstop for text that comes from elsewhere (error messages).
import type { LogLevel, LogMetadata, Logger } from '@temporalio/common';
import { redact } from './redact';

const LEVELS: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };
function clean(value: unknown): unknown {
  if (typeof value === 'string') return redact(value);
  if (value instanceof Error) return redact(value.message);
  if (Array.isArray(value)) return value.map(clean);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
  }
  return value;
}

export class JsonLogger implements Logger {
  constructor(
    /** INFO until the process has read its config (LOG_LEVEL), then that. */
    public minimum: LogLevel = 'INFO',
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (LEVELS[level] < LEVELS[this.minimum]) return;
    this.write(JSON.stringify({ time: new Date().toISOString(), level, message: redact(message), ...(clean(meta ?? {}) as object) }));
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

export const logger = new JsonLogger();
