/**
 * Structured logging to stderr (stdout belongs to the stdio transport). Every line passes through
 * `redact` on its way out, so a secret cannot reach the log even if a caller logs it by mistake.
 */
import { pino, type Logger } from 'pino';
import { redact } from './redact.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

let root: Logger | undefined;

export interface LogOptions {
  level?: LogLevel;
  /** Where lines go; default stderr (fd 2). Tests pass a stream to capture them. */
  destination?: NodeJS.WritableStream | { write(s: string): unknown };
}

export function createLogger(options: LogOptions = {}): Logger {
  const dest = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: { svc: 'crm-mcp' },
      redact: { paths: ['headers.authorization', '*.authorization', '*.access_token', '*.refresh_token', '*.client_secret'], censor: '[REDACTED]' },
      hooks: { streamWrite: (s: string) => redact(s) },
    },
    dest as pino.DestinationStream,
  );
}

export function setLogger(logger: Logger): void {
  root = logger;
}

export function log(): Logger {
  root ??= createLogger({ level: (process.env.CRM_LOG_LEVEL as LogLevel | undefined) ?? 'info' });
  return root;
}
