/**
 * Kommo's wire rules for the HTTP core: what each request does (by verb and path), where the token may go,
 * and how answers map to errors (fact sheet §11: problem+json bodies, 204 for "no data", HTML 429/403).
 */
import { CrmError } from '../../domain/errors.js';
import type { ProviderAdapter, RawResponse } from '../../http/client.js';
import { parseRetryAfter } from '../../http/retry.js';
import { classifyKommo, kommoSafeUpdate } from './effects.js';

/** The bearer token may only be sent to the account's own API paths (never /oauth2/, never outside /api/v4/). */
export function kommoPathAllowed(path: string): boolean {
  if (!path.startsWith('/api/v4/')) return false;
  let decoded = path;
  for (let i = 0; i < 3; i++) {
    try {
      const next = decodeURIComponent(decoded);
      if (next === decoded) break;
      decoded = next;
    } catch {
      return false;
    }
  }
  return !/(^|\/)\.\.?(\/|$)/.test(decoded) && !decoded.includes('//') && !decoded.includes('/oauth2/') && !decoded.includes('\\');
}

interface Problem {
  title?: string;
  detail?: string;
  status?: number;
  retry_after?: number;
  hint?: string;
  'validation-errors'?: Array<{ request_id?: string; errors?: Array<{ code?: string; path?: string; detail?: string }> }>;
}

function isHtml(res: RawResponse): boolean {
  const ct = String(res.headers['content-type'] ?? '');
  return ct.includes('text/html') || /^\s*</.test(res.text);
}

export function mapKommoError(res: RawResponse, parsed: unknown): CrmError | undefined {
  const s = res.status;
  if (s >= 200 && s < 300) return undefined;
  const p = (parsed && typeof parsed === 'object' ? parsed : {}) as Problem;
  const requestId = kommoRequestId(res);
  const detail = p.detail ? `: ${p.detail}` : '';
  const base = { status: s, requestId };
  if (s === 400 || s === 422) {
    const items = (p['validation-errors'] ?? []).flatMap((v) => (v.errors ?? []).map((e) => ({ path: e.path, code: e.code, detail: e.detail })));
    const list = items.map((i) => `${i.path ?? '?'}: ${i.detail ?? i.code ?? 'invalid'}`).join('; ');
    return new CrmError({
      ...base,
      code: 'validation',
      message: `Kommo rejected the request${detail}${list ? ` (${list})` : ''}. Fix the listed fields and try again.`,
      details: items.length ? items : undefined,
    });
  }
  if (s === 401) {
    return new CrmError({
      ...base,
      code: 'auth',
      message:
        'Kommo rejected the credentials (401): the token is invalid, expired or revoked. Create a new long-lived token, or re-authorize the OAuth integration (crm-mcp auth kommo).',
    });
  }
  if (s === 402) {
    return new CrmError({
      ...base,
      code: 'forbidden',
      message: 'The Kommo account is not paid (402 Payment required): renew the subscription to use the API.',
    });
  }
  if (s === 403) {
    if (isHtml(res) || !parsed) {
      return new CrmError({
        ...base,
        code: 'forbidden',
        message:
          'Kommo refused access (403). This usually means the account or IP was blocked after repeated rate-limit violations; unblocking is done by Kommo support.',
      });
    }
    return new CrmError({ ...base, code: 'forbidden', message: `Kommo denied access${detail}. The user behind the token may lack rights for this action.` });
  }
  if (s === 404) {
    return new CrmError({ ...base, code: 'not_found', message: `Kommo: not found${detail}.` });
  }
  if (s === 405) {
    return new CrmError({ ...base, code: 'validation', message: `Kommo does not allow this HTTP method on this path${detail}.` });
  }
  if (s === 429) {
    const header = parseRetryAfter(res.headers['retry-after']);
    const body = typeof p.retry_after === 'number' ? p.retry_after * 1000 : undefined;
    return new CrmError({
      ...base,
      code: 'rate_limited',
      retryable: true,
      retryAfterMs: header ?? body,
      message: 'Kommo rate limit hit (429: more than 7 requests per second). Wait a few seconds and try again.',
    });
  }
  if (s >= 500) {
    return new CrmError({ ...base, code: 'upstream', retryable: true, message: `Kommo had a server error (${s})${detail}. Try again shortly.` });
  }
  return new CrmError({ ...base, code: 'upstream', message: `Kommo answered with unexpected status ${s}${detail}.` });
}

export function kommoRequestId(res: RawResponse): string | undefined {
  const v = res.headers['x-request-id'];
  return Array.isArray(v) ? v[0] : v;
}

export const kommoAdapter: ProviderAdapter = {
  name: 'kommo',
  // The query is classified from the URL actually sent (accrue_bonus, `_method`), not from what a tool meant to send.
  classify: (method, path, body, query) => classifyKommo(method, path, body, query),
  safeUpdate: (method, path, body, query) => kommoSafeUpdate(method, path, body, query),
  pathAllowed: kommoPathAllowed,
  mapError: mapKommoError,
  requestId: kommoRequestId,
};
