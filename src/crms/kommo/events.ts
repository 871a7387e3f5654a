/**
 * Receiving Kommo's account webhooks (fact sheet §10.2): `POST /hooks/kommo/<secret>` with a form body of
 * PHP-bracket keys, several items per delivery, **no signature**. So the path carries a secret (at least 32
 * characters: KOMMO_WEBHOOK_SECRET, or the one `crm-mcp events bind` generated, whose hash the store keeps),
 * compared in constant time over hashes and never logged, and `account[id]` / `account[subdomain]` must be the
 * connection's account. Each item becomes one CrmEvent whose id is derived from what identifies the change (the
 * account, the record, the action, its modification time, the stage pair…), so a redelivery gets the same id
 * and the event log keeps it once. No request to Kommo here: it wants an answer within 2 s (§10.2).
 */
import { eventId, type CrmEvent, type EventAction, type EventEntity } from '../../domain/events.js';
import { hashSecret as hashHex, secretMatches } from '../../events/hook-secrets.js';
import type { HookDelivery, HookSecrets, HookVerdict } from '../events-contract.js';
import { describeToken } from './auth.js';
import type { KommoConnection } from './connection.js';
import { group, items, MalformedForm, parsePhpForm, str, type FormGroup } from './webhook-form.js';

/** The receiver's path: `/hooks/kommo/<secret>`. */
export const KOMMO_HOOK_PATH = 'kommo';

const ENTITY_KEYS: Record<string, EventEntity> = {
  leads: 'lead',
  contacts: 'contact',
  companies: 'company',
  customers: 'lead',
  task: 'task',
  tasks: 'task',
  unsorted: 'incoming_lead',
};
const ACTIONS: Record<string, EventAction> = {
  add: 'added',
  update: 'updated',
  delete: 'deleted',
  restore: 'restored',
  status: 'stage_changed',
  responsible: 'responsible_changed',
};

/** The account's subdomain as its address says it (`acme.kommo.com`, `acme.amocrm.ru`), else undefined (an emulator's IP). */
export function subdomainOf(baseUrl: string): string | undefined {
  const host = new URL(baseUrl).hostname.toLowerCase();
  const m = /^([a-z0-9][a-z0-9-]*)\.(kommo\.com|amocrm\.(ru|com))$/.exec(host);
  return m?.[1];
}

const num = (v: string | undefined): number | null => (v !== undefined && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : null);

/** Kommo sends unix seconds as strings; task dates partly as `YYYY-MM-DD HH:MM:SS` (no zone: not guessed). */
function isoOf(v: string | undefined): string | null {
  const n = num(v);
  return n !== null && n > 0 ? new Date(n * 1000).toISOString() : null;
}

const idOf = (v: string | undefined): string | null => (v !== undefined && /^[0-9A-Za-z_-]{1,64}$/.test(v) ? v : null);

function data(item: FormGroup, keys: readonly string[]): Record<string, string | number | null> | undefined {
  const out: Record<string, string | number | null> = {};
  for (const k of keys) {
    const v = str(item, k);
    if (v === undefined) continue;
    out[k] = k === 'price' ? num(v) : v.slice(0, 500);
  }
  return Object.keys(out).length ? out : undefined;
}

interface Base {
  connection: string;
  account: string;
  receivedAt: string;
}

function recordEvent(b: Base, entity: EventEntity, action: EventAction, item: FormGroup): CrmEvent | undefined {
  const id = idOf(entity === 'incoming_lead' ? (str(item, 'uid') ?? str(item, 'id')) : str(item, 'id'));
  if (!id) return undefined;
  const modified = str(item, 'last_modified') ?? str(item, 'updated_at');
  const created = str(item, 'date_create') ?? str(item, 'created_at');
  const e: CrmEvent = {
    id: '',
    connection: b.connection,
    crm: KOMMO_HOOK_PATH,
    entity,
    entity_id: id,
    action,
    occurred_at: isoOf(action === 'added' ? (created ?? modified) : (modified ?? (action === 'deleted' ? undefined : created))),
    received_at: b.receivedAt,
    source: 'webhook',
    by_user_id: idOf(
      action === 'added' ? (str(item, 'created_user_id') ?? str(item, 'created_by')) : (str(item, 'modified_user_id') ?? str(item, 'updated_by')),
    ),
  };
  const parts: Array<string | null | undefined> = [b.account, entity, id, action, modified ?? created];
  if (action === 'stage_changed') {
    const to = idOf(str(item, 'status_id'));
    if (!to) return undefined;
    const pipeline = idOf(str(item, 'pipeline_id'));
    const from = idOf(str(item, 'old_status_id'));
    e.stage = {
      from: from ? { pipeline_id: idOf(str(item, 'old_pipeline_id')) ?? pipeline, stage_id: from } : null,
      to: { pipeline_id: pipeline, stage_id: to },
    };
    parts.push(from, to, str(item, 'old_pipeline_id'), pipeline);
  }
  if (action === 'responsible_changed') {
    const to = idOf(str(item, 'responsible_user_id'));
    if (!to) return undefined;
    e.responsible = { from: idOf(str(item, 'old_responsible_user_id')), to };
    parts.push(e.responsible.from, to);
  }
  if (entity === 'task') {
    const parentType = str(item, 'element_type');
    const parentId = idOf(str(item, 'element_id'));
    // amoCRM's element types: 1 contact, 2 lead, 3 company (§10.2 task items).
    const parent = parentType === '1' ? 'contact' : parentType === '2' ? 'lead' : parentType === '3' ? 'company' : undefined;
    if (parent && parentId) e.parent = { entity: parent, id: parentId };
  }
  const d = data(
    item,
    entity === 'task' ? ['text', 'complete_till', 'status'] : entity === 'incoming_lead' ? ['category', 'action', 'lead_id'] : ['name', 'price'],
  );
  if (d) e.data = d;
  e.id = eventId(parts);
  return e;
}

