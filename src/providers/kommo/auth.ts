/**
 * Kommo credentials (fact sheet §2): a long-lived token, or OAuth 2.0 whose refresh token rotates on every
 * refresh (the shared RotatingTokens machinery keeps the chain durable and single-flight).
 */
import type { Dispatcher } from 'undici';
import { loadUndici } from '../../http/client.js';
import type { Logger } from 'pino';
import type { KommoConnection } from '../../config/config.js';
import { CrmError } from '../../http/errors.js';
import type { AuthProvider } from '../../http/client.js';
import type { Store } from '../../store/store.js';
import { RotatingTokens, type TokenExchange } from '../oauth.js';

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
    // Retried on network failures and 5xx only: per §2.1 the old refresh token stays valid until the new
    // pair is used, so repeating a refresh whose answer was lost is safe.
    for (let attempt = 0; attempt < 3; attempt++) {
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
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
        continue;
      }
      if (status !== 200 || typeof parsed?.access_token !== 'string' || typeof parsed.refresh_token !== 'string') {
        const hint = typeof parsed?.hint === 'string' ? parsed.hint : typeof parsed?.detail === 'string' ? parsed.detail : `status ${status}`;
        const code = grant.grant_type === 'authorization_code';
        throw new CrmError({
          code: 'auth',
          status,
          message: `Kommo could not ${code ? 'exchange the authorization code' : 'refresh the access token'} (${hint}). ${
            code
              ? 'Authorization codes are single-use and expire after 20 minutes: get a new one, or run `crm-mcp auth kommo`.'
              : 'The refresh token is no longer valid: re-authorize with `crm-mcp auth kommo` or set a new KOMMO_REFRESH_TOKEN.'
          }`,
        });
      }
      return { access_token: parsed.access_token, refresh_token: parsed.refresh_token, expires_in: typeof parsed.expires_in === 'number' ? parsed.expires_in : 86_400 };
    }
    throw new CrmError({ code: 'network', retryable: true, message: `Could not reach the Kommo token endpoint (${(lastErr as Error)?.message ?? 'error'}). Try again later.` });
  };

  async info(): Promise<TokenInfo> {
    if (!this.tokens) return { type: 'long-lived', ...(await describeToken(this.conn.accessToken)) };
    const rec = this.tokens.peek() ?? (await this.tokens.load());
    const d = await describeToken(rec?.access_token);
    return { type: 'oauth', ...d, expires_at: d.expires_at ?? (rec?.expires_at ? new Date(rec.expires_at).toISOString() : null) };
  }
}
