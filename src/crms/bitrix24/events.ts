/**
 * Bitrix24 events in: outbound webhooks and application event handlers (fact sheet §9), received at
 * `POST /hooks/bitrix24` by the general receiver (src/transports/hooks/), and the offline queue pulled by
 * events-offline.ts. A delivery is a form-urlencoded POST with PHP-bracket keys (`event=ONCRMDEALUPDATE`,
 * `data[FIELDS][ID]=42`, `ts=…`, `auth[member_id]`, `auth[application_token]`, fixtures
 * event.ONCRMLEADADD.form.txt and event.ONCRMCONTACTADD.form.txt). There is no signature: the only check is
 * `auth[application_token]`, the token the outgoing webhook's settings show (BITRIX_OUTBOUND_TOKEN) or one a
 * binding stored (hashed), compared in constant time over hashes, never logged; a mismatch is a 403 and nothing
 * is stored. An event carries ids only (§9: "`data` usually holds only `FIELDS[ID]`"): entity, id, action and
 * `ts`; a stage move is not in it, so it stays `updated` and the change feed may look the record up.
 * Bitrix24 sends each online event once, with no retry (§9 "Delivery semantics"): an event missed while this
 * service is down is lost unless offline events are bound too.
 */
import { eventId, type CrmEvent, type EventAction, type EventEntity, type EventSource } from '../../domain/events.js';
import { hashSecret, secretMatches } from '../../events/hook-secrets.js';
import type { HookDelivery, HookSecrets, HookVerdict } from '../events-contract.js';
import { BITRIX24_KIND } from './capabilities.js';
import type { BitrixConnection } from './connection.js';

/** The receiver's path: `/hooks/bitrix24`. */
export const BITRIX_HOOK_PATH = BITRIX24_KIND;

/** The events the receiver maps and `events bind` registers (§9 "CRM event names"). */
export const BITRIX_EVENT_NAMES = [
  ...['LEAD', 'DEAL', 'CONTACT', 'COMPANY'].flatMap((e) => ['ADD', 'UPDATE', 'DELETE'].map((a) => `ONCRM${e}${a}`)),
  'ONTASKADD',
  'ONTASKUPDATE',
  'ONTASKDELETE',
] as const;

const ACTIONS: Record<string, EventAction> = { ADD: 'added', UPDATE: 'updated', DELETE: 'deleted' };
const ENTITIES: Record<string, EventEntity> = { LEAD: 'lead', DEAL: 'deal', CONTACT: 'contact', COMPANY: 'company' };

/** What an event name says: the record kind and what happened; undefined for an event that is not about a record. */
export function eventKind(name: string): { entity: EventEntity; action: EventAction; activity?: true } | undefined {
  const up = name.toUpperCase();
  let m = /^ONCRM(LEAD|DEAL|CONTACT|COMPANY)(ADD|UPDATE|DELETE)$/.exec(up);
  if (m) return { entity: ENTITIES[m[1]!]!, action: ACTIONS[m[2]!]! };
  // A deal moved to another pipeline: a change of the deal (its stage is not in the event).
  if (up === 'ONCRMDEALMOVETOCATEGORY') return { entity: 'deal', action: 'updated' };
  m = /^ONTASK(ADD|UPDATE|DELETE)$/.exec(up);
  if (m) return { entity: 'task', action: ACTIONS[m[1]!]! };
  // CRM activities (to-dos, calls, e-mails) have no entity of their own in the event type: told apart by data.kind.
  m = /^ONCRMACTIVITY(ADD|UPDATE|DELETE)$/.exec(up);
  if (m) return { entity: 'task', action: ACTIONS[m[1]!]!, activity: true };
  return undefined;
}

/** The record id an event's `data` names: `FIELDS[ID]`, tasks `FIELDS_AFTER[ID]` (`FIELDS_BEFORE[ID]` on delete). */
export function recordIdOf(data: (path: readonly string[]) => string | undefined): string | undefined {
  for (const path of [
    ['FIELDS', 'ID'],
    ['FIELDS_AFTER', 'ID'],
    ['FIELDS_BEFORE', 'ID'],
  ]) {
    const v = data(path)?.trim();
    if (v && /^\d{1,20}$/.test(v)) return v;
  }
  return undefined;
}

export interface EventOrigin {
  connection: string;
  /** The portal (`member_id`, or its address when the queue does not say): part of every event id. */
  portal: string;
  occurredAt: string | null;
  receivedAt: string;
  source: EventSource;
  byUserId: string | null;
  /** What tells two changes of one record apart: `ts` of a delivery, TIMESTAMP_X of a queued record. */
  stamp: string | undefined;
}

