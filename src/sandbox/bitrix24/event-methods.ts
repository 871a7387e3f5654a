/**
 * The event methods (fact sheet §9; b24restdocs api-reference/events/*): `event.bind`, `event.get`,
 * `event.unbind` and the offline queue `event.offline.get|clear|error|list`. All of them need OAuth application
 * context (§2.1: a webhook is refused). Offline events are for administrators only (events fact sheet,
 * "Offline events"; the method pages say "any user": the stricter reading is emulated), and so is binding for
 * another user (`auth_type`): others get 403 ACCESS_DENIED. The queue (events.ts) is per application and
 * `auth_connector`; `clear=0` reserves a batch under a new `process_id` and hides it from other readers; a
 * reserved batch is read again by its `process_id` and kept up to 30 days; parallel reads never overlap.
 */
import { randomBytes } from 'node:crypto';
import type { CallCtx, MethodResult, Registry } from './context.js';
import { paginate } from './context.js';
import { BxError, errors } from './errors.js';
import { compileFilter, compileOrder, matches, scalar, sortRecords, type FieldAccess } from './filter.js';
import { flag, isObject, objectParam, type Params } from './params.js';
import { RESERVATION_MS } from './events.js';
import { KNOWN_EVENTS } from './methods.js';
import { nextId, type BOfflineEvent } from './state.js';

function isAdmin(ctx: CallCtx): boolean {
  return ctx.portal.state.adminIds.includes(ctx.auth.userId);
}

function requireAdmin(ctx: CallCtx): void {
  if (!isAdmin(ctx)) throw errors.accessDenied('Access denied! Available only for administrators');
}

function connectorOf(p: Params): string {
  const v = p.auth_connector ?? p.AUTH_CONNECTOR;
  return v === undefined || v === null ? '' : String(v);
}

function ids(v: unknown): string[] | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) return v.map(String);
  if (isObject(v)) return Object.values(v).map(String);
  return [String(v)];
}

const QUEUE_FIELDS: Record<string, FieldAccess> = {
  ID: scalar('integer', 'ID'),
  TIMESTAMP_X: scalar('datetime', 'TIMESTAMP_X'),
  EVENT_NAME: scalar('string', 'EVENT_NAME'),
  MESSAGE_ID: scalar('string', 'MESSAGE_ID'),
};
const LIST_FIELDS: Record<string, FieldAccess> = { ...QUEUE_FIELDS, PROCESS_ID: scalar('string', 'PROCESS_ID'), ERROR: scalar('integer', 'ERROR') };

/** The calling application's queue (this `auth_connector`), reservations past 30 days dropped first. */
function queue(ctx: CallCtx, connector: string): BOfflineEvent[] {
  const state = ctx.portal.state;
  const now = ctx.portal.now();
  state.offlineEvents = state.offlineEvents.filter((e) => !(e.reservedAt !== undefined && now - e.reservedAt > RESERVATION_MS));
  return state.offlineEvents.filter((e) => e.clientId === ctx.auth.clientId && e.connector === connector);
}

function shown(e: BOfflineEvent): Record<string, unknown> {
  return {
    ID: e.ID,
    TIMESTAMP_X: e.TIMESTAMP_X,
    EVENT_NAME: e.EVENT_NAME,
    EVENT_DATA: structuredClone(e.EVENT_DATA),
    EVENT_ADDITIONAL: structuredClone(e.EVENT_ADDITIONAL),
    MESSAGE_ID: e.MESSAGE_ID,
  };
}

function select(rows: BOfflineEvent[], p: Params, fields: Record<string, FieldAccess>, defaultOrder: Record<string, string>): BOfflineEvent[] {
  const resolve = (n: string) => fields[n];
  const conds = compileFilter(objectParam(p, 'filter'), resolve);
  const order = objectParam(p, 'order');
  const hit = rows.filter((r) => matches(r as unknown as Record<string, unknown>, conds));
  return sortRecords(
    hit as unknown as Array<Record<string, unknown>>,
    compileOrder(order && Object.keys(order).length ? order : defaultOrder, resolve),
  ) as unknown as BOfflineEvent[];
}

function offlineGet(p: Params, ctx: CallCtx): MethodResult {
  requireAdmin(ctx);
  const limit = Math.max(1, Math.min(1000, Number(p.limit ?? 50) || 50));
  const clear = flag(p.clear, true);
  const wantErrors = flag(p.error, false);
  const processId = p.process_id === undefined || p.process_id === '' ? undefined : String(p.process_id);
  const q = queue(ctx, connectorOf(p));
  // A process's reserved records first (read again after a crash), then free ones up to the limit.
  const reserved = processId
    ? select(
        q.filter((e) => e.PROCESS_ID === processId),
        p,
        QUEUE_FIELDS,
        { TIMESTAMP_X: 'ASC' },
      )
    : [];
  const free = select(
    q.filter((e) => e.PROCESS_ID === '' && e.ERROR === (wantErrors ? '1' : '0')),
    p,
    QUEUE_FIELDS,
    { TIMESTAMP_X: 'ASC' },
  );
  const batch = [...reserved, ...free].slice(0, limit);
  const state = ctx.portal.state;
  let pid: string | null = null;
  if (clear) {
    const taken = new Set(batch.map((e) => e.ID));
    state.offlineEvents = state.offlineEvents.filter((e) => !taken.has(e.ID));
  } else if (batch.length) {
    pid = processId ?? randomBytes(16).toString('hex');
    const at = ctx.portal.now();
    for (const e of batch) {
      if (e.PROCESS_ID === '') e.reservedAt = at;
      e.PROCESS_ID = pid;
    }
  } else pid = processId ?? null;
  return { result: { process_id: pid, events: batch.map(shown) } };
}

