/**
 * A stateful emulator of the Kommo (amoCRM) API v4 on 127.0.0.1, for tests and `--sandbox`. Every behaviour
 * cites `shared/research/kommo-api.md` (§ numbers). Request pipeline: block check (§3) → OAuth endpoints
 * (§2.1: the `/oauth` consent page, the token endpoint; not rate limited) → `/api/v4`: rate limits (§3) → Bearer auth (§2) →
 * the query read as PHP reads it, and a POST's method override honoured, as PHP frameworks do → routes.
 */
import { EmulatorHarness, type EmuRequest, type EmuResponse, type Fault, type FaultMatch, parsePhpQuery, type RecordedRequest } from '../harness.js';
import { KommoAuthServer } from './auth.js';
import { type Ctx, DEFAULT_BEHAVIOUR, type KommoBehaviour } from './context.js';
import { DEMO, emptyState, seedDemo, seedMetadata } from './demo-data.js';
import { KommoRateLimiter, type RateLimitOptions } from './rate-limit.js';
import { ApiError, methodNotAllowed, NGINX_403, problemResponse, requestId, routeNotFound, tooManyBody, unauthorized } from './responses.js';
import { route } from './router.js';
import { nowSec } from './store.js';
import type { KommoState } from './types.js';
import { changesSince, snapshot, WebhookSender } from './webhooks.js';

export { DEMO } from './demo-data.js';
export type { KommoState } from './types.js';
export type { KommoBehaviour } from './context.js';

export interface KommoEmulatorOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Default 'sandbox'. */
  subdomain?: string;
  /** Default 31000001. */
  accountId?: number;
  /** Seed demo records (companies, contacts, leads, notes, tasks); default true. Metadata is always there. */
  demo?: boolean;
  /** PRNG seed for demo data; default 42. */
  seed?: number;
  /** §3 limits; `false` turns them off. Defaults: 7 req/s per token, 50 per account, block after 10 429s in 60 s. */
  rateLimit?: false | RateLimitOptions;
  /** The OAuth integration the token endpoint accepts (§2.1). Access tokens live `accessTokenTtlSec` (86400). */
  oauth?: { clientId: string; clientSecret: string; redirectUri: string; accessTokenTtlSec?: number };
  /** Extra opaque bearer tokens accepted as long-lived tokens. */
  longLivedTokens?: string[];
  /** Variants of undocumented or disputed behaviour, and account settings (see `KommoBehaviour`). */
  behaviour?: Partial<KommoBehaviour>;
}

export interface KommoEmulator {
  /** Origin, e.g. http://127.0.0.1:41234 (API at `${url}/api/v4/...`). */
  readonly url: string;
  readonly harness: EmulatorHarness;
  /** = harness.requests */
  readonly requests: RecordedRequest[];
  /** Live data in Kommo's JSON shapes (without `_links`). */
  readonly state: KommoState;
  /** The behaviour variants in force; tests may change them between requests. */
  readonly behaviour: KommoBehaviour;
  readonly stats: { rateLimited: number; blocked: boolean; tokenRequests: number; refreshes: number };
  /** HS256 JWT (aud, jti, iat, nbf, exp, sub, account_id, base_domain, api_domain, scopes) accepted as a Bearer token. */
  createLongLivedToken(opts?: { expiresInSec?: number; scopes?: string[] }): string;
  /** Single-use, 20-minute code for the configured oauth client. */
  issueAuthorizationCode(): string;
  /** Every code issued so far (also by the `GET /oauth` consent page) is now expired. */
  expireAuthorizationCodes(): void;
  issueOAuthTokens(): Promise<{ token_type: 'Bearer'; expires_in: number; access_token: string; refresh_token: string }>;
  /** Every OAuth access token issued so far now gets 401. */
  expireAccessTokens(): void;
  /** Fault: the next `times` refresh grants issue the new pair, then drop the connection instead of answering. */
  loseRefreshResponses(times?: number): void;
  /** §10.2: the account webhooks this emulator sends (`deliveries`, `idle()` to wait for those under way). */
  readonly webhooks: WebhookSender;
  /**
   * A change made outside the API (a person in Kommo's interface: deleting a record, say), as `userId`: its
   * webhooks are sent like those of an API write.
   */
  change(fn: (state: KommoState) => void, userId?: number): void;
  /** Lift a 403 block. */
  unblock(): void;
  /** Shortcuts to the harness. */
  injectFault(fault: Fault, options?: { times?: number; match?: FaultMatch }): void;
  clearFaults(): void;
  resetLog(): void;
  close(): Promise<void>;
}

/** PHP's names for query keys: leading spaces dropped, ` ` and `.` become `_` (`accrue.bonus` is `accrue_bonus`). */
function phpNames(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) out[k.replace(/^ +/, '').replace(/[ .]/g, '_')] = v;
  return out;
}

/** Headers PHP frameworks read as the method to run instead of the request line's. */
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/**
 * The method Kommo's PHP framework runs: on a POST, an override header or a `_method` query parameter wins,
 * as Symfony's `Request::getMethod()` and Laravel do (emulator choice: the fact sheet does not cover it, and
 * a client must not count on a server ignoring them). `_method` is consumed, like the framework does.
 */
