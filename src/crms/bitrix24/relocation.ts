/**
 * Which "portal moved" redirects (fact sheet §1.1, [D-CHDOMAIN]: the old address answers 302 + Location and
 * the client repeats the call on the new host) may carry the credential. The webhook secret (a path segment)
 * or the OAuth access token (`auth=`) goes with the repeated call, so a Location header alone must never be
 * able to send it to a host the user did not configure:
 *  - a cloud portal (`name.bitrix24.<tld>`) may move to another cloud portal name, on any Bitrix24 cloud
 *    domain (the documented case: `b24-xxx.bitrix24.yy` → a custom name), over https on the default port;
 *  - an on-premise portal only to itself (same host; http → https on the same host is allowed, not back);
 *  - never to loopback or a private test server, except between two loopback origins the caller trusts: the
 *    emulators it started (tests, `--sandbox`), which stand in for cloud portals there. They are passed in
 *    when the provider is built (BuildDeps.trustedOrigins), never looked up in a set the emulators fill.
 * A move that passes is followed for one request at a time; only the user makes it lasting, by changing the
 * configured address (see BitrixProvider.call and `crm-mcp doctor`).
 */
import { CrmError } from '../../domain/errors.js';

/** A move the provider followed for a request but did not adopt: the user confirms it by changing the config. */
export interface PortalMove {
  /** The configured origin that answered "moved". */
  from: string;
  /** The origin it named (no path: the path carries the webhook secret). */
  to: string;
  seen_at: string;
}

/** Where a followed move is recorded for `crm-mcp doctor` (keyed by the configured origin, never by the secret). */
export function portalMoveKey(origin: string): string {
  return `portal-move:bitrix24:${new URL(origin).origin}`;
}

/** Where a redirect error keeps its Location: a symbol, not enumerable, so no serialiser (JSON, logs) sees it. */
const TARGET = Symbol('bitrix24.redirectTarget');

export function withRedirectTarget(e: CrmError, location: string | undefined): CrmError {
  Object.defineProperty(e, TARGET, { value: location, enumerable: false });
  return e;
}

export function redirectTarget(e: CrmError): string | undefined {
  return (e as unknown as Record<symbol, string | undefined>)[TARGET];
}

/** A 3xx answer, as the adapter maps it (see withRedirectTarget). */
export function isRedirect(e: unknown): e is CrmError {
  return e instanceof CrmError && e.status !== undefined && e.status >= 300 && e.status < 400;
}

/** A redirect error without its Location (same path and query as the request: the secret or `auth=` token). */
export function withoutLocation(e: unknown): unknown {
  if (!isRedirect(e)) return e;
  return new CrmError({
    code: e.code,
    status: e.status,
    message: `${e.message}: the new address redirected again; not followed (a move is followed once per request).`,
    retryable: false,
  });
}

/**
 * Bitrix24 cloud domains (§1.1: `*.bitrix24.com/.de/.ru/.by/.kz/…`; the rest are the regional sites Bitrix24
 * runs). A fixed list, not "bitrix24.<anything>": anyone could register bitrix24.<some other TLD>.
 */
const CLOUD_SUFFIXES = ['ru', 'com', 'de', 'by', 'kz', 'ua', 'eu', 'es', 'fr', 'it', 'pl', 'uk', 'in', 'cn', 'jp', 'vn', 'id', 'com.br', 'com.tr', 'mx', 'co'];
const CLOUD_PORTAL = new RegExp(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.bitrix24\\.(?:${CLOUD_SUFFIXES.map((s) => s.replace('.', '\\.')).join('|')})$`);

/** True for a Bitrix24 cloud portal host such as `acme.bitrix24.ru` (not `bitrix24.ru.evil.com`, not `evilbitrix24.ru`). */
export function isCloudPortal(hostname: string): boolean {
  return CLOUD_PORTAL.test(hostname.toLowerCase());
}

function isLoopbackOrLocal(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\./.test(h) || h === '::1' || h === '0.0.0.0' || h.startsWith('::ffff:127.');
}

/** A loopback origin the caller trusts (an emulator it started); a trusted origin elsewhere earns nothing. */
function isTrusted(u: URL, trusted: readonly string[]): boolean {
  return isLoopbackOrLocal(u.hostname) && trusted.some((t) => new URL(t).origin === u.origin);
}

export type MoveDecision = { follow: true; origin: string } | { follow: false; reason: string };

/**
 * Decides whether a redirect from the configured origin `from` to `location` is a portal move that may carry
 * the credential. `basePath` is the REST prefix (`/rest/{user}/{secret}/` or `/rest/`): the move must keep it.
 * `trusted`: loopback origins of emulators the caller started (none for a real portal). Reasons name hosts
 * only, never the path or query (they carry the secret).
 */
export function decidePortalMove(from: string, location: string | undefined, basePath: string, trusted: readonly string[] = []): MoveDecision {
  if (!location) return { follow: false, reason: 'the redirect names no new address' };
  const src = new URL(from);
  let to: URL;
  try {
    to = new URL(location, src);
  } catch {
    return { follow: false, reason: 'the redirect address is not a URL' };
  }
  if (to.protocol !== 'https:' && to.protocol !== 'http:') return { follow: false, reason: 'the redirect is not to a web address' };
  if (to.username || to.password) return { follow: false, reason: `the redirect to ${to.host} carries a user name` };
  if (to.origin === src.origin) return { follow: false, reason: 'the redirect points back to the same address' };
  if (!to.pathname.startsWith(basePath)) return { follow: false, reason: `the redirect to ${to.host} changes the REST path` };
  // Test mode: both ends are loopback emulators the caller started and named when it built the provider.
  if (isTrusted(src, trusted) && isTrusted(to, trusted)) return { follow: true, origin: to.origin };
  if (isLoopbackOrLocal(to.hostname)) return { follow: false, reason: `the redirect points to a local address (${to.host})` };
  if (isCloudPortal(src.hostname)) {
    if (isCloudPortal(to.hostname) && to.protocol === 'https:' && to.port === '') return { follow: true, origin: to.origin };
    return { follow: false, reason: `${to.host} is not a Bitrix24 cloud portal address` };
  }
  // On-premise: the configured host only (an http → https upgrade on the default port is fine).
  if (to.hostname === src.hostname && to.protocol === 'https:' && src.protocol === 'http:' && to.port === '') return { follow: true, origin: to.origin };
  return { follow: false, reason: `${to.host} is not the configured portal host ${src.host}` };
}
