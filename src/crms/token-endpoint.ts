/**
 * A CRM's OAuth token endpoint as data: where the token requests go, how their body is encoded, the client
 * fields they carry and what an answer means. Both users of the one token request (http/token.ts) read it:
 * the running server's refreshes (RotatingTokens, oauth.ts) through `tokenExchange`, and `crm-mcp auth`'s
 * code exchange (sign-in-kit.ts `exchangeCode`), so the two can never drift apart.
 */
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { CrmError } from '../domain/errors.js';
import { REFRESH_ATTEMPTS, requestToken, type TokenAttempts, type TokenOutcome } from '../http/token.js';
import { REFRESH_REFUSED, type TokenExchange, type TokenGrant } from './oauth.js';

/** Why a runtime token request failed, for the wing to word. */
export interface TokenFailure {
  grant: 'authorization_code' | 'refresh_token';
  /** `refused`: the endpoint answered and said no. `unavailable`: no usable answer (network, 5xx). */
  kind: 'refused' | 'unavailable';
  /** The endpoint's own words (`hint`, `error`...), else the status or the network failure. */
  reason: string;
  /** The refresh token itself was refused (spent or revoked): it is never sent again. */
  spent: boolean;
  /** An earlier attempt may have reached the CRM and its answer was lost. */
  lost: boolean;
}

export interface TokenEndpoint {
  url: URL;
  encoding: 'json' | 'form';
  /** Sent with every grant: client_id and client_secret, and whatever else the CRM asks for (a redirect_uri...). */
  client: Record<string, string>;
  /** Seconds an access token lives when the answer does not say. */
  defaultTtlSec: number;
  /** What of an answer the token record keeps in `extra`. */
  extra?(body: Record<string, unknown>): Record<string, string>;
  /** The endpoint's own reason in an answer without tokens, when it gives one. */
  reason(body: Record<string, unknown> | undefined): string | undefined;
  /** A refusal of a refresh grant that means the refresh token itself is spent or revoked, not the client's credentials. */
  spent(reason: string): boolean;
  /** The message of the error a failed runtime grant throws (the user's next step included). */
  explain(f: TokenFailure): string;
}

/** The grant the token record is made from. */
export function grantOf(ep: TokenEndpoint, r: Extract<TokenOutcome, { kind: 'issued' }>): TokenGrant {
  const extra = ep.extra?.(r.body);
  return { ...r.tokens, expires_in: r.tokens.expires_in ?? ep.defaultTtlSec, ...(extra ? { extra } : {}) };
}

export interface TokenExchangeOptions {
  timeoutMs: number;
  dispatcher?: Dispatcher;
  logger?: Logger;
  attempts?: TokenAttempts;
}

/**
 * The running server's token requests against `ep` (RotatingTokens' exchange): a refusal becomes a non-retryable
 * `auth` error, marked REFRESH_REFUSED when the refresh token itself is spent; no answer becomes a retryable
 * `network` error.
 */
export function tokenExchange(e: TokenEndpoint, o: TokenExchangeOptions): TokenExchange {
  return async (grant) => {
    const r = await requestToken({
      url: e.url,
      encoding: e.encoding,
      fields: { ...e.client, ...grant },
      timeoutMs: o.timeoutMs,
      dispatcher: o.dispatcher,
      logger: o.logger,
      attempts: o.attempts ?? REFRESH_ATTEMPTS,
    });
    if (r.kind === 'issued') return grantOf(e, r);
    if (r.kind === 'unavailable') {
      const message = e.explain({ grant: grant.grant_type, kind: 'unavailable', reason: r.reason, spent: false, lost: r.lost });
      throw new CrmError({ code: 'network', retryable: true, message });
    }
    const reason = e.reason(r.body) ?? `status ${r.status}`;
    const spent = grant.grant_type === 'refresh_token' && e.spent(reason);
    throw new CrmError({
      code: 'auth',
      status: r.status,
      retryable: false,
      ...(spent ? { details: { [REFRESH_REFUSED]: true } } : {}),
      message: e.explain({ grant: grant.grant_type, kind: 'refused', reason, spent, lost: r.lost }),
    });
  };
}
