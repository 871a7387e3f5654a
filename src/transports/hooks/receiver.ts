/**
 * The general webhook receiver: `POST /hooks/<hookPath>[/<rest>]` on the HTTP service, for every CRM module
 * that declares `events.receive` (events-contract.ts). It names no CRM. It is not behind the service's bearer
 * token (a CRM cannot send one); a wing checks what its CRM can send instead (a path secret, a token in the
 * body, the account), and this file bounds what anyone can make it do:
 *
 * - the request rate per client address (429, nothing read), the body size (413, nothing stored);
 * - a delivery the wing refuses gets its 4xx (400 malformed, 403 not ours, 415 wrong content type) and nothing
 *   is stored; a wing that throws on a body is answered 400, never 500;
 * - an accepted delivery's events are appended to the event log **before** the 200 (a redelivery is counted
 *   as a duplicate by the log, not stored twice); a log that cannot store them is a 503, so the CRM retries.
 *
 * CRMs disable a webhook that fails too often (Kommo: more than 100 failures in 2 hours), so a well-formed
 * delivery is answered 200 as fast as the log allows, with no request to the CRM on the way. The path after
 * `/hooks/<hookPath>` may carry a secret: it is never logged, and the log lines and metrics name only the hook.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ConnectionBase } from '../../crms/contract.js';
import type { EventsPart, HookVerdict } from '../../crms/events-contract.js';
import type { EventLog } from '../../events/log.js';
import { hookBinding } from '../../events/hook-secrets.js';
import type { Store } from '../../store/store.js';
import { BodyTooLarge, readBody } from '../http/body.js';
import { TokenBucketLimiter } from '../http/rate-limit.js';

/** Largest delivery (bytes): a Kommo delivery of a few dozen records is a few KB. */
export const HOOK_MAX_BODY_BYTES = 256 * 1024;

/**
 * Deliveries per minute per client address, and the burst. Generous: a CRM posts a burst when many records
 * change at once, and every refusal counts towards the CRM disabling the hook; this only stops a flood.
 */
export const HOOK_RATE = { perMinute: 6000, burst: 2000 };

/** A module as the receiver needs it. */
export interface HookModule {
  readonly kind: string;
  readonly events?: EventsPart<never>;
}

export interface HooksOptions {
  modules: readonly HookModule[];
  /** The configured connections; each module gets those of its kind. */
  connections: readonly ConnectionBase[];
  log: EventLog;
  /** Where `events bind` keeps the secrets' hashes. */
  store: Store;
  logger?: Logger;
  maxBodyBytes?: number;
  rate?: { perMinute: number; burst?: number };
  /** The clock (grace periods, rate buckets, received_at); tests inject one. */
  now?: () => number;
  /** Counts an answered delivery: `hook` is the module's hookPath, never the rest of the path. */
  onDelivery?: (r: { hook: string; status: number; stored: number; duplicates: number }) => void;
  /** True once the service shuts down (serve.ts sets it before the drain): deliveries are answered 503 and not stored (the CRM retries). */
  closing?: () => boolean;
}

function answer(res: ServerResponse, status: number, body: Record<string, unknown>, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * The route for the HTTP service: returns a handler of `/hooks…` requests (the service dispatches every path
 * under `/hooks` to it, before its own routes and its bearer token).
 */
export function hooksRoute(o: HooksOptions): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> {
  const now = o.now ?? Date.now;
  const max = o.maxBodyBytes ?? HOOK_MAX_BODY_BYTES;
  const limiter = new TokenBucketLimiter({ perMinute: o.rate?.perMinute ?? HOOK_RATE.perMinute, burst: o.rate?.burst ?? HOOK_RATE.burst, now });
  const byPath = new Map<string, HookModule & { events: EventsPart<never> }>();
  for (const m of o.modules) if (m.events?.receive) byPath.set(m.events.hookPath, m as HookModule & { events: EventsPart<never> });

  return async (req, res, path) => {
    const segments = path.split('/').slice(2);
    const hook = segments[0] ?? '';
    const m = byPath.get(hook);
    // The path may hold a secret: lines and metrics name only a known hook (else `other`) and the outcome.
    const label = m ? hook : 'other';
    const done = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}, stored = 0, duplicates = 0) => {
      answer(res, status, body, headers);
      try {
        o.onDelivery?.({ hook: label, status, stored, duplicates });
      } catch (err) {
        // Counting must not fail an answered delivery (the CRM already has its answer).
        o.logger?.warn({ hook: label, err: (err as Error)?.name ?? 'Error' }, 'webhook delivery could not be counted');
      }
      o.logger?.[status >= 500 ? 'warn' : status >= 400 ? 'info' : 'debug']({ hook: label, status, stored, duplicates }, 'webhook delivery');
    };
    if (!m) return done(404, { error: 'not_found', message: 'No receiver here: the hooks are /hooks/<crm>/…' });
    if (req.method !== 'POST') return done(405, { error: 'method_not_allowed', message: 'Webhooks are delivered with POST' }, { allow: 'POST' });
    // Shutting down: nothing is read or stored, and the connection is not kept, so the CRM's retry reaches a
    // running instance (or this one once restarted) instead of a log that is about to close.
    if (o.closing?.())
      return done(503, { error: 'unavailable', message: 'The service is shutting down; deliver again' }, { 'retry-after': '1', connection: 'close' });
    const took = limiter.take(req.socket.remoteAddress ?? '?');
    if (!took.ok) return done(429, { error: 'rate_limited', message: 'Too many deliveries from this address' }, { 'retry-after': String(took.retryAfterSec) });
    if (Number(req.headers['content-length'] ?? 0) > max)
      return done(413, { error: 'too_large', message: `The delivery is over ${max} bytes` }, { connection: 'close' });
    let body: string;
    try {
      body = await readBody(req, max);
    } catch (err) {
      if (err instanceof BodyTooLarge) return done(413, { error: 'too_large', message: `The delivery is over ${max} bytes` }, { connection: 'close' });
      return done(400, { error: 'bad_request', message: 'The delivery could not be read' });
    }
    const receivedAt = new Date(now()).toISOString();
    const conns = o.connections.filter((c) => c.provider === m.kind) as never[];
    let verdict: HookVerdict;
    try {
      verdict = await m.events.receive!({ rest: segments.slice(1), contentType: req.headers['content-type'], body, receivedAt }, conns, (connection) =>
        hookBinding(o.store, connection, now()),
      );
    } catch (err) {
      // A body the wing could not handle is the sender's to fix; the wing's error may quote the body, so only its kind is logged.
      o.logger?.warn({ hook, err: (err as Error)?.name ?? 'Error' }, 'webhook receiver could not read a delivery');
      return done(400, { error: 'bad_request', message: 'The delivery could not be read' });
    }
    if (!verdict.ok) return done(verdict.status, { error: 'refused', message: verdict.reason });
    let stored = 0;
    let duplicates = 0;
    try {
      const r = await o.log.append(verdict.events);
      stored = r.stored.length;
      duplicates = r.duplicates;
    } catch (err) {
      o.logger?.error({ hook, err: (err as Error)?.message ?? String(err) }, 'webhook events could not be stored');
      return done(503, { error: 'unavailable', message: 'The events could not be stored; deliver again' }, { 'retry-after': '5' });
    }
    done(200, { ok: true, events: verdict.events.length, stored, duplicates }, {}, stored, duplicates);
  };
}
