/**
 * The checks a request passes before anything reads its body: Host (DNS rebinding on loopback), Origin (a
 * browser page from a site not on the allow list), CORS preflight, the bearer token. Also the per-request
 * narrowing headers, which can only tighten the operator's policy.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SAFE_UPDATES, type PolicyFlags } from '../../policy/policy.js';

export const rpcError = (code: number, message: string, id: string | number | null = null) => JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id });

/** The host name of a Host header, without the port ("[::1]" keeps its brackets). */
export function hostname(h: string | undefined): string {
  if (!h) return '';
  return h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : (h.split(':')[0] ?? '');
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

const CLEAR_FALSE = new Set(['0', 'false', 'no', 'off']);
const CLEAR_TRUE = new Set(['1', 'true', 'yes', 'on']);

/**
 * Per-request narrowing from headers: `X-CRM-Read-Only`, `X-CRM-Safe-Mode`, `X-CRM-Allow-Delete: false`,
 * `X-CRM-Allow-Admin: false`, `X-CRM-Safe-Updates: none` (or the kinds to keep: `stage`, `stage,task_done`).
 * They fail closed: a header that is present narrows unless its value is one
 * clear word that does not (read-only/safe-mode: a clear "false"; allow-delete/allow-admin: a clear "true",
 * which still cannot widen the operator's flags). A repeated header, a list, a typo or an empty value
 * narrows, so a client cannot undo what a proxy added by sending its own copy.
 *
 * Read from the raw header list (`req.rawHeaders`: name, value, name, value …), every copy of every
 * spelling: `req.headers` is a digest Node builds (it joins some repeated headers and drops others), and the
 * service refuses a request whose list reached the header cap, so the raw list here is the whole of it.
 */
export function narrowFromHeaders(rawHeaders: readonly string[]): Partial<PolicyFlags> {
  const seen = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!name.startsWith('x-crm-')) continue;
    seen.set(name, [...(seen.get(name) ?? []), rawHeaders[i + 1]!]);
  }
  /** undefined: absent; otherwise the single clear word, or null when it is not one clear word. */
  const word = (name: string): string | null | undefined => {
    const values = seen.get(name);
    if (values === undefined) return undefined;
    if (values.length !== 1) return null;
    const v = values[0]!.trim().toLowerCase();
    return /^[a-z0-9]+$/.test(v) ? v : null;
  };
  const narrow: Partial<PolicyFlags> = {};
  const readOnly = word('x-crm-read-only');
  if (readOnly !== undefined && !(readOnly !== null && CLEAR_FALSE.has(readOnly))) narrow.allowWrites = false;
  const safe = word('x-crm-safe-mode');
  if (safe !== undefined && !(safe !== null && CLEAR_FALSE.has(safe))) narrow.safeMode = true;
  const del = word('x-crm-allow-delete');
  if (del !== undefined && !(del !== null && CLEAR_TRUE.has(del))) narrow.allowDelete = false;
  const admin = word('x-crm-allow-admin');
  if (admin !== undefined && !(admin !== null && CLEAR_TRUE.has(admin))) narrow.allowAdmin = false;
  // The narrow updates safe mode admits (CRM_SAFE_UPDATES): only those named are kept (narrowFlags can never
  // add one the operator did not list); "none", a repeat, an unknown kind or an empty value keeps none.
  const kinds = seen.get('x-crm-safe-updates');
  if (kinds !== undefined) {
    const named = kinds.length === 1 ? kinds[0]!.split(',').map((k) => k.trim().toLowerCase()) : [];
    const known = named.every((k) => (SAFE_UPDATES as readonly string[]).includes(k));
    narrow.safeUpdates = known ? SAFE_UPDATES.filter((k) => named.includes(k)) : [];
  }
  return narrow;
}

/**
 * Most header fields a request may carry. Node keeps only the first `maxHeadersCount` fields of a request
 * and silently drops the rest, so a narrowing header a proxy appended after a client's flood of tiny headers
 * would vanish; the service sets this cap on its server and refuses (431) a request that reaches it. A real
 * MCP request carries a few dozen at most.
 */
