/**
 * Portal events (fact sheet §9). Three ways out of the portal when its data changes:
 * - handlers an application bound with `event.bind` (online): a form-urlencoded POST in the application
 *   variant of fixture event.ONCRMCONTACTADD.form.txt;
 * - the outgoing webhook configured in the portal's UI: the webhook variant of fixture
 *   event.ONCRMLEADADD.form.txt (`auth` carries only domain, endpoints, member_id and application_token);
 * - offline bindings (`event_type=offline`): a queue per application and `auth_connector`, read with
 *   `event.offline.*` (event-methods.ts).
 * Online deliveries go out **once, with no retry** (§9 "Delivery semantics"): a handler that is down misses
 * the event; only an offline binding keeps it. The offline queue keeps the latest state only: one record per
 * changed item and event, its TIMESTAMP_X moved to the latest change (b24restdocs offline-events.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import type { BitrixState, BOfflineEvent } from './state.js';
import { nextId } from './state.js';
import { phpDate } from './time.js';

export interface Delivery {
  event: string;
  handler: string;
  body: string;
  /** The HTTP status the handler answered, or 'error' when it could not be reached (never retried). */
  status: number | 'error';
  /** Which path: an application's bound handler, or the UI-configured outgoing webhook. */
  via: 'app' | 'webhook';
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

/** The outgoing webhook set up in the portal's UI (Developer resources → Outgoing webhook, §9). */
export interface OutboundWebhook {
  url: string;
  /** Event names it is subscribed to (upper case). */
  events: ReadonlySet<string>;
  /** The "Application token" the UI shows for it. */
  token: string;
}

/** A reserved batch is kept up to 30 days (b24restdocs offline-events.md, event-offline-get.md). */
export const RESERVATION_MS = 30 * 86_400_000;

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
  outbound: OutboundWebhook | undefined;

  constructor(private readonly ctx: EventContext) {}

  /** The application token is constant per application (§9); derived from the client id and portal. */
  applicationToken(clientId: string): string {
    return createHash('md5').update(`${this.ctx.memberId}|${clientId}`).digest('hex');
  }

  /** Sets up (or, with null, removes) the UI outgoing webhook; returns its application token. */
  setOutbound(url: string | null, events: readonly string[] = []): string | undefined {
    if (url === null) {
      this.outbound = undefined;
      return undefined;
    }
    const token =
      this.outbound?.token ??
      randomBytes(24)
        .toString('base64url')
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '')
        .padEnd(32, '0')
        .slice(0, 32);
    this.outbound = { url, events: new Set(events.map((e) => e.toUpperCase())), token };
    return token;
  }

  /**
   * A change happened. `connector`: the `auth_connector` the change was made with: an offline queue bound with
   * the same connector does not get it (offline-events.md "How to Avoid Cycles").
   */
  emit(event: string, data: Record<string, unknown>, userId: number, connector?: string): void {
    const { state } = this.ctx;
    const ts = Math.floor(this.ctx.now() / 1000);
    for (const b of state.eventBindings.filter((x) => x.event === event)) {
      if (b.offline) {
        if (connector && b.connector === connector) continue;
        this.enqueue(b.clientId, b.connector ?? '', event, data, userId);
        continue;
      }
      const tok = this.ctx.accessFor(userId);
      const base = `${this.ctx.url()}/rest/`;
      const body = buildQuery({
        event,
        event_handler_id: b.id,
        data,
        ts,
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
      this.post({ event, handler: b.handler, body, status: 'error', via: 'app' });
    }
    const o = this.outbound;
    if (o && o.events.has(event)) {
      const base = `${this.ctx.url()}/rest/`;
      const body = buildQuery({
        event,
        data,
        ts,
        auth: { domain: new URL(this.ctx.url()).host, client_endpoint: base, server_endpoint: base, member_id: this.ctx.memberId, application_token: o.token },
      });
      this.post({ event, handler: o.url, body, status: 'error', via: 'webhook' });
    }
  }

  /** One record per (queue, event, item): a repeated change moves its TIMESTAMP_X; a reserved record is left alone. */
  private enqueue(clientId: string, connector: string, event: string, data: Record<string, unknown>, userId: number): void {
    const { state } = this.ctx;
    const key = createHash('md5')
      .update(`${clientId}|${connector}|${event}|${JSON.stringify(data)}`)
      .digest('hex');
    const at = phpDate(this.ctx.now());
    const open = state.offlineEvents.find((e) => e.key === key && e.PROCESS_ID === '' && e.ERROR === '0');
    if (open) {
      open.TIMESTAMP_X = at;
      open.EVENT_ADDITIONAL = { user_id: String(userId) };
      open.at = this.ctx.now();
      return;
    }
    const row: BOfflineEvent = {
      ID: String(nextId(state, 'offline')),
      TIMESTAMP_X: at,
      EVENT_NAME: event,
      EVENT_DATA: structuredClone(data),
      EVENT_ADDITIONAL: { user_id: String(userId) },
      MESSAGE_ID: randomBytes(16).toString('hex'),
      PROCESS_ID: '',
      ERROR: '0',
      clientId,
      connector,
      key,
      at: this.ctx.now(),
    };
    state.offlineEvents.push(row);
  }

  /** Once: a failed or refused delivery is recorded and never sent again (§9). */
  private post(d: Delivery): void {
    this.deliveries.push(d);
    const p = request(d.handler, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: d.body,
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

  /** Waits for deliveries in flight (tests; close). */
  async settle(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
