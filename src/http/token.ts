/**
 * The OAuth token request (an authorization-code exchange or a refresh), written once for every CRM: a POST
 * through the outgoing pipeline's send (client.ts `sendOnce`: the shared agent, a bounded timeout), no
 * credential header, the answer read leniently. The caller says where it goes, what it carries and how it is
 * encoded, and reads the answer's meaning; this file decides how often it is sent and keeps its secrets out of
 * every log line and error.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import { z } from 'zod';
import { log } from '../util/log.js';
import { redact, registerSecret } from '../util/redact.js';
import { sendFailure, sendOnce, type Payload } from './client.js';
import { backoffMs } from './retry.js';

/** How often one token request may be sent. */
export interface TokenAttempts {
  /** Attempts in all. */
  max: number;
  /** Attempts that may have reached the server (answer lost, timeout, 5xx) before the request gives up. */
  mayReach: number;
}

/**
 * A refresh token rotates, and a server may retire the old one the moment it issues the next pair: a repeat
 * after a lost answer is then refused and only a new sign-in helps. So an attempt that may have reached the
 * server is repeated once, never more (the repeat ends in the pair or in a clear refusal), and one that never
 * left this machine (connection refused, DNS) up to three times in all.
 */
export const REFRESH_ATTEMPTS: TokenAttempts = { max: 3, mayReach: 2 };

/** Sent once: a sign-in's authorization code is single-use, and the user is there to run it again. */
export const ONE_ATTEMPT: TokenAttempts = { max: 1, mayReach: 1 };

export interface TokenRequest {
  url: URL;
  /** What the request carries: grant_type, client_id, client_secret, code or refresh_token, and whatever else the server wants. */
  fields: Record<string, string>;
  /** A JSON body, or application/x-www-form-urlencoded (the OAuth standard). */
  encoding: 'json' | 'form';
  timeoutMs: number;
  /** Default ONE_ATTEMPT. */
  attempts?: TokenAttempts;
  dispatcher?: Dispatcher;
  logger?: Logger;
  /** Backoff base between attempts (ms). */
  backoffBaseMs?: number;
}

/** The fields of a token answer the client relies on, read leniently; the rest stays in the outcome's `body`. */
const TokenAnswer = z.looseObject({
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
  expires_in: z.coerce.number().positive().optional().catch(undefined),
});

export interface IssuedTokens {
  access_token: string;
  refresh_token: string;
  /** Seconds, when the answer says. */
  expires_in?: number;
}

export type TokenOutcome =
  /** A 2xx answer carrying both tokens. */
  | { kind: 'issued'; status: number; tokens: IssuedTokens; body: Record<string, unknown> }
  /**
   * The server answered without tokens (a 4xx, or a 2xx without them); why is the caller's to read from `body`.
   * `lost`: an earlier attempt may have reached the server and its answer was lost (a token it carried may be spent).
   */
  | { kind: 'refused'; status: number; body: Record<string, unknown> | undefined; lost: boolean }
  /** No usable answer within the attempts: the last network failure, or a 5xx (`status` then set). */
  | { kind: 'unavailable'; reason: string; status?: number; body?: Record<string, unknown>; lost: boolean };

/** Request fields that are credentials (RFC 6749 names): registered before anything is sent or logged. */
const SECRET_FIELDS = ['client_secret', 'refresh_token', 'code', 'code_verifier'];

export async function requestToken(r: TokenRequest): Promise<TokenOutcome> {
  for (const k of SECRET_FIELDS) registerSecret(r.fields[k]);
  const attempts = r.attempts ?? ONE_ATTEMPT;
  const payload: Payload =
    r.encoding === 'json'
      ? { contentType: 'application/json', body: JSON.stringify(r.fields) }
      : { contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(r.fields).toString() };
  const logger = r.logger ?? log();
  let reached = 0;
  for (let attempt = 1; ; attempt++) {
    let failure: Extract<TokenOutcome, { kind: 'unavailable' }>;
    logger.debug({ url: redact(r.url.toString()), grant_type: r.fields.grant_type, attempt }, 'oauth token request');
    try {
      const res = await sendOnce(r.url, { method: 'POST', payload, timeoutMs: r.timeoutMs, dispatcher: r.dispatcher });
      const body = answerBody(res.text);
      if (res.status < 500) {
        const ok = res.status >= 200 && res.status < 300 ? TokenAnswer.safeParse(body) : undefined;
        if (ok?.success) {
          const { access_token, refresh_token, expires_in } = ok.data;
          return { kind: 'issued', status: res.status, tokens: { access_token, refresh_token, ...(expires_in ? { expires_in } : {}) }, body: body! };
        }
        return { kind: 'refused', status: res.status, body, lost: reached > 0 };
      }
      reached += 1;
      failure = { kind: 'unavailable', reason: `the token endpoint answered ${res.status}`, status: res.status, body, lost: true };
    } catch (err) {
      const f = sendFailure(err);
      if (!f.neverSent) reached += 1;
      failure = { kind: 'unavailable', reason: f.timedOut ? `no answer within ${r.timeoutMs} ms` : f.code, lost: reached > 0 };
    }
    if (attempt >= attempts.max || reached >= attempts.mayReach) return failure;
    logger.debug({ url: redact(r.url.toString()), reason: failure.reason, attempt }, 'repeating the oauth token request');
    await delay(backoffMs(attempt - 1, undefined, { baseMs: r.backoffBaseMs ?? 200 }));
  }
}

/** The answer as an object when it is JSON; its tokens registered as secrets before anyone can log or quote them. */
function answerBody(text: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const body = v as Record<string, unknown>;
  for (const k of ['access_token', 'refresh_token']) if (typeof body[k] === 'string') registerSecret(body[k]);
  return body;
}
