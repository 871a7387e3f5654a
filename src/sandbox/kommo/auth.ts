/**
 * Kommo authentication (fact sheet §2): long-lived tokens, OAuth 2.0 authorization codes and rotating
 * refresh tokens, and the token endpoint `POST /oauth2/access_token`.
 *
 * Tokens are HS256 JWTs. They are signed with node:crypto because `createLongLivedToken()` is synchronous
 * (jose only signs asynchronously); incoming tokens are verified with jose.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { jwtVerify } from 'jose';
import type { EmuRequest, EmuResponse } from '../harness.js';
import { accessDeniedBody, problemResponse, unauthorizedBody } from './responses.js';

export interface OAuthClientOptions {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  accessTokenTtlSec?: number;
}

interface TokenRecord {
  kind: 'long-lived' | 'oauth';
  userId: number;
  expired: boolean;
  pair?: Pair;
}

interface Chain {
  current: Pair;
}

interface Pair {
  jti: string;
  refresh: string;
  refreshExpiresAt: number;
  chain: Chain;
}

export interface Principal {
  kind: 'long-lived' | 'oauth' | 'opaque';
  userId: number;
}

export interface AuthServerOptions {
  accountId: number;
  subdomain: string;
  /** The user tokens act as (§2.2: the admin who generated / granted them). */
  userId: () => number;
  oauth?: OAuthClientOptions;
  longLivedTokens?: string[];
}

export interface OAuthTokenResponse {
  token_type: 'Bearer';
  expires_in: number;
  access_token: string;
  refresh_token: string;
}

const CODE_TTL_SEC = 20 * 60; // §2.1: authorization codes live 20 minutes
const REFRESH_TTL_SEC = 90 * 86_400; // §2.1: refresh tokens live 3 months
const DEFAULT_SCOPES = ['crm', 'files', 'files_delete', 'notifications', 'push_notifications'];
// Claims observed in the wild (§2.2, UNVERIFIED list); api_domain as for tokens issued after 2024-08-21.
const BASE_DOMAIN = 'kommo.com';
const API_DOMAIN = 'api-c.kommo.com';

const now = () => Math.floor(Date.now() / 1000);
const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

export class KommoAuthServer {
  readonly stats = { tokenRequests: 0, refreshes: 0 };
  /** Refresh grants still to be answered by a dropped connection after the new pair is issued. */
  private lostRefreshResponses = 0;
  private readonly secret = randomBytes(32);
  private readonly key = new Uint8Array(this.secret);
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly opaque: Set<string>;
  private readonly codes = new Map<string, { expiresAt: number; used: boolean }>();
  private readonly refreshTokens = new Map<string, Pair>();
  /** An integration id for long-lived tokens (their `aud`). */
  private readonly privateIntegrationId = randomUUID();

  constructor(private readonly o: AuthServerOptions) {
    this.opaque = new Set(o.longLivedTokens ?? []);
  }

