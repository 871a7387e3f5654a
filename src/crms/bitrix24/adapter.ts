/**
 * Bitrix24's wire rules for the HTTP core (fact sheet §1, §3, §6): every request is classified by its REST
 * method and its body as sent, read the way the portal reads it (a batch by its strongest command; names
 * folded as the portal folds them, so a body with two names folding to one counts as admin); the webhook
 * secret only goes to the portal's /rest/ paths; errors may come with any HTTP status, even 200, and with
 * an empty code.
 */
import type { Effect } from '../../policy/policy.js';
import { CrmError } from '../../domain/errors.js';
import type { HttpMethod, ProviderAdapter, RawResponse } from '../../http/client.js';
import { checkCall, classifyBatchParams, classifyCall, normalizeMethod } from './methods.js';
import { withRedirectTarget } from './relocation.js';

/** The REST method a path calls, e.g. `/rest/1/secret/crm.deal.list.json` → `crm.deal.list`. */
export function methodOfPath(path: string, basePath: string): string | undefined {
  if (!path.startsWith(basePath)) return undefined;
  try {
    return normalizeMethod(decodeURIComponent(path.slice(basePath.length)));
  } catch {
    return undefined; // a broken escape is no method name
  }
}

interface BitrixError {
  error?: unknown;
  error_description?: unknown;
}

export function mapBitrixError(res: RawResponse, parsed: unknown): CrmError | undefined {
  const s = res.status;
  if (s >= 300 && s < 400) {
    const loc = res.headers.location;
    // The Location repeats the path and query (the webhook secret, an OAuth `auth=` token): it stays off the
    // error's details; the provider reads it through redirectTarget() to decide on a portal move.
    return withRedirectTarget(
      new CrmError({ code: 'upstream', status: s, message: `Bitrix24 answered ${s} (portal moved?)` }),
      Array.isArray(loc) ? loc[0] : loc,
    );
  }
  const body = (parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {}) as BitrixError;
  // Errors may arrive with HTTP 200 (§3): an `error` key means failure whatever the status.
  if (body.error === undefined && s < 400) return undefined;
  const code = typeof body.error === 'string' ? body.error : '';
  const desc = typeof body.error_description === 'string' ? body.error_description : '';
  return bitrixError(code, desc, s);
}