/** `leads[note][0][note][…]`: the note on a record (§10.2), an event about the note with its record as parent. */
function noteEvent(b: Base, parent: EventEntity, item: FormGroup): CrmEvent | undefined {
  const n = group(item, 'note') ?? item;
  const id = idOf(str(n, 'id'));
  const parentId = idOf(str(n, 'element_id') ?? str(item, 'element_id'));
  if (!id) return undefined;
  const at = str(n, 'date_create') ?? str(n, 'created_at') ?? str(n, 'last_modified');
  const e: CrmEvent = {
    id: eventId([b.account, 'note', id, 'added']),
    connection: b.connection,
    crm: KOMMO_HOOK_PATH,
    entity: 'note',
    entity_id: id,
    action: 'added',
    occurred_at: isoOf(at),
    received_at: b.receivedAt,
    source: 'webhook',
    by_user_id: idOf(str(n, 'created_by') ?? str(n, 'main_user_id')),
  };
  if (parentId) e.parent = { entity: parent, id: parentId };
  const d = data(n, ['text', 'note_type']);
  if (d) e.data = d;
  return e;
}

/** Every item of a parsed delivery, as events (an item without an id is skipped, not guessed). */
export function kommoEvents(form: FormGroup, b: Base): CrmEvent[] {
  const out: CrmEvent[] = [];
  for (const [key, entityGroup] of Object.entries(form)) {
    const base = ENTITY_KEYS[key];
    if (!base || typeof entityGroup === 'string') continue;
    for (const [actionKey, list] of Object.entries(entityGroup)) {
      for (const item of items(list)) {
        // §10.2: companies come as contacts[…] with "type":"company".
        const entity = base === 'contact' && str(item, 'type') === 'company' ? 'company' : base;
        if (actionKey === 'note') {
          const e = noteEvent(b, entity, item);
          if (e) out.push(e);
          continue;
        }
        const action = ACTIONS[actionKey];
        if (!action) continue;
        const e = recordEvent(b, entity, action, item);
        if (e) out.push(e);
      }
    }
  }
  return out;
}

const isForm = (ct: string | undefined) => (ct ?? '').split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded';

/** Which connection the path secret is for (each connection's configured secret and stored hashes; every one compared). */
async function connectionFor(
  secret: string,
  conns: readonly KommoConnection[],
  secrets: HookSecrets,
): Promise<{ conn: KommoConnection; accountId?: string } | undefined> {
  let found: { conn: KommoConnection; accountId?: string } | undefined;
  for (const conn of conns) {
    const bound = await secrets(conn.name);
    const configured = conn.webhookSecret ? [hashHex(conn.webhookSecret)] : [];
    if (secretMatches(secret, [...configured, ...bound.hashes]) && !found) found = { conn, ...(bound.account_id ? { accountId: bound.account_id } : {}) };
  }
  return found;
}

export async function receiveKommo(d: HookDelivery, conns: readonly KommoConnection[], secrets: HookSecrets): Promise<HookVerdict> {
  const secret = d.rest.length === 1 ? d.rest[0]! : '';
  const match = secret ? await connectionFor(secret, conns, secrets) : undefined;
  if (!match)
    return { ok: false, status: 403, reason: 'Unknown webhook address: the path secret does not match this server (crm-mcp events bind prints the address)' };
  if (!isForm(d.contentType)) return { ok: false, status: 415, reason: 'Kommo webhooks are sent as application/x-www-form-urlencoded' };
  let form: FormGroup;
  try {
    form = parsePhpForm(d.body);
  } catch (err) {
    if (err instanceof MalformedForm) return { ok: false, status: 400, reason: `Malformed form body: ${err.message}` };
    throw err;
  }
  const account = group(form, 'account');
  const gotId = str(account, 'id');
  const gotSub = str(account, 'subdomain');
  if (!gotId || !gotSub) return { ok: false, status: 400, reason: 'The delivery does not name its account (account[id], account[subdomain])' };
  const { conn } = match;
  const wantId = match.accountId ?? (await describeToken(conn.accessToken)).account_id?.toString();
  const wantSub = subdomainOf(conn.baseUrl);
  if (!wantId && !wantSub) return { ok: false, status: 403, reason: 'The account of this connection is not known yet: run crm-mcp events bind' };
  if ((wantId && gotId !== wantId) || (wantSub && gotSub.toLowerCase() !== wantSub))
    return { ok: false, status: 403, reason: 'The delivery is from another account than this connection' };
  return { ok: true, connection: conn.name, events: kommoEvents(form, { connection: conn.name, account: gotId, receivedAt: d.receivedAt }) };
}
