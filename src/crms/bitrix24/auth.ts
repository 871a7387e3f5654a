/**
 * Bitrix24 credentials (fact sheet §2): an inbound webhook (the secret is a path segment, nothing to send),
 * or an OAuth app whose access token (1 h) goes in the `auth` parameter and whose refresh token rotates on
 * every refresh (the shared RotatingTokens machinery: durable, single-flight).
 */
import type { Dispatcher } from 'undici';
import { loadUndici } from '../../http/client.js';
import type { Logger } from 'pino';
import type { BitrixConnection } from './connection.js';
import { CrmError } from '../../domain/errors.js';
import type { AuthProvider } from '../../http/client.js';
import type { Store } from '../../store/store.js';
import { REFRESH_REFUSED, RotatingTokens, type TokenExchange } from '../oauth.js';

/** Where a Bitrix24 OAuth chain lives in the store (shared with `crm-mcp auth bitrix24`, which writes it). */
export function bitrixTokenKey(portal: string, clientId: string): string {
  return `tokens:bitrix24:${portal}:${clientId}`;
}

export class BitrixAuth implements AuthProvider {
  readonly tokens: RotatingTokens | undefined;

  constructor(
    private readonly conn: BitrixConnection,
    store: Store,
    private readonly o: { timeoutMs: number; logger?: Logger; dispatcher?: Dispatcher },
  ) {
    if (!conn.webhookUrl && conn.oauth) {
      this.tokens = new RotatingTokens({
        store,
        storeKey: bitrixTokenKey(conn.oauth.portal, conn.oauth.clientId),
        exchange: this.exchange,
        reauthHint: 'run `crm-mcp auth bitrix24` or set BITRIX_REFRESH_TOKEN.',
        logger: o.logger,
        // Bitrix24 asks clients to refresh on expired_token rather than ahead of time (§2.2).
        marginMs: 30_000,
      });
    }
  }

  async init(): Promise<void> {
    await this.tokens?.init({ refreshToken: this.conn.oauth?.refreshToken });
  }

  async headers(): Promise<Record<string, string>> {
    return {};
  }

  async query(): Promise<Record<string, string>> {
    if (!this.tokens) return {};
    return { auth: (await this.tokens.current()).access_token };
  }

  async onUnauthorized(used: { query: Record<string, string> }): Promise<boolean> {
    if (!this.tokens) return false;
    return this.tokens.onUnauthorized(used.query.auth);
  }

  /** The OAuth server's token endpoint (`/oauth/token/`, form-encoded, §2.2). */
  private exchange: TokenExchange = async (grant) => {
    const o = this.conn.oauth!;
    const form = new URLSearchParams({ client_id: o.clientId, client_secret: o.clientSecret, ...grant });
    const server = o.oauthServer ?? 'https://oauth.bitrix.info';
    let status = 0;
    let text = '';
    // §2.2: the refresh token is single-use, so a refresh whose answer was lost has spent it. One repeat is
    // still worth it (should the server keep the old one), and the repeat's invalid_grant then ends in a clear
    // "sign in again" instead of a retryable network error that would be repeated with the dead token.
    let lost = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const { request } = await loadUndici();
        const res = await request(new URL('/oauth/token/', server), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: form.toString(),
          signal: AbortSignal.timeout(this.o.timeoutMs),
          dispatcher: this.o.dispatcher,
        });
        status = res.statusCode;
        text = await res.body.text();
        break;
      } catch (err) {
        const neverSent = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(String((err as { code?: unknown })?.code));
        if (attempt === 0 && !neverSent && grant.grant_type === 'refresh_token') {
          lost = true;
          continue;
        }
        throw new CrmError({ code: 'network', retryable: true, message: `Could not reach the Bitrix24 OAuth server (${(err as Error).message}).` });
      }
    }
    let p: Record<string, unknown> | undefined;
    try {
      p = JSON.parse(text) as Record<string, unknown>;
    } catch {
      p = undefined;
    }
    if (status !== 200 || typeof p?.access_token !== 'string' || typeof p.refresh_token !== 'string') {
      const code = typeof p?.error === 'string' ? p.error : `status ${status}`;
      // invalid_grant (§2.2): the refresh token itself is spent or expired → full re-authorization.
      const refused = grant.grant_type === 'refresh_token' && code === 'invalid_grant';
      throw new CrmError({
        code: 'auth',
        status,
        ...(refused ? { details: { [REFRESH_REFUSED]: true } } : {}),
        message:
          refused && lost
            ? `The Bitrix24 OAuth server's answer to the token refresh was lost, and refresh tokens are single-use, so the stored one is spent (${code}). Sign in again with \`crm-mcp auth bitrix24\` (or set a new BITRIX_REFRESH_TOKEN).`
            : `Bitrix24 could not refresh the access token (${code}). Sign in again with \`crm-mcp auth bitrix24\` (or set a new BITRIX_REFRESH_TOKEN).`,
      });
    }
    const extra: Record<string, string> = {};
    if (typeof p.client_endpoint === 'string') extra.client_endpoint = p.client_endpoint;
    if (typeof p.scope === 'string') extra.scope = p.scope;
    return { access_token: p.access_token, refresh_token: p.refresh_token, expires_in: typeof p.expires_in === 'number' ? p.expires_in : 3600, extra };
  };
}