/** One CrmEvent for a record event (ids only), or undefined when the event is not about a record. */
export function toEvent(name: string, id: string, o: EventOrigin): CrmEvent | undefined {
  const k = eventKind(name);
  if (!k) return undefined;
  const up = name.toUpperCase();
  return {
    id: eventId([o.portal, up, id, o.stamp]),
    connection: o.connection,
    crm: BITRIX24_KIND,
    entity: k.entity,
    entity_id: id,
    action: k.action,
    occurred_at: o.occurredAt,
    received_at: o.receivedAt,
    source: o.source,
    by_user_id: o.byUserId,
    data: { event: up, ...(k.activity ? { kind: 'crm_activity' } : {}) },
  };
}

// ---------------------------------------------------------------- the delivery's form body

class Malformed extends Error {}

const MAX_PAIRS = 2000;
const KEY = /^[A-Za-z0-9_]{1,64}(\[[A-Za-z0-9_-]{0,64}\]){0,8}$/;

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new Malformed('a field is not valid percent-encoding');
  }
}

/** The body's fields by their full bracket key (`auth[member_id]`); strict: a key twice or a key that is no form name is malformed. */
function parseForm(body: string): Map<string, string> {
  const out = new Map<string, string>();
  const pairs = body.trim().split('&').filter(Boolean);
  if (!pairs.length) throw new Malformed('the body is empty');
  if (pairs.length > MAX_PAIRS) throw new Malformed(`the body has more than ${MAX_PAIRS} fields`);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = decode(eq < 0 ? pair : pair.slice(0, eq));
    if (!KEY.test(key)) throw new Malformed('a key is not a form field name');
    if (out.has(key)) throw new Malformed('a key is given twice');
    out.set(key, eq < 0 ? '' : decode(pair.slice(eq + 1)));
  }
  return out;
}

function isForm(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

function isoOfTs(ts: string | undefined): string | null {
  if (!ts || !/^\d{1,12}$/.test(ts)) return null;
  return new Date(Number(ts) * 1000).toISOString();
}

/**
 * The connection a token belongs to: every connection's configured token and stored hashes are compared (in
 * constant time, all of them, whatever matched first), and a binding that learnt the portal's member_id must
 * name the delivery's.
 */
async function connectionFor(token: string, memberId: string, conns: readonly BitrixConnection[], secrets: HookSecrets): Promise<BitrixConnection | undefined> {
  let found: BitrixConnection | undefined;
  for (const conn of conns) {
    const bound = await secrets(conn.name);
    const hashes = [...(conn.outboundToken ? [hashSecret(conn.outboundToken)] : []), ...bound.hashes];
    const ok = secretMatches(token, hashes) && (!bound.account_id || bound.account_id === memberId);
    if (ok && !found) found = conn;
  }
  return found;
}

export async function receiveBitrix(d: HookDelivery, conns: readonly BitrixConnection[], secrets: HookSecrets): Promise<HookVerdict> {
  if (d.rest.length) return { ok: false, status: 404, reason: 'The Bitrix24 receiver is /hooks/bitrix24 (no path after it)' };
  if (!isForm(d.contentType)) return { ok: false, status: 415, reason: 'Bitrix24 events are sent as application/x-www-form-urlencoded' };
  let f: Map<string, string>;
  try {
    f = parseForm(d.body);
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, status: 400, reason: `Malformed form body: ${err.message}` };
    throw err;
  }
  const token = f.get('auth[application_token]');
  const memberId = f.get('auth[member_id]');
  const name = f.get('event');
  if (!token || !memberId || !name) return { ok: false, status: 400, reason: 'The delivery does not carry event, auth[member_id] and auth[application_token]' };
  const conn = await connectionFor(token, memberId, conns, secrets);
  if (!conn)
    return {
      ok: false,
      status: 403,
      reason: 'The application_token does not match this server (set BITRIX_OUTBOUND_TOKEN to the token the outgoing webhook shows)',
    };
  // An event about no record (ONAPPINSTALL, user fields…) is answered 200 and stores nothing.
  if (!eventKind(name)) return { ok: true, connection: conn.name, events: [] };
  const id = recordIdOf((path) => f.get(`data${path.map((p) => `[${p}]`).join('')}`));
  if (!id) return { ok: false, status: 400, reason: `The ${name} delivery does not name its record (data[FIELDS][ID])` };
  const ts = f.get('ts');
  const user = f.get('auth[user_id]');
  const ev = toEvent(name, id, {
    connection: conn.name,
    portal: memberId,
    occurredAt: isoOfTs(ts),
    receivedAt: d.receivedAt,
    source: 'webhook',
    byUserId: user && /^\d+$/.test(user) ? user : null,
    stamp: ts,
  });
  return { ok: true, connection: conn.name, events: ev ? [ev] : [] };
}
