/**
 * The OAuth side (fact sheet §2.2): tokens for `/rest/{method}?auth=…`, and the token endpoint
 * `/oauth/token/` (served on the emulator's origin instead of oauth.bitrix.info) with refresh-token rotation:
 * every refresh returns a new refresh token and the old one stops working (`invalid_grant`). Access tokens
 * live 1 h (`expired_token` after). The old access token stays valid until it expires: whether a refresh
 * revokes it is UNVERIFIED (§2.2 cites both).
 */
import { randomBytes } from 'node:crypto';
import { BxError } from './errors.js';

export interface OAuthConfig {
  clientId: string;
  clientSecret: string;
  accessTokenTtlSec?: number;
  /** Where `/oauth/authorize/` sends the user back (the app's handler); a `redirect_uri` query parameter wins. */
  redirectUri?: string;
}

/** §2.2: an authorization code lives 30 seconds and is single-use. */
const CODE_TTL_MS = 30_000;

/** Fields of fixture oauth.token.refresh.json. */
export interface TokenResponse {
  access_token: string;
  client_endpoint: string;
  domain: string;
  expires: number;
  expires_in: number;
  member_id: string;
  refresh_token: string;
  scope: string;
  server_endpoint: string;
  status: string;
  user_id: number;
}

interface AccessToken {
  clientId: string;
  userId: number;
  scopes: string[];
  expiresAt: number;
  revoked: boolean;
}

interface RefreshToken {
  clientId: string;
  userId: number;
  scopes: string[];
  used: boolean;
}

export function token(n = 32): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}

export class OAuthServer {
  private readonly access = new Map<string, AccessToken>();
  private readonly refresh = new Map<string, RefreshToken>();
  private readonly codes = new Map<string, { clientId: string; expiresAt: number; used: boolean }>();
  refreshes = 0;

  constructor(
    private readonly cfg: OAuthConfig | undefined,
    private readonly o: { url: () => string; memberId: string; userId: number; scopes: string[]; clock: () => number },
  ) {}

  get enabled(): boolean {
    return !!this.cfg;
  }

  get clientId(): string | undefined {
    return this.cfg?.clientId;
  }

  private ttlSec(): number {
    return this.cfg?.accessTokenTtlSec ?? 3600;
  }

  issue(userId = this.o.userId): TokenResponse {
    if (!this.cfg) throw new Error('startBitrixEmulator: pass options.oauth to issue OAuth tokens');
    const access = token();
    const refresh = token();
    const expiresAt = this.o.clock() + this.ttlSec() * 1000;
    this.access.set(access, { clientId: this.cfg.clientId, userId, scopes: this.o.scopes, expiresAt, revoked: false });
    this.refresh.set(refresh, { clientId: this.cfg.clientId, userId, scopes: this.o.scopes, used: false });
    const base = `${this.o.url()}/rest/`;
    return {
      access_token: access,
      client_endpoint: base,
      domain: new URL(this.o.url()).host,
      expires: Math.floor(expiresAt / 1000),
      expires_in: this.ttlSec(),
      member_id: this.o.memberId,
      refresh_token: refresh,
      scope: this.o.scopes.join(','),
      server_endpoint: base,
      status: 'L',
      user_id: userId,
    };
  }

  /** A fresh access token for event deliveries (§9 app handler variant). */
  accessFor(userId: number): { token: string; expiresAt: number } {
    const t = this.issue(userId);
    return { token: t.access_token, expiresAt: t.expires };
  }

