/**
 * Kommo credentials (fact sheet §2): a long-lived token, or OAuth 2.0 whose refresh token rotates on every
 * refresh (the shared RotatingTokens machinery keeps the chain durable and single-flight).
 */
import type { Dispatcher } from 'undici';
import { loadUndici } from '../../http/client.js';
import type { Logger } from 'pino';
import type { KommoConnection } from './connection.js';
import { CrmError } from '../../domain/errors.js';
import type { AuthProvider } from '../../http/client.js';
import type { Store } from '../../store/store.js';
import { REFRESH_REFUSED, RotatingTokens, type TokenExchange } from '../oauth.js';

/** Failures where the request never left this machine: repeating them cannot spend a refresh token twice. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

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
    private readonly o: KommoAuthOptions,
  ) {
    if (!conn.accessToken && conn.oauth) {
      this.tokens = new RotatingTokens({
        store,
        storeKey: kommoTokenKey(conn.baseUrl, conn.oauth.clientId),
        exchange: this.exchange,
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

  /** Kommo's token endpoint: POST /oauth2/access_token on the account host, JSON body (§2.1). */
  private exchange: TokenExchange = async (grant) => {
    const o = this.conn.oauth!;
    const body = { client_id: o.clientId, client_secret: o.clientSecret, redirect_uri: o.redirectUri, ...grant };
    let lastErr: unknown;
    // §2.1 contradicts itself on whether the old refresh token survives once a new one is issued. If it does,
    // repeating a refresh whose answer was lost succeeds; if not (the emulator's strict reading) the repeat is
    // refused and only a new sign-in helps. So an attempt that may have reached Kommo (lost answer, timeout,
    // 5xx) is repeated once, never more; one that never left (connection refused, DNS) up to three times.
    let maybeReached = 0;
    for (let attempt = 0; attempt < 3 && maybeReached < 2; attempt++) {
      let status: number;
      let text: string;
      try {
        const { request } = await loadUndici();
        const res = await request(new URL('/oauth2/access_token', this.conn.baseUrl), {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.o.timeoutMs),
          dispatcher: this.o.dispatcher,
        });
        status = res.statusCode;
        text = await res.body.text();
      } catch (err) {
        lastErr = err;
        if (!NEVER_SENT.has(String((err as { code?: unknown })?.code))) maybeReached += 1;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        continue;
      }
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = undefined;
      }
      if (status >= 500) {
        lastErr = new Error(`token endpoint answered ${status}`);
        maybeReached += 1;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        continue;
      }
      if (status !== 200 || typeof parsed?.access_token !== 'string' || typeof parsed.refresh_token !== 'string') {
        const hint = typeof parsed?.hint === 'string' ? parsed.hint : typeof parsed?.detail === 'string' ? parsed.detail : `status ${status}`;
        const code = grant.grant_type === 'authorization_code';
        // "Invalid refresh token" (§2.1): the token itself is spent or revoked, not the client's credentials.
        const refused = !code && status < 500 && /refresh.?token/i.test(hint);
        const lost = maybeReached > 0;
        throw new CrmError({
          code: 'auth',
          status,
          retryable: false,
          ...(refused ? { details: { [REFRESH_REFUSED]: true } } : {}),
          message: code
            ? `Kommo could not exchange the authorization code (${hint}). Authorization codes are single-use and expire after 20 minutes: get a new one, or run \`crm-mcp auth kommo\`.`
            : refused && lost
              ? `Kommo's answer to the token refresh was lost, and Kommo had already retired the refresh token it replaced (${hint}), so the stored one is spent. Sign in again with \`crm-mcp auth kommo\` (or set a new KOMMO_REFRESH_TOKEN).`
              : refused
                ? `Kommo refused the stored refresh token (${hint}). Sign in again with \`crm-mcp auth kommo\` (or set a new KOMMO_REFRESH_TOKEN).`
                : `Kommo could not refresh the access token (${hint}). Check KOMMO_CLIENT_ID / KOMMO_CLIENT_SECRET / KOMMO_REDIRECT_URI; if they are right, sign in again with \`crm-mcp auth kommo\`.`,
        });
      }
      return {
        access_token: parsed.access_token,
        refresh_token: parsed.refresh_token,
        expires_in: typeof parsed.expires_in === 'number' ? parsed.expires_in : 86_400,
      };
    }
    throw new CrmError({
      code: 'network',
      retryable: true,
      message: `Could not reach the Kommo token endpoint (${(lastErr as Error)?.message ?? 'error'}). Try again later${maybeReached ? '; if Kommo then refuses the refresh token, sign in again with `crm-mcp auth kommo`' : ''}.`,
    });
  };

  async info(): Promise<TokenInfo> {
    if (!this.tokens) return { type: 'long-lived', ...(await describeToken(this.conn.accessToken)) };
    const rec = this.tokens.peek() ?? (await this.tokens.load());
    const d = await describeToken(rec?.access_token);
    return { type: 'oauth', ...d, expires_at: d.expires_at ?? (rec?.expires_at ? new Date(rec.expires_at).toISOString() : null) };
  }
}