  private sign(claims: Record<string, unknown>): string {
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }));
    const body = b64url(JSON.stringify(claims));
    const sig = createHmac('sha256', this.secret).update(`${head}.${body}`).digest('base64url');
    return `${head}.${body}.${sig}`;
  }

  private jwt(aud: string, ttlSec: number, scopes: string[]): { token: string; jti: string } {
    const iat = now();
    const jti = randomUUID();
    const token = this.sign({
      aud,
      jti,
      iat,
      nbf: iat,
      exp: iat + ttlSec,
      sub: String(this.o.userId()),
      account_id: this.o.accountId,
      base_domain: BASE_DOMAIN,
      api_domain: API_DOMAIN,
      scopes,
    });
    return { token, jti };
  }

  /**
   * §2.2: a long-lived token. The real UI offers 1 day to 5 years; any lifetime is accepted here so tests
   * can mint an already-expired token (negative `expiresInSec`).
   */
  createLongLivedToken(opts: { expiresInSec?: number; scopes?: string[] } = {}): string {
    const { token, jti } = this.jwt(this.privateIntegrationId, opts.expiresInSec ?? 365 * 86_400, opts.scopes ?? DEFAULT_SCOPES);
    this.tokens.set(jti, { kind: 'long-lived', userId: this.o.userId(), expired: false });
    return token;
  }

  private client(): Required<OAuthClientOptions> {
    if (!this.o.oauth) throw new Error('Kommo emulator: start it with `oauth: { clientId, clientSecret, redirectUri }` to use OAuth');
    return { accessTokenTtlSec: 86_400, ...this.o.oauth };
  }

  /** §2.1: a single-use authorization code valid for 20 minutes. */
  issueAuthorizationCode(): string {
    this.client();
    const code = `def50200${randomBytes(48).toString('hex')}`;
    this.codes.set(code, { expiresAt: now() + CODE_TTL_SEC, used: false });
    return code;
  }

  /** Every authorization code issued so far is now past its 20-minute lifetime (tests of the expired-code path). */
  expireAuthorizationCodes(): void {
    for (const c of this.codes.values()) c.expiresAt = now() - 1;
  }

  /**
   * The consent page `GET /oauth?client_id=…&state=…&mode=…` (§2.1), served on the emulator's origin instead of
   * www.kommo.com. The user's click is scripted with the emulator-only `decision=deny` (default: allow). "Allow"
   * redirects to the integration's Redirect URI with `code`, `referer` (the account host), `state` (when sent)
   * and `client_id`; "Decline" with `error=access_denied`, `client_id` and `state`.
   */
  consent(req: EmuRequest, accountHost: string): EmuResponse {
    const q = req.url.searchParams;
    const clientId = q.get('client_id');
    if (!this.o.oauth || clientId !== this.o.oauth.clientId) {
      req.record.tag = 'consent_unknown_client';
      return { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Integration not found (unknown client_id)' };
    }
    const back = new URL(this.o.oauth.redirectUri);
    const state = q.get('state');
    if (q.get('decision') === 'deny') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('client_id', clientId);
      if (state !== null) back.searchParams.set('state', state);
      req.record.tag = 'consent_denied';
    } else {
      back.searchParams.set('code', this.issueAuthorizationCode());
      back.searchParams.set('referer', accountHost);
      if (state !== null) back.searchParams.set('state', state);
      back.searchParams.set('client_id', clientId);
      req.record.tag = 'consent_allowed';
    }
    return { status: 302, headers: { location: back.toString() } };
  }

  /** A fresh grant, as if a code had just been exchanged. */
  issueOAuthTokens(): OAuthTokenResponse {
    return this.newPair(undefined).response;
  }

  /** Every OAuth access token issued so far now answers 401. */
  expireAccessTokens(): void {
    for (const rec of this.tokens.values()) if (rec.kind === 'oauth') rec.expired = true;
  }

  private newPair(chain: Chain | undefined): { pair: Pair; response: OAuthTokenResponse } {
    const c = this.client();
    const { token, jti } = this.jwt(c.clientId, c.accessTokenTtlSec, DEFAULT_SCOPES);
    const refresh = `def50200${randomBytes(64).toString('hex')}`;
    const pair: Pair = { jti, refresh, refreshExpiresAt: now() + REFRESH_TTL_SEC, chain: undefined as unknown as Chain };
    pair.chain = chain ?? { current: pair };
    this.tokens.set(jti, { kind: 'oauth', userId: this.o.userId(), expired: false, pair });
    this.refreshTokens.set(refresh, pair);
    return { pair, response: { token_type: 'Bearer', expires_in: c.accessTokenTtlSec, access_token: token, refresh_token: refresh } };
  }

  /** Resolves a Bearer header to the acting user, or undefined (→ 401, §11). */
  async authenticate(header: string | undefined): Promise<Principal | undefined> {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return undefined;
    const token = m[1]!;
    if (this.opaque.has(token)) return { kind: 'opaque', userId: this.o.userId() };
    let jti: unknown;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] });
      jti = payload.jti;
    } catch {
      return undefined; // bad signature, malformed, expired (exp) or not yet valid
    }
    const rec = typeof jti === 'string' ? this.tokens.get(jti) : undefined;
    if (!rec || rec.expired) return undefined;
    return { kind: rec.kind, userId: rec.userId };
  }

  /** `POST /oauth2/access_token` (§2.1). Not rate limited (§3 limits apply to the API). */
  tokenEndpoint(req: EmuRequest): EmuResponse {
    this.stats.tokenRequests += 1;
    const body = parseBody(req);
    if (!body) return oauthError('Check the `grant_type` parameter');
    const c = this.o.oauth ? this.client() : undefined;
    if (typeof body.client_id !== 'string' || !body.client_id) return oauthError('Check the `client_id` parameter');
    if (!c || body.client_id !== c.clientId) return oauthError('Check the `client_id` parameter');
    // The fact sheet documents only 400 OAuthProblemJson errors; the hint for a wrong secret is the
    // underlying OAuth server's wording (UNVERIFIED for Kommo).
    if (body.client_secret !== c.clientSecret) return oauthError('Client authentication failed');
    if (body.grant_type === 'authorization_code') return this.exchangeCode(body, c);
    if (body.grant_type === 'refresh_token') return this.refresh(body);
    return oauthError('Check the `grant_type` parameter');
  }

  private exchangeCode(body: Record<string, unknown>, c: Required<OAuthClientOptions>): EmuResponse {
    if (typeof body.code !== 'string' || !body.code) return oauthError('Check the `code` parameter');
    if (typeof body.redirect_uri !== 'string' || !body.redirect_uri) return oauthError('Check the `redirect_uri` parameter');
    const code = this.codes.get(body.code);
    // Observed hints (§2.1): unknown code / used code / expired code.
    if (!code) return oauthError('Cannot decrypt the authorization code');
    if (code.used) return oauthError('Authorization code has been revoked');
    if (code.expiresAt < now()) return oauthError('Authorization code has expired');
    if (body.redirect_uri !== c.redirectUri) return oauthError('Invalid redirect URI');
    code.used = true;
    return tokenResponse(this.newPair(undefined).response);
  }

  private refresh(body: Record<string, unknown>): EmuResponse {
    if (typeof body.refresh_token !== 'string' || !body.refresh_token) return oauthError('Check the `refresh_token` parameter');
    const token = body.refresh_token;
    const pair = this.refreshTokens.get(token);
    if (!pair || pair.refreshExpiresAt < now() || pair !== pair.chain.current) return oauthError('Invalid refresh token');
    // §2.1 [K-OAUTH] contradicts itself: "once a refresh token is used … the old refresh token becomes
    // outdated", then "the old refresh token will still be functional … until you use the new one". The
    // emulator takes the strict reading (the stricter plausible one): the refresh token dies the moment the new
    // pair is issued, so a client whose answer was lost holds a dead token and must not loop on it.
    this.refreshTokens.delete(token);
    const { pair: next, response } = this.newPair(pair.chain);
    pair.chain.current = next;
    this.stats.refreshes += 1;
    if (this.lostRefreshResponses > 0) {
      this.lostRefreshResponses -= 1;
      return { status: 200, drop: true };
    }
    return tokenResponse(response);
  }

  /**
   * Fault: the next `times` refresh grants are carried out (the new pair is issued, the old refresh token
   * dies) but their answer never arrives: the connection is destroyed instead (the classic lost response).
   */
  loseRefreshResponses(times = 1): void {
    this.lostRefreshResponses += times;
  }

  /**
   * §1: `GET /oauth2/account/current/subdomain` on the api_domain, authorised by `X-Refresh-Token` (or a
   * Bearer token); without either → the documented 403 AccessDenied.
   */
  async currentSubdomain(req: EmuRequest): Promise<EmuResponse> {
    const refresh = req.headers['x-refresh-token'];
    const auth = req.headers.authorization;
    if (!refresh && !auth) return problemResponse(403, accessDeniedBody());
    const ok = typeof refresh === 'string' ? this.refreshTokens.has(refresh) : !!(await this.authenticate(auth));
    if (!ok) return problemResponse(401, unauthorizedBody());
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: { id: this.o.accountId, subdomain: this.o.subdomain, domain: `${this.o.subdomain}.${BASE_DOMAIN}`, top_level_domain: 'com' },
    };
  }
}

/** §2.1: the token endpoint takes JSON; form encoding (standard OAuth) is accepted as well. */
function parseBody(req: EmuRequest): Record<string, unknown> | undefined {
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(req.rawBody));
  try {
    const v = JSON.parse(req.rawBody) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function tokenResponse(r: OAuthTokenResponse): EmuResponse {
  // §2.1: the newer Kommo reference adds server_time (issue time).
  return { status: 200, headers: { 'content-type': 'application/json' }, body: { ...r, server_time: now() } };
}

/** §2.1 / fixture POST_oauth2_access_token.400.json. */
export function oauthError(hint: string): EmuResponse {
  return problemResponse(400, {
    hint,
    title: 'Некорректный запрос',
    type: 'https://developers.amocrm.ru/v3/errors/OAuthProblemJson',
    status: 400,
    detail: 'В запросе отсутствует ряд параметров или параметры невалидны',
  });
}