  /**
   * `GET /oauth/authorize/?client_id=…&state=…` on the portal (§2.2), with the user's click scripted by the
   * emulator-only `decision=deny` (default: allow). Allow → 302 to the app's redirect URI with `code`, `state`,
   * `domain`, `member_id`, `scope`, `server_domain`; deny → `error=access_denied` and `state`.
   */
  authorize(q: URLSearchParams): { status: number; location?: string; body?: unknown; tag: string } {
    const clientId = q.get('client_id');
    if (!this.cfg || clientId !== this.cfg.clientId)
      return { status: 400, body: { error: 'invalid_client', error_description: 'Unknown client_id' }, tag: 'authorize_unknown_client' };
    const redirect = q.get('redirect_uri') ?? this.cfg.redirectUri;
    if (!redirect)
      return {
        status: 400,
        body: { error: 'invalid_request', error_description: 'The application has no redirect URI (pass options.oauth.redirectUri)' },
        tag: 'authorize_no_redirect',
      };
    const back = new URL(redirect);
    const state = q.get('state');
    if (q.get('decision') === 'deny') {
      back.searchParams.set('error', 'access_denied');
      if (state !== null) back.searchParams.set('state', state);
      return { status: 302, location: back.toString(), tag: 'authorize_denied' };
    }
    const code = token();
    this.codes.set(code, { clientId, expiresAt: this.o.clock() + CODE_TTL_MS, used: false });
    const host = new URL(this.o.url()).host;
    back.searchParams.set('code', code);
    if (state !== null) back.searchParams.set('state', state);
    back.searchParams.set('domain', host);
    back.searchParams.set('member_id', this.o.memberId);
    back.searchParams.set('scope', this.o.scopes.join(','));
    // The emulator is its own OAuth server (the real one is oauth.bitrix.info).
    back.searchParams.set('server_domain', host);
    return { status: 302, location: back.toString(), tag: 'authorize_allowed' };
  }

  /** Every authorization code issued so far is now past its 30-second lifetime. */
  expireCodes(): void {
    for (const c of this.codes.values()) c.expiresAt = this.o.clock() - 1;
  }

  expireAll(): void {
    for (const t of this.access.values()) t.revoked = true;
  }

  /** Resolves `auth=…` of an app call: unknown → NO_AUTH_FOUND (§2.1, §6), expired → expired_token (§2.2). */
  check(auth: unknown): { clientId: string; userId: number; scopes: string[] } {
    const t = typeof auth === 'string' ? this.access.get(auth) : undefined;
    if (!t) throw new BxError(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
    if (t.revoked || this.o.clock() >= t.expiresAt) throw new BxError(401, 'expired_token', 'The access token provided has expired');
    return { clientId: t.clientId, userId: t.userId, scopes: t.scopes };
  }

  /**
   * `/oauth/token/` (§2.2): `grant_type=refresh_token&client_id&client_secret&refresh_token` or
   * `grant_type=authorization_code&…&code`, GET query or POST form. Errors per §2.2: 401 invalid_client, 400 invalid_grant / invalid_request (descriptions are
   * the emulator's own; the docs do not give them).
   */
  tokenEndpoint(params: Record<string, unknown>): { status: number; body: unknown } {
    const err = (status: number, error: string, error_description: string) => ({ status, body: { error, error_description } });
    const grant = String(params.grant_type ?? '');
    const clientId = String(params.client_id ?? '');
    if (!grant || !clientId) return err(400, 'invalid_request', 'grant_type and client_id are required');
    if (!this.cfg || clientId !== this.cfg.clientId || String(params.client_secret ?? '') !== this.cfg.clientSecret) {
      return err(401, 'invalid_client', 'Unknown client_id or wrong client_secret');
    }
    if (grant === 'authorization_code') {
      const c = this.codes.get(String(params.code ?? ''));
      if (!c || c.used || c.clientId !== clientId || c.expiresAt <= this.o.clock())
        return err(400, 'invalid_grant', 'The authorization code is invalid, expired or was already used');
      c.used = true;
      return { status: 200, body: this.issue() };
    }
    if (grant !== 'refresh_token') return err(400, 'invalid_request', `Unsupported grant_type "${grant}"`);
    const rt = this.refresh.get(String(params.refresh_token ?? ''));
    if (!rt || rt.used || rt.clientId !== clientId) return err(400, 'invalid_grant', 'The refresh token is invalid or was already used');
    // §2.2 ([TRAIN-OAUTH] "until first use"; [D-OAUTH-RENEW] "store it instead of the old one"): the old
    // refresh token dies the moment the new pair is issued, even if the answer never reaches the client (a lost
    // response is scripted with the harness fault `reset-after` on /oauth/token/).
    rt.used = true;
    this.refreshes += 1;
    return { status: 200, body: this.issue(rt.userId) };
  }
}