/** Maps a Bitrix24 error code (compared case-insensitively, §3) to the taxonomy. */
export function bitrixError(code: string, desc: string, status: number): CrmError {
  const c = code.toUpperCase();
  const text = `${code || 'error'}${desc ? `: ${desc}` : ''}`;
  const base = { status, details: { bitrix_error: code, description: desc } };
  switch (c) {
    case 'QUERY_LIMIT_EXCEEDED':
      return new CrmError({
        ...base,
        code: 'rate_limited',
        retryable: true,
        retryAfterMs: 1000,
        message: 'Bitrix24 request rate limit hit (QUERY_LIMIT_EXCEEDED). Wait a moment and try again.',
      });
    case 'OPERATION_TIME_LIMIT':
      return new CrmError({
        ...base,
        code: 'rate_limited',
        retryable: true,
        retryAfterMs: 60_000,
        message:
          'Bitrix24 blocked this method for a while (OPERATION_TIME_LIMIT: too much processing time in 10 minutes). Other methods still work; try this one later.',
      });
    case 'EXPIRED_TOKEN':
    case 'INVALID_TOKEN':
    case 'NO_AUTH_FOUND':
    case 'INVALID_GRANT':
      return new CrmError({
        ...base,
        code: 'auth',
        message: `Bitrix24 rejected the credentials (${text}). Check the webhook URL (it may have been deleted or regenerated) or re-authorize the app.`,
      });
    case 'INSUFFICIENT_SCOPE':
      return new CrmError({
        ...base,
        code: 'forbidden',
        message: `Bitrix24: the webhook/app lacks the scope for this method (${text}). Add the scope (e.g. crm, task, user) in the webhook settings.`,
      });
    case 'ACCESS_DENIED':
    case 'INVALID_CREDENTIALS':
    case 'USER_ACCESS_ERROR':
    case 'METHOD_CONFIRM_WAITING':
    case 'METHOD_CONFIRM_DENIED':
    case 'WRONG_AUTH_TYPE':
    case 'PORTAL_DELETED':
    case 'PAYMENT_REQUIRED':
      return new CrmError({ ...base, code: 'forbidden', message: `Bitrix24 refused access (${text}).` });
    case 'ERROR_METHOD_NOT_FOUND':
      return new CrmError({ ...base, code: 'not_found', message: `Bitrix24 has no such method (${text}). Check the method name (e.g. crm.deal.list).` });
    case 'NOT_FOUND':
    case 'OWNER_NOT_FOUND':
      return new CrmError({ ...base, code: 'not_found', message: `Bitrix24: not found (${text}).` });
    case 'OVERLOAD_LIMIT':
      return new CrmError({
        ...base,
        code: 'forbidden',
        message: 'Bitrix24 blocked REST access for this portal (OVERLOAD_LIMIT); this is lifted by Bitrix24 support.',
      });
    case 'INTERNAL_SERVER_ERROR':
    case 'ERROR_UNEXPECTED_ANSWER':
      return new CrmError({ ...base, code: 'upstream', retryable: true, message: `Bitrix24 had a server error (${text}). Try again shortly.` });
    default:
      break;
  }
  // CRM compat methods answer with an empty code and a description (§6).
  if (/not found/i.test(desc) || /not found/i.test(code)) return new CrmError({ ...base, code: 'not_found', message: `Bitrix24: ${desc || code}.` });
  if (/access denied/i.test(desc)) return new CrmError({ ...base, code: 'forbidden', message: `Bitrix24: ${desc}` });
  if (status >= 500)
    return new CrmError({
      ...base,
      code: 'upstream',
      retryable: true,
      message: `Bitrix24 had a server error (${status}${text ? `, ${text}` : ''}). Try again shortly.`,
    });
  if (status === 401) return new CrmError({ ...base, code: 'auth', message: `Bitrix24 rejected the credentials (${text}).` });
  if (status === 403) return new CrmError({ ...base, code: 'forbidden', message: `Bitrix24 refused access (${text}).` });
  return new CrmError({ ...base, code: 'validation', message: `Bitrix24 rejected the request (${text}).` });
}

export function makeBitrixAdapter(basePath: string): ProviderAdapter {
  return {
    name: 'bitrix24',
    classify(_method: HttpMethod, path: string, body: unknown, query?: URLSearchParams): Effect {
      const m = methodOfPath(path, basePath);
      if (!m) return 'admin';
      // The portal merges query parameters with the body (merge rules unknown, §1.2): never read both.
      if (query && [...query.keys()].length > 0) return 'admin';
      // Independent of the tools: whatever built the body, it is classified as the portal will read it.
      if (m === 'batch') {
        const b = classifyBatchParams(body, { core: true });
        return b.problem ? 'admin' : b.effect;
      }
      return classifyCall(m, body, { core: true });
    },
    // The same reading as classify: a narrow update (CRM_SAFE_UPDATES) only when the whole call is one.
    safeUpdate(_method: HttpMethod, path: string, body: unknown, query?: URLSearchParams) {
      const m = methodOfPath(path, basePath);
      if (!m || (query && [...query.keys()].length > 0)) return undefined;
      if (m === 'batch') {
        const b = classifyBatchParams(body, { core: true });
        return b.problem ? undefined : b.safeUpdate;
      }
      const c = checkCall(m, body, { core: true });
      return c.problem ? undefined : c.safeUpdate;
    },
    pathAllowed: (path) => path.startsWith(basePath) && !!methodOfPath(path, basePath),
    mapError: mapBitrixError,
  };
}
