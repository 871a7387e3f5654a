/**
 * Kommo credentials (fact sheet §2): a long-lived token, or OAuth 2.0 whose refresh token rotates on every
 * refresh (the shared RotatingTokens machinery keeps the chain durable and single-flight).
 */
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { KommoConnection } from './connection.js';
import type { AuthProvider } from '../../http/client.js';
import type { Store } from '../../store/store.js';
import { RotatingTokens } from '../oauth.js';
import { tokenExchange, type TokenEndpoint, type TokenFailure } from '../token-endpoint.js';

export interface TokenInfo {
  type: 'long-lived' | 'oauth';
  expires_at: string | null;
  account_id: number | null;
  api_domain: string | null;
  scopes: string[] | null;
}

/** Reads a JWT's claims without verifying it (we only need expiry, account and scopes). */
export async function describeToken(token: string | undefined): Promise<Omit<TokenInfo, 'type'>> {
  const none = { expires_at: null, account_id: null, api_domain: null, scopes: null };
  if (!token) return none;
  try {
    const { decodeJwt } = await import('jose'); // loaded when first needed, not at start-up
    const c = decodeJwt(token) as Record<string, unknown>;
    const scopes = Array.isArray(c.scopes) ? (c.scopes as string[]) : typeof c.scope === 'string' ? c.scope.split(/[ ,]/) : null;
    return {
      expires_at: typeof c.exp === 'number' ? new Date(c.exp * 1000).toISOString() : null,
      account_id: typeof c.account_id === 'number' ? c.account_id : null,
      api_domain: typeof c.api_domain === 'string' ? c.api_domain : null,
      scopes,
    };
  } catch {
    return none;
  }
}

/** Where a Kommo OAuth chain lives in the store (shared with `crm-mcp auth kommo`, which writes it). */
export function kommoTokenKey(baseUrl: string, clientId: string): string {
  return `tokens:kommo:${baseUrl}:${clientId}`;
}

export interface KommoAuthOptions {
  timeoutMs: number;
  logger?: Logger;
  dispatcher?: Dispatcher;
}

export class KommoAuth implements AuthProvider {
  readonly tokens: RotatingTokens | undefined;

  constructor(
    private readonly conn: KommoConnection,
    store: Store,
    o: KommoAuthOptions,
  ) {
    if (!conn.accessToken && conn.oauth) {
      this.tokens = new RotatingTokens({
        store,
        storeKey: kommoTokenKey(conn.baseUrl, conn.oauth.clientId),
        exchange: tokenExchange(kommoTokenEndpoint({ baseUrl: conn.baseUrl, ...conn.oauth }), o),
        reauthHint: 'run `crm-mcp auth kommo`, or set KOMMO_AUTH_CODE (a fresh authorization code) or KOMMO_REFRESH_TOKEN.',
        logger: o.logger,
      });
    }
  }

  async init(): Promise<void> {
    await this.tokens?.init({ authCode: this.conn.oauth?.authCode, refreshToken: this.conn.oauth?.refreshToken });
  }

  async headers(): Promise<Record<string, string>> {
    if (!this.tokens) return { authorization: `Bearer ${this.conn.accessToken}` };
    return { authorization: `Bearer ${(await this.tokens.current()).access_token}` };
  }

  async onUnauthorized(used: { headers: Record<string, string> }): Promise<boolean> {
    if (!this.tokens) return false; // long-lived tokens cannot be refreshed
    return this.tokens.onUnauthorized(used.headers.authorization?.replace(/^Bearer /, ''));
  }

  async info(): Promise<TokenInfo> {
    if (!this.tokens) return { type: 'long-lived', ...(await describeToken(this.conn.accessToken)) };
    const rec = this.tokens.peek() ?? (await this.tokens.load());
    const d = await describeToken(rec?.access_token);
    return { type: 'oauth', ...d, expires_at: d.expires_at ?? (rec?.expires_at ? new Date(rec.expires_at).toISOString() : null) };
  }
}

/**
 * Kommo's token endpoint (§2.1): POST /oauth2/access_token on the account host, a JSON body carrying the
 * integration's redirect URI; a refusal names its reason in `hint` (or `detail`). Shared with the sign-in.
 */
export function kommoTokenEndpoint(o: { baseUrl: string; clientId: string; clientSecret: string; redirectUri: string }): TokenEndpoint {
  return {
    url: new URL('/oauth2/access_token', o.baseUrl),
    encoding: 'json',
    client: { client_id: o.clientId, client_secret: o.clientSecret, redirect_uri: o.redirectUri },
    defaultTtlSec: 86_400,
    reason: (b) => (typeof b?.hint === 'string' ? b.hint : typeof b?.detail === 'string' ? b.detail : undefined),
    // "Invalid refresh token" (§2.1): the token itself is spent or revoked, not the client's credentials.
    spent: (reason) => /refresh.?token/i.test(reason),
    explain: explainKommo,
  };
}

/**
 * §2.1 contradicts itself on whether the old refresh token survives once a new one is issued. If it does, the
 * one repeat of a refresh whose answer was lost succeeds; if not (the emulator's strict reading) it is refused,
 * and only a new sign-in helps: the message then says the answer was lost.
 */
function explainKommo(f: TokenFailure): string {
  if (f.kind === 'unavailable')
    return `Could not reach the Kommo token endpoint (${f.reason}). Try again later${f.lost ? '; if Kommo then refuses the refresh token, sign in again with `crm-mcp auth kommo`' : ''}.`;
  if (f.grant === 'authorization_code')
    return `Kommo could not exchange the authorization code (${f.reason}). Authorization codes are single-use and expire after 20 minutes: get a new one, or run \`crm-mcp auth kommo\`.`;
  if (f.spent && f.lost)
    return `Kommo's answer to the token refresh was lost, and Kommo had already retired the refresh token it replaced (${f.reason}), so the stored one is spent. Sign in again with \`crm-mcp auth kommo\` (or set a new KOMMO_REFRESH_TOKEN).`;
  if (f.spent) return `Kommo refused the stored refresh token (${f.reason}). Sign in again with \`crm-mcp auth kommo\` (or set a new KOMMO_REFRESH_TOKEN).`;
  return `Kommo could not refresh the access token (${f.reason}). Check KOMMO_CLIENT_ID / KOMMO_CLIENT_SECRET / KOMMO_REDIRECT_URI; if they are right, sign in again with \`crm-mcp auth kommo\`.`;
}
