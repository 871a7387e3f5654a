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
}

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
   * `/oauth/token/` (§2.2): `grant_type=refresh_token&client_id&client_secret&refresh_token`, GET query or
   * POST form. Errors per §2.2: 401 invalid_client, 400 invalid_grant / invalid_request (descriptions are
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
    if (grant !== 'refresh_token') {
      if (grant === 'authorization_code') return err(400, 'invalid_grant', 'Authorization codes are not emulated; use issueOAuthTokens()');
      return err(400, 'invalid_request', `Unsupported grant_type "${grant}"`);
    }
    const rt = this.refresh.get(String(params.refresh_token ?? ''));
    if (!rt || rt.used || rt.clientId !== clientId) return err(400, 'invalid_grant', 'The refresh token is invalid or was already used');
    rt.used = true;
    this.refreshes += 1;
    return { status: 200, body: this.issue(rt.userId) };
  }
}