export const MAX_HEADER_FIELDS = 1000;

/**
 * Whether the request reached the header cap. Node collects the raw list in chunks and stops once it holds
 * `maxHeadersCount` fields (it may hold a few more, never fewer), so a request with fewer fields than the cap
 * arrives complete and one with as many or more is never under it.
 */
export function reachedHeaderCap(rawHeaders: readonly string[], cap = MAX_HEADER_FIELDS): boolean {
  return rawHeaders.length / 2 >= cap;
}

export const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time: both sides are hashed to the same length first, so neither length nor content leaks. */
export function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

/** The token of an `Authorization: Bearer …` header, if it has that form. */
export function bearerOf(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/**
 * Request headers a browser client may send. The 2026-07-28 standard headers (`Mcp-Method`, `Mcp-Name`)
 * are mirrored by every modern client, so a preflight that did not allow them would break browser clients.
 */
export const CORS_ALLOW_HEADERS =
  'authorization, content-type, accept, mcp-protocol-version, mcp-session-id, mcp-method, mcp-name, last-event-id, x-crm-read-only, x-crm-safe-mode, x-crm-allow-delete, x-crm-allow-admin, x-crm-safe-updates';

export interface GuardOptions {
  /** Check the Host header against `allowedHosts` (loopback binds, or when hosts were configured). */
  checkHost: boolean;
  allowedHosts: ReadonlySet<string>;
  corsOrigins: ReadonlySet<string>;
  /** Origins of this very server (same-origin requests are not cross-site); filled once the port is known. */
  ownOrigins: ReadonlySet<string>;
  /** sha256 of the bearer token, when one is required. */
  expected?: Buffer;
  /** Adds `connection: close` to refusals while shutting down. */
  closing: () => boolean;
}

export type Guard = (req: IncomingMessage, res: ServerResponse, cors: Record<string, string>) => boolean;

export function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string>, closing: boolean): void {
  if (closing) headers = { ...headers, connection: 'close' };
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
}

/** A guard: true when the request may go on; else the refusal has been sent. Fills `cors` for allowed origins. */
export function createGuard(o: GuardOptions): Guard {
  const json = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => sendJson(res, status, body, headers, o.closing());
  return (req, res, cors) => {
    if (o.checkHost && !o.allowedHosts.has(hostname(req.headers.host))) {
      json(res, 403, rpcError(-32000, 'Forbidden host'));
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !o.corsOrigins.has(origin) && !o.ownOrigins.has(origin)) {
      json(res, 403, rpcError(-32000, 'Forbidden origin'));
      return false;
    }
    if (origin !== undefined && o.corsOrigins.has(origin)) {
      Object.assign(cors, {
        'access-control-allow-origin': origin,
        vary: 'Origin',
        'access-control-expose-headers': 'mcp-session-id, www-authenticate, retry-after',
      });
    }
    if (req.method === 'OPTIONS') {
      if (origin !== undefined && o.corsOrigins.has(origin)) {
        res
          .writeHead(204, {
            ...cors,
            'access-control-allow-methods': 'POST, GET, OPTIONS',
            'access-control-allow-headers': CORS_ALLOW_HEADERS,
            'access-control-max-age': '600',
          })
          .end();
      } else json(res, 405, rpcError(-32000, 'Method not allowed'), { allow: 'POST' });
      return false;
    }
    if (o.expected) {
      const token = bearerOf(req);
      if (token === undefined || !tokenMatches(token, o.expected)) {
        const challenge = token !== undefined ? 'Bearer realm="crm-mcp", error="invalid_token"' : 'Bearer realm="crm-mcp"';
        json(res, 401, rpcError(-32001, 'Unauthorized: send Authorization: Bearer <CRM_MCP_HTTP_TOKEN>'), { ...cors, 'www-authenticate': challenge });
        return false;
      }
    }
    return true;
  };
}