function offlineClear(p: Params, ctx: CallCtx): MethodResult {
  requireAdmin(ctx);
  const pid = p.process_id === undefined ? '' : String(p.process_id);
  // Required parameter (event-offline-clear.md); the portal's wording for a missing one is not documented.
  if (!pid) throw errors.argument('Parameter process_id is required');
  const byId = ids(p.id);
  const byMessage = byId ? undefined : ids(p.message_id);
  const drop = new Set(
    queue(ctx, connectorOf(p))
      .filter((e) => e.PROCESS_ID === pid && (!byId || byId.includes(e.ID)) && (!byMessage || byMessage.includes(e.MESSAGE_ID)))
      .map((e) => e.ID),
  );
  ctx.portal.state.offlineEvents = ctx.portal.state.offlineEvents.filter((e) => !drop.has(e.ID));
  return { result: true };
}

function offlineError(p: Params, ctx: CallCtx): MethodResult {
  requireAdmin(ctx);
  const pid = p.process_id === undefined ? '' : String(p.process_id);
  if (!pid) throw errors.argument('Parameter process_id is required');
  const msgs = ids(p.message_id) ?? [];
  for (const e of queue(ctx, connectorOf(p)))
    if (e.PROCESS_ID === pid && msgs.includes(e.MESSAGE_ID)) {
      e.ERROR = '1';
      e.PROCESS_ID = '';
      e.reservedAt = undefined;
    }
  return { result: true };
}

function offlineList(p: Params, ctx: CallCtx): MethodResult {
  requireAdmin(ctx);
  const rows = select(queue(ctx, connectorOf(p)), p, LIST_FIELDS, { ID: 'ASC' });
  const page = paginate(rows, p.start);
  return { ...page, result: (page.result as BOfflineEvent[]).map((e) => ({ ...shown(e), PROCESS_ID: e.PROCESS_ID, ERROR: e.ERROR })) };
}

export function registerEvents(reg: Registry): void {
  // event.bind (§9): unknown event → 400 ERROR_EVENT_NOT_FOUND; offline, or for another user, admin only. A
  // repeated (event, handler) pair answers true without a second binding (the portal's answer is UNVERIFIED).
  reg.set('event.bind', {
    scope: null,
    appOnly: true,
    handler: (p, ctx) => {
      const event = String(p.event ?? p.EVENT ?? '').toUpperCase();
      if (!KNOWN_EVENTS.has(event)) throw new BxError(400, 'ERROR_EVENT_NOT_FOUND', 'Event not found');
      const offline = String(p.event_type ?? 'online').toLowerCase() === 'offline';
      const authType = String(p.auth_type ?? '0');
      if ((offline || (authType !== '0' && authType !== String(ctx.auth.userId))) && !isAdmin(ctx))
        throw errors.accessDenied('Access denied! Available only for administrators');
      const handler = offline ? '' : p.handler === undefined ? '' : String(p.handler);
      if (!offline) {
        let u: URL | undefined;
        try {
          u = new URL(handler);
        } catch {
          u = undefined;
        }
        if (!u || !/^https?:$/.test(u.protocol)) throw errors.argument('Handler URL is required.');
      }
      const state = ctx.portal.state;
      const clientId = ctx.auth.clientId!;
      const connector = offline ? connectorOf(p) : undefined;
      const dup = state.eventBindings.find(
        (b) =>
          b.clientId === clientId && b.event === event && b.handler === handler && b.offline === (offline ? 1 : 0) && (b.connector ?? '') === (connector ?? ''),
      );
      const options = isObject(p.options) ? p.options : undefined;
      if (!dup)
        state.eventBindings.push({ id: nextId(state, 'event'), event, handler, auth_type: authType, offline: offline ? 1 : 0, clientId, connector, options });
      return { result: true };
    },
  });

  reg.set('event.get', {
    scope: null,
    appOnly: true,
    handler: (_p, ctx) => ({
      result: ctx.portal.state.eventBindings
        .filter((b) => b.clientId === ctx.auth.clientId)
        .map((b) => ({ event: b.event, handler: b.handler, auth_type: b.auth_type, offline: b.offline })),
    }),
  });

  reg.set('event.unbind', {
    scope: null,
    appOnly: true,
    handler: (p, ctx) => {
      const event = String(p.event ?? p.EVENT ?? '').toUpperCase();
      const handler = p.handler === undefined ? undefined : String(p.handler);
      const offline = p.event_type === undefined ? undefined : String(p.event_type).toLowerCase() === 'offline' ? 1 : 0;
      if (offline === 1) requireAdmin(ctx);
      const state = ctx.portal.state;
      const before = state.eventBindings.length;
      state.eventBindings = state.eventBindings.filter(
        (b) =>
          !(
            b.clientId === ctx.auth.clientId &&
            b.event === event &&
            (handler === undefined || b.handler === handler) &&
            (offline === undefined || b.offline === offline)
          ),
      );
      return { result: { count: before - state.eventBindings.length } };
    },
  });

  reg.set('event.offline.get', { scope: null, appOnly: true, handler: offlineGet });
  reg.set('event.offline.clear', { scope: null, appOnly: true, handler: offlineClear });
  reg.set('event.offline.error', { scope: null, appOnly: true, handler: offlineError });
  reg.set('event.offline.list', { scope: null, appOnly: true, handler: offlineList });
}
