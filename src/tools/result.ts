/** Tool results: success carries structuredContent plus the same JSON as text; errors carry isError and no structuredContent. */
import { StoreError } from '../store/store.js';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { CrmError } from '../domain/errors.js';
import { redact, redactValue } from '../util/redact.js';

export function ok(value: Record<string, unknown>): CallToolResult {
  const safe = redactValue(value);
  return { content: [{ type: 'text', text: JSON.stringify(safe) }], structuredContent: safe };
}

export function toCrmError(err: unknown): CrmError {
  if (err instanceof CrmError) return err;
  // The token store (Redis) went away: retryable, and the message already says what to check.
  if (err instanceof StoreError) return new CrmError({ code: 'network', message: redact(err.message), retryable: true });
  const message = err instanceof Error ? err.message : String(err);
  return new CrmError({ code: 'upstream', message: `Unexpected error: ${redact(message)}`, retryable: false });
}

export function fail(err: unknown): CallToolResult {
  const e = toCrmError(err);
  // toJSON redacts, and the whole text passes the redactor once more: a secret learnt after the error was
  // built (a token refreshed meanwhile) is masked too.
  const body = { error: e.toJSON() };
  return { isError: true, content: [{ type: 'text', text: redact(`${e.message}\n${JSON.stringify(body)}`) }] };
}
