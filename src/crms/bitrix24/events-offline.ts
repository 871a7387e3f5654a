/**
 * Bitrix24 offline events (§9; b24restdocs offline-events.md, event-offline-get.md, event-offline-clear.md):
 * they work without a public address (stdio), and need an OAuth app connection (`event.bind` and the queue
 * methods work only in application context, §2.1) and an administrator (offline bindings are refused to others).
 *
 * - `crm-mcp events bind`: `event.bind` with `event_type=offline` and no handler for every record event the
 *   receiver maps (events.ts), with an `auth_connector`, so the server's own writes (api.ts sends it with every
 *   write) are not queued back; with `--url`, online handlers too (`<url>/hooks/bitrix24`). An admin effect
 *   (methods.ts: every `event.*` write is admin), so the command's grant must hold `admin`.
 * - pull: `event.offline.get` with **clear=0** (the batch is reserved under a `process_id` and hidden from other
 *   readers), the `process_id` kept in the store, the events handed to `store` (resolves once durable), then
 *   `event.offline.clear` with that `process_id`. A pull first re-reads a batch an earlier one reserved and did
 *   not clear (a crash between get and clear; the portal keeps it up to 30 days), so nothing is lost; the
 *   event log drops what it already holds. The queue keeps the latest state per record: an event says only
 *   "this record changed"; nothing is fetched here (the change feed may look the record up).
 *
 * The queue calls are admin effects for an agent (bitrix_call: `event.offline.get` drains or reserves what the
 * server's own pull needs, §8 "Traps"). The pull sends them under a grant for exactly that, and only once an
 * administrator bound offline events with `crm-mcp events bind`: that binding is what enables them.
 */
import { CrmError, validationError } from '../../domain/errors.js';
import type { CrmEvent } from '../../domain/events.js';
import { Grant } from '../../policy/policy.js';
import type { Store } from '../../store/store.js';
import type { EventBinding } from '../events-contract.js';
import type { CallContext, CrmProvider } from '../types.js';
import type { BitrixApi, CallResult } from './api.js';
import type { BitrixConnection } from './connection.js';
import { BITRIX_EVENT_NAMES, BITRIX_HOOK_PATH, toEvent } from './events.js';
import { bindingKey, portalOf, type BoundEvent, type OfflineBinding } from './events-binding.js';
import { boundChecks } from './events-doctor.js';

interface BitrixLike {
  conn: BitrixConnection;
  store: Store;
  api: BitrixApi;
  call<T = unknown>(ctx: CallContext, method: string, params?: Record<string, unknown>): Promise<CallResult<T>>;
}

interface QueuedEvent {
  ID?: string;
  TIMESTAMP_X?: string;
  EVENT_NAME?: string;
  EVENT_DATA?: unknown;
  EVENT_ADDITIONAL?: unknown;
  MESSAGE_ID?: string;
}

/** One pull takes at most this many batches (of 50), so a long queue never holds the poller for long. */
export const PULL_MAX_BATCHES = 10;
const BATCH = 50;

function bitrix(p: CrmProvider): BitrixLike {
  const b = p as unknown as Partial<BitrixLike>;
  if (!b.call || !b.conn || !b.store || !b.api) throw new Error('not a Bitrix24 provider');
  return b as BitrixLike;
}

const pendingKey = (conn: BitrixConnection) => `bitrix24:events:pending:${conn.name}:${portalOf(conn)}`;

/** At start-up: the connector of an earlier binding, so writes carry it from the first one. */
export async function loadAuthConnector(conn: BitrixConnection, store: Store, api: BitrixApi): Promise<void> {
  if (!conn.oauth) return;
  const b = await store.get<OfflineBinding>(bindingKey(conn)).catch(() => undefined);
  api.authConnector = b?.connector;
}

/** A grant for the queue calls alone (see the file's comment). */
function queueCtx(ctx: CallContext): CallContext {
  return { ...ctx, grant: new Grant(['read', 'admin']) };
}

function needsApp(conn: BitrixConnection): void {
  if (!conn.oauth)
    throw new CrmError({
      code: 'config',
      message:
        'Bitrix24 offline events need an OAuth app connection (BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL): an inbound webhook cannot call event.bind. For online events over a webhook connection, set up an outgoing webhook in Bitrix24 (Developer resources → Other → Outgoing webhook) pointing at <public address>/hooks/bitrix24 and set BITRIX_OUTBOUND_TOKEN to its application token. Nothing was sent.',
    });
}

function handlerUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw validationError(`--url: "${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw validationError('--url: an http(s) address');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}/hooks/${BITRIX_HOOK_PATH}`;
}

function ids(data: unknown, path: readonly string[]): string | undefined {
  let v: unknown = data;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

function isoOf(ts: string | undefined): string | null {
  const t = ts ? Date.parse(ts) : NaN;
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** A queued record as an event (ids only); undefined for one about no record. */
function queuedEvent(e: QueuedEvent, conn: BitrixConnection, receivedAt: string): CrmEvent | undefined {
  const name = String(e.EVENT_NAME ?? '');
  let id: string | undefined;
  for (const path of [
    ['FIELDS', 'ID'],
    ['FIELDS_AFTER', 'ID'],
    ['FIELDS_BEFORE', 'ID'],
  ]) {
    id ??= ids(e.EVENT_DATA, path);
  }
  if (!id || !/^\d{1,20}$/.test(id)) return undefined;
  const user = ids(e.EVENT_ADDITIONAL, ['user_id']);
  return toEvent(name, id, {
    connection: conn.name,
    portal: portalOf(conn),
    occurredAt: isoOf(e.TIMESTAMP_X),
    receivedAt,
    source: 'offline',
    byUserId: user && /^\d+$/.test(user) ? user : null,
    // A record whose item changed again carries a later TIMESTAMP_X: a new event; the same reserved record read twice, the same one.
    stamp: `${e.MESSAGE_ID ?? ''}|${e.TIMESTAMP_X ?? ''}`,
  });
}

async function offlineGet(
  b: BitrixLike,
  ctx: CallContext,
  connector: string,
  processId?: string,
): Promise<{ processId: string | null; events: QueuedEvent[] }> {
  const params: Record<string, unknown> = { clear: 0, limit: BATCH, auth_connector: connector };
  if (processId) params.process_id = processId;
  const r = await b.call<{ process_id?: unknown; events?: unknown }>(queueCtx(ctx), 'event.offline.get', params);
  const res = (r.result ?? {}) as { process_id?: unknown; events?: unknown };
  const events = Array.isArray(res.events) ? (res.events as QueuedEvent[]) : [];
  const pid = typeof res.process_id === 'string' && res.process_id ? res.process_id : null;
  return { processId: pid, events };
}

async function offlineClear(b: BitrixLike, ctx: CallContext, connector: string, processId: string): Promise<void> {
  await b.call(queueCtx(ctx), 'event.offline.clear', { process_id: processId, auth_connector: connector });
}

/** Stores one reserved batch, then clears it; the process_id stays in the store until the clear succeeded. */
async function settle(
  b: BitrixLike,
  ctx: CallContext,
  connector: string,
  processId: string,
  batch: QueuedEvent[],
  store: (events: CrmEvent[]) => Promise<void>,
): Promise<number> {
  const receivedAt = new Date().toISOString();
  const events = batch.map((e) => queuedEvent(e, b.conn, receivedAt)).filter((e): e is CrmEvent => e !== undefined);
  if (events.length) await store(events);
  await offlineClear(b, ctx, connector, processId);
  await b.store.delete(pendingKey(b.conn));
  return batch.length;
}

export async function pullBitrix(provider: CrmProvider, ctx: CallContext, store: (events: CrmEvent[]) => Promise<void>): Promise<number> {
  const b = bitrix(provider);
  if (!b.conn.oauth) return 0;
  const binding = await b.store.get<OfflineBinding>(bindingKey(b.conn));
  if (!binding?.offline) return 0;
  const connector = binding.connector;
  let pulled = 0;
  // A batch an earlier pull reserved and never cleared: read again by its process_id, stored, cleared.
  const pending = await b.store.get<{ process_id: string }>(pendingKey(b.conn));
  if (pending?.process_id) {
    const again = await offlineGet(b, ctx, connector, pending.process_id);
    pulled += await settle(b, ctx, connector, pending.process_id, again.events, store);
  }
  for (let i = 0; i < PULL_MAX_BATCHES; i++) {
    const got = await offlineGet(b, ctx, connector);
    if (!got.events.length || !got.processId) break;
    // Remembered before anything else: a crash from here on leaves a batch the next pull reads again.
    await b.store.set(pendingKey(b.conn), { process_id: got.processId, at: new Date().toISOString() });
    pulled += await settle(b, ctx, connector, got.processId, got.events, store);
    if (got.events.length < BATCH) break;
  }
  return pulled;
}

export async function bindBitrix(provider: CrmProvider, ctx: CallContext, o: { url?: string }): Promise<EventBinding> {
  const b = bitrix(provider);
  needsApp(b.conn);
  const handler = handlerUrl(o.url);
  const prior = await b.store.get<OfflineBinding>(bindingKey(b.conn));
  // One connector per connection, kept across binds: a new one would start a new, empty queue.
  const connector = prior?.connector ?? `crm-mcp-${b.conn.name}`.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 50);
  for (const event of BITRIX_EVENT_NAMES) await b.call(ctx, 'event.bind', { event, event_type: 'offline', auth_connector: connector });
  if (handler) for (const event of BITRIX_EVENT_NAMES) await b.call(ctx, 'event.bind', { event, handler });
  const binding: OfflineBinding = {
    offline: true,
    connector,
    events: [...BITRIX_EVENT_NAMES],
    ...(handler ? { handler } : prior?.handler ? { handler: prior.handler } : {}),
    bound_at: new Date().toISOString(),
  };
  await b.store.set(bindingKey(b.conn), binding);
  b.api.authConnector = connector;
  return {
    lines: [
      `Bitrix24 ${portalOf(b.conn)}: offline events bound for ${BITRIX_EVENT_NAMES.length} events (auth_connector ${connector}); the server pulls them every CRM_EVENTS_POLL_S seconds, over stdio too.`,
      ...(handler
        ? [`Online events go to ${handler} as well: Bitrix24 sends each once, with no retry; the offline queue still holds what this address missed.`]
        : ["Online events: not bound (pass --url with this server's public address to have them delivered at once)."]),
    ],
  };
}

export async function unbindBitrix(provider: CrmProvider, ctx: CallContext, o: { url?: string }): Promise<EventBinding> {
  const b = bitrix(provider);
  needsApp(b.conn);
  const prior = await b.store.get<OfflineBinding>(bindingKey(b.conn));
  const handler = handlerUrl(o.url) ?? prior?.handler;
  let removed = 0;
  for (const event of BITRIX_EVENT_NAMES) {
    const r = await b.call<{ count?: number }>(ctx, 'event.unbind', { event, event_type: 'offline' });
    removed += Number(r.result?.count ?? 0);
    if (handler) {
      const h = await b.call<{ count?: number }>(ctx, 'event.unbind', { event, handler });
      removed += Number(h.result?.count ?? 0);
    }
  }
  await b.store.delete(bindingKey(b.conn));
  b.api.authConnector = undefined;
  return { lines: [`Bitrix24 ${portalOf(b.conn)}: ${removed} event binding(s) removed; offline events are no longer pulled.`] };
}

export async function statusBitrix(provider: CrmProvider, ctx: CallContext): Promise<EventBinding> {
  const b = bitrix(provider);
  if (!b.conn.oauth)
    return {
      lines: [
        `Bitrix24 ${portalOf(b.conn)}: an inbound-webhook connection (no event.bind); outgoing-webhook deliveries are checked against BITRIX_OUTBOUND_TOKEN (${b.conn.outboundToken ? 'set' : 'not set'}).`,
      ],
      checks: [
        {
          check: 'events: portal bindings',
          status: 'skipped',
          detail:
            "cannot check: an inbound-webhook connection cannot call event.get (§2.1), and Bitrix24 shows an outgoing webhook's address only in its settings",
        },
      ],
    };
  const stored = await b.store.get<OfflineBinding>(bindingKey(b.conn));
  let r: CallResult<BoundEvent[]>;
  try {
    r = await b.call<BoundEvent[]>(ctx, 'event.get', {});
  } catch (err) {
    if (!(err instanceof CrmError && err.code === 'forbidden')) throw err;
    return {
      lines: [`Bitrix24 ${portalOf(b.conn)}: the portal refused event.get (${err.message}).`],
      checks: [{ check: 'events: portal bindings', status: 'skipped', detail: `cannot check: the portal refused event.get (${err.message})` }],
    };
  }
  const rows = Array.isArray(r.result) ? r.result : [];
  const offline = rows.filter((x) => Number(x.offline) === 1).length;
  const online = rows.filter((x) => Number(x.offline) !== 1);
  return {
    lines: [
      `Bitrix24 ${portalOf(b.conn)}: ${offline} offline binding(s)${stored ? ` (pulled; auth_connector ${stored.connector})` : ' (not pulled: run crm-mcp events bind)'}, ${online.length} online handler(s)${online.length ? `: ${[...new Set(online.map((x) => x.handler))].join(', ')}` : ''}.`,
    ],
    checks: boundChecks(rows, stored),
  };
}
