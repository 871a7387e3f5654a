/** The error taxonomy every provider maps into. Messages are actionable and never carry a secret. */
import { redact, redactValue } from '../util/redact.js';

export const ERROR_CODES = [
  'auth',
  'forbidden',
  'not_found',
  'validation',
  'rate_limited',
  'upstream',
  'network',
  'policy_denied',
  'config',
  // A person approves writes (src/approvals/, CRM_CONFIRM_WRITES): why a write waits or was not sent.
  'approval_required',
  'approval_pending',
  'approval_declined',
  'approval_expired',
  'approval_used',
  'approval_invalid',
  'approval_mismatch',
  'approval_unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface CrmErrorInit {
  code: ErrorCode;
  message: string;
  retryable?: boolean;
  status?: number;
  requestId?: string;
  /** Details safe to show (validation paths...). */
  details?: unknown;
  /** True when a write may or may not have been applied (lost response). */
  ambiguous?: boolean;
  /** Milliseconds the CRM asked us to wait. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class CrmError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly status?: number;
  readonly requestId?: string;
  readonly details?: unknown;
  readonly ambiguous: boolean;
  readonly retryAfterMs?: number;

  constructor(init: CrmErrorInit) {
    super(redact(init.message), init.cause ? { cause: init.cause } : undefined);
    this.name = 'CrmError';
    this.code = init.code;
    this.retryable = init.retryable ?? false;
    this.status = init.status;
    this.requestId = init.requestId;
    // Details often echo the CRM's error body, which may echo the credential: redact every string in them.
    this.details = init.details === undefined ? undefined : redactValue(init.details);
    this.ambiguous = init.ambiguous ?? false;
    this.retryAfterMs = init.retryAfterMs;
  }

  toJSON() {
    return {
      code: this.code,
      message: redact(this.message),
      retryable: this.retryable,
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.requestId ? { request_id: this.requestId } : {}),
      ...(this.details !== undefined ? { details: redactValue(this.details) } : {}),
    };
  }
}

export function isCrmError(e: unknown): e is CrmError {
  return e instanceof CrmError;
}

export function validationError(message: string, details?: unknown): CrmError {
  return new CrmError({ code: 'validation', message, details });
}

export function notFound(what: string): CrmError {
  return new CrmError({ code: 'not_found', message: `${what} was not found. Check the id (list or search tools return valid ids).` });
}
