/**
 * Bitrix24 credentials (fact sheet §2): an inbound webhook (the secret is a path segment, nothing to send),
 * or an OAuth app whose access token (1 h) goes in the `auth` parameter and whose refresh token rotates on
 * every refresh (the shared RotatingTokens machinery: durable, single-flight).
 */
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { BitrixConnection } from './connection.js';
import type { AuthProvider } from '../../http/client.js';
import type { Store } from '../../store/store.js';
import { RotatingTokens } from '../oauth.js';
import { tokenExchange, type TokenEndpoint, type TokenFailure } from '../token-endpoint.js';

/** Where a Bitrix24 OAuth chain lives in the store (shared with `crm-mcp auth bitrix24`, which writes it). */
export function bitrixTokenKey(portal: string, clientId: string): string {
  return `tokens:bitrix24:${portal}:${clientId}`;
}

export class BitrixAuth implements AuthProvider {
  readonly tokens: RotatingTokens | undefined;

  constructor(
    private readonly conn: BitrixConnection,
    store: Store,
    o: { timeoutMs: number; logger?: Logger; dispatcher?: Dispatcher },
  ) {
    if (!conn.webhookUrl && conn.oauth) {
      this.tokens = new RotatingTokens({
        store,
        storeKey: bitrixTokenKey(conn.oauth.portal, conn.oauth.clientId),
        exchange: tokenExchange(bitrixTokenEndpoint(conn.oauth), o),
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
}

/**
 * The OAuth server's token endpoint (§2.2): `/oauth/token/` on oauth.bitrix.info (never the portal), a form
 * body; a refusal names an OAuth `error`. The answer's client_endpoint and scope are kept with the tokens.
 * Shared with the sign-in.
 */
export function bitrixTokenEndpoint(o: { clientId: string; clientSecret: string; oauthServer?: string }): TokenEndpoint {
  return {
    url: new URL('/oauth/token/', o.oauthServer ?? 'https://oauth.bitrix.info'),
    encoding: 'form',
    client: { client_id: o.clientId, client_secret: o.clientSecret },
    defaultTtlSec: 3600,
    extra: (b) => {
      const extra: Record<string, string> = {};
      if (typeof b.client_endpoint === 'string') extra.client_endpoint = b.client_endpoint;
      if (typeof b.scope === 'string') extra.scope = b.scope;
      return extra;
    },
    reason: (b) => (typeof b?.error === 'string' ? b.error : undefined),
    // invalid_grant (§2.2): the refresh token itself is spent or expired → full re-authorization.
    spent: (reason) => reason === 'invalid_grant',
    explain: explainBitrix,
  };
}

/**
 * §2.2: the refresh token is single-use, so a refresh whose answer was lost has spent it. The one repeat is still
 * worth it (should the server keep the old one), and its invalid_grant then ends in a clear "sign in again"
 * instead of a retryable network error that would be repeated with the dead token.
 */
function explainBitrix(f: TokenFailure): string {
  if (f.kind === 'unavailable') return `Could not reach the Bitrix24 OAuth server (${f.reason}).`;
  if (f.spent && f.lost)
    return `The Bitrix24 OAuth server's answer to the token refresh was lost, and refresh tokens are single-use, so the stored one is spent (${f.reason}). Sign in again with \`crm-mcp auth bitrix24\` (or set a new BITRIX_REFRESH_TOKEN).`;
  return `Bitrix24 could not refresh the access token (${f.reason}). Sign in again with \`crm-mcp auth bitrix24\` (or set a new BITRIX_REFRESH_TOKEN).`;
}
