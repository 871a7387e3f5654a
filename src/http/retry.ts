/**
 * Retry decisions as pure functions. Whether a retry is safe depends on the operation, not the HTTP verb:
 * a read may always be repeated; a create may only be repeated when the CRM certainly did not run it
 * (rate-limit refusal, connection refused); after an ambiguous failure the caller must look before it
 * creates again.
 */
import type { ErrorCode } from '../domain/errors.js';

/** read: no side effects; idempotent: repeating gives the same state (PATCH with the same values); create: never blindly repeated. */
export type OperationKind = 'read' | 'idempotent' | 'create';

export interface FailureFacts {
  code: ErrorCode;
  /** The CRM certainly did not process the request (429/503 refusal, connection refused before sending). */
  notProcessed: boolean;
  /** Retryable by nature (5xx, timeouts, resets, rate limits). */
  transient: boolean;
}

export function shouldRetry(op: OperationKind, facts: FailureFacts, attempt: number, maxRetries: number): boolean {
  if (attempt >= maxRetries) return false;
  if (!facts.transient) return false;
  if (op === 'create') return facts.notProcessed;
  return true;
}

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  /** 0..1 → a random number; injectable for tests. */
  random?: () => number;
}

/** Exponential backoff with full jitter; a server-given wait (Retry-After, retry_after) wins when longer. */
export function backoffMs(attempt: number, retryAfterMs: number | undefined, o: BackoffOptions = {}): number {
  const base = o.baseMs ?? 250;
  const max = o.maxMs ?? 30_000;
  const exp = Math.min(max, base * 2 ** attempt);
  const jittered = Math.round(exp / 2 + (o.random ?? Math.random)() * (exp / 2));
  if (retryAfterMs !== undefined && retryAfterMs > jittered) return Math.min(retryAfterMs, max);
  return jittered;
}

/** Parses a Retry-After header (delta-seconds or HTTP-date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