function overriddenMethod(req: EmuRequest, params: Record<string, unknown>): string {
  if (req.method !== 'POST') return req.method;
  const header = OVERRIDE_HEADERS.map((h) => req.headers[h]).find((v) => typeof v === 'string' && v.trim());
  const param = params._method;
  delete params._method;
  const wanted = typeof header === 'string' ? header : typeof param === 'string' ? param : undefined;
  return wanted && /^[a-z]+$/i.test(wanted.trim()) ? wanted.trim().toUpperCase() : req.method;
}

export async function startKommoEmulator(options: KommoEmulatorOptions = {}): Promise<KommoEmulator> {
  const subdomain = options.subdomain ?? 'sandbox';
  const now = nowSec();
  const state = emptyState(options.accountId ?? 31000001, subdomain, now);
  seedMetadata(state);
  if (options.demo ?? true) seedDemo(state, options.seed ?? 42, Date.now() / 1000);

  const behaviour: KommoBehaviour = { ...DEFAULT_BEHAVIOUR, ...options.behaviour };
  const limiter = new KommoRateLimiter(options.rateLimit !== false, options.rateLimit || {});
  const auth = new KommoAuthServer({
    accountId: state.account.id,
    subdomain,
    userId: () => DEMO.adminUserId, // §2.2: tokens act with the admin's rights
    oauth: options.oauth,
    longLivedTokens: options.longLivedTokens,
  });

  let origin = '';
  const webhooks = new WebhookSender(state, () => origin);
  const handle = async (req: EmuRequest): Promise<EmuResponse> => {
    // §3: a blocked account gets nginx's HTML 403 on every request until support unblocks it.
    if (limiter.blocked) {
      req.record.tag = 'blocked';
      return { status: 403, headers: { 'content-type': 'text/html' }, body: NGINX_403 };
    }
    if (req.path === '/oauth2/access_token') {
      if (req.method !== 'POST') throw methodNotAllowed();
      return auth.tokenEndpoint(req);
    }
    if (req.path === '/oauth') {
      if (req.method !== 'GET') throw methodNotAllowed();
      return auth.consent(req, new URL(origin).host);
    }
    if (req.path === '/oauth2/account/current/subdomain') {
      if (req.method !== 'GET') throw methodNotAllowed();
      return auth.currentSubdomain(req);
    }
    if (!req.path.startsWith('/api/v4/')) throw routeNotFound(req.method, `${origin}${req.path}`);
    const header = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    if (limiter.check(header ?? '') === 'rate_limited') {
      req.record.tag = 'rate_limited';
      return problemResponse(429, tooManyBody());
    }
    const who = await auth.authenticate(header);
    if (!who) throw unauthorized();
    const params = phpNames(parsePhpQuery(req.url.searchParams));
    const method = overriddenMethod(req, params);
    const ctx: Ctx = { state, origin, req: method === req.method ? req : { ...req, method }, params, userId: who.userId, now: nowSec(), behaviour };
    // §10.1: the webhooks API is for administrators only.
    if (req.path === '/api/v4/webhooks' && !state.users.get(who.userId)?.rights.is_admin)
      return problemResponse(403, { title: 'Forbidden', type: 'https://httpstatus.es/403', status: 403, detail: 'Insufficient rights' });
    if (method === 'GET') return route(ctx);
    const before = snapshot(state);
    try {
      return route(ctx);
    } finally {
      webhooks.send(changesSince(state, before, who.userId, ctx.now));
    }
  };

  const harness = new EmulatorHarness(
    async (req) => {
      let res: EmuResponse;
      try {
        res = await handle(req);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        res = err.response;
      }
      // §1: every response carries X-Request-Id.
      return { ...res, headers: { 'x-request-id': requestId(), ...res.headers } };
    },
    { host: options.host ?? '127.0.0.1', port: options.port ?? 0 },
  );
  origin = await harness.start();

  return {
    url: origin,
    harness,
    requests: harness.requests,
    state,
    behaviour,
    get stats() {
      return { rateLimited: limiter.rateLimited, blocked: limiter.blocked, tokenRequests: auth.stats.tokenRequests, refreshes: auth.stats.refreshes };
    },
    createLongLivedToken: (o) => auth.createLongLivedToken(o),
    issueAuthorizationCode: () => auth.issueAuthorizationCode(),
    expireAuthorizationCodes: () => auth.expireAuthorizationCodes(),
    issueOAuthTokens: async () => auth.issueOAuthTokens(),
    expireAccessTokens: () => auth.expireAccessTokens(),
    loseRefreshResponses: (times) => auth.loseRefreshResponses(times),
    webhooks,
    change: (fn, userId = DEMO.adminUserId) => {
      const before = snapshot(state);
      fn(state);
      webhooks.send(changesSince(state, before, userId, nowSec()));
    },
    unblock: () => limiter.unblock(),
    injectFault: (fault, o) => harness.injectFault(fault, o),
    clearFaults: () => harness.clearFaults(),
    resetLog: () => harness.resetLog(),
    close: () => harness.close(),
  };
}
