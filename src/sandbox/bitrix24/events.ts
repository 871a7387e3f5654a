/**
 * Portal events (fact sheet §9): bound online handlers get a form-urlencoded POST in the application
 * variant of fixture event.ONCRMCONTACTADD.form.txt (no retries, failures ignored); offline bindings queue
 * the event for `event.offline.get`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { BitrixState } from './state.js';
import { nextId } from './state.js';
import { phpDate } from './time.js';

export interface Delivery {
  event: string;
  handler: string;
  body: string;
  status: number | 'error';
}

export interface EventContext {
  state: BitrixState;
  url: () => string;
  memberId: string;
  scopes: string[];
  now: () => number;
  /** A fresh access token of the application for `auth[access_token]`. */
  accessFor: (userId: number) => { token: string; expiresAt: number } | undefined;
}

/** PHP `http_build_query` of a nested object (bracket keys, RFC 3986 encoding). */
export function buildQuery(params: Record<string, unknown>): string {
  const parts: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(`${prefix}[${i}]`, x));
    else if (typeof v === 'object') for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(`${prefix}[${k}]`, x);
    else parts.push(`${encodeURIComponent(prefix)}=${encodeURIComponent(String(v))}`);
  };
  for (const [k, v] of Object.entries(params)) walk(k, v);
  return parts.join('&');
}

export class EventBus {
  readonly deliveries: Delivery[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly ctx: EventContext) {}

  /** The application token is constant per application (§9); derived from the client id and portal. */
  applicationToken(clientId: string): string {
    return createHash('md5').update(`${this.ctx.memberId}|${clientId}`).digest('hex');
  }

  emit(event: string, data: Record<string, unknown>, userId: number): void {
    const { state } = this.ctx;
    for (const b of state.eventBindings.filter((x) => x.event === event)) {
      if (b.offline) {
        state.offlineEvents.push({
          ID: String(nextId(state, 'offline')),
          TIMESTAMP_X: phpDate(this.ctx.now()),
          EVENT_NAME: event,
          EVENT_DATA: structuredClone(data),
          EVENT_ADDITIONAL: { user_id: String(userId) },
          MESSAGE_ID: randomBytes(16).toString('hex'),
          clientId: b.clientId,
        });
        continue;
      }
      const tok = this.ctx.accessFor(userId);
      const base = `${this.ctx.url()}/rest/`;
      const body = buildQuery({
        event,
        event_handler_id: b.id,
        data,
        ts: Math.floor(this.ctx.now() / 1000),
        auth: {
          access_token: tok?.token,
          expires: tok?.expiresAt,
          expires_in: tok ? 3600 : undefined,
          scope: this.ctx.scopes.join(','),
          domain: new URL(this.ctx.url()).host,
          server_endpoint: base,
          status: 'L',
          client_endpoint: base,
          member_id: this.ctx.memberId,
          user_id: userId,
          application_token: this.applicationToken(b.clientId),
        },
      });
      const d: Delivery = { event, handler: b.handler, body, status: 'error' };
      this.deliveries.push(d);
      const p = request(b.handler, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
        signal: AbortSignal.timeout(3000),
      })
        .then(async (res) => {
          d.status = res.statusCode;
          await res.body.dump();
        })
        .catch(() => undefined)
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  /** Waits for deliveries in flight (tests; close). */
  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
