/**
 * `POST /api/v4/calls` (§12; the calls fact sheet, events-calls-bulk-hosting.md 3.1): a JSON array of calls,
 * each with `direction` (inbound|outbound), `duration`, `source` and `phone` required. A call is matched on
 * the last 10 digits of a contact's, then a company's, phone; it is filed on the record's one open lead when
 * it has exactly one, else on the record's card, as a `call_in`/`call_out` note (its id is the call's id).
 * A call nobody's number matches is dropped: the answer is 200 and the call is simply not in it (whether
 * Kommo reports it in an `errors` field is open, fact sheet 6: the strictest reading, a silent drop). A
 * repeated `uniq` is dropped the same way (the docs do not say Kommo dedupes: nothing is added twice, and a
 * client that re-sends blindly learns nothing). `call_responsible` as a number is a user id (it must exist);
 * as a string it is a user's *name*, and a name no user has leaves the call with the token's user.
 */
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, requestIdOf, selfLink } from './context.js';
import { onlyParams } from './list.js';
import { E, type FieldError, hal, Validation } from './responses.js';
import { leadsOf } from './store.js';
import type { EntityType, KCustomFieldValue, KommoState } from './types.js';
import { BodyReader } from './write.js';

export interface LoggedCallRecord {
  id: number;
  uniq: string | null;
  direction: 'inbound' | 'outbound';
  entity_type: EntityType;
  entity_id: number;
  responsible_user_id: number;
}

interface CallsStore {
  calls: LoggedCallRecord[];
  byUniq: Map<string, number>;
}

const stores = new WeakMap<KommoState, CallsStore>();

/** The calls this account logged (tests read it; Kommo has no GET for calls, fact sheet 3.1). */
export function callsOf(s: KommoState): CallsStore {
  let c = stores.get(s);
  if (!c) stores.set(s, (c = { calls: [], byUniq: new Map() }));
  return c;
}

const FIELDS = [
  'direction',
  'uniq',
  'duration',
  'source',
  'link',
  'phone',
  'call_result',
  'call_status',
  'call_responsible',
  'responsible_user_id',
  'created_by',
  'updated_by',
  'created_at',
  'updated_at',
  'request_id',
];

const last10 = (v: string) => v.replace(/\D+/g, '').slice(-10);

function hasPhone(cfv: KCustomFieldValue[] | null, tail: string): boolean {
  return (cfv ?? []).some((f) => f.field_code === 'PHONE' && f.values.some((v) => last10(String(v.value)) === tail));
}

/** Where Kommo files a call for this number, or undefined when nobody has it. */
function matchCall(s: KommoState, phone: string): { entity: EntityType; id: number } | undefined {
  const tail = last10(phone);
  if (tail.length < 7) return undefined;
  const contact = [...s.contacts.values()].find((c) => hasPhone(c.custom_fields_values, tail));
  const company = contact ? undefined : [...s.companies.values()].find((c) => hasPhone(c.custom_fields_values, tail));
  const owner = contact ? { entity: 'contacts' as const, id: contact.id } : company ? { entity: 'companies' as const, id: company.id } : undefined;
  if (!owner) return undefined;
  const open = leadsOf(s, owner.entity, owner.id).filter((id) => {
    const l = s.leads.get(id);
    return l && !l.is_deleted && l.status_id !== 142 && l.status_id !== 143;
  });
  return open.length === 1 ? { entity: 'leads', id: open[0]! } : owner;
}

export function addCalls(ctx: Ctx): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    if (!isObject(item)) {
      v.add(requestIdOf(item, i), [E.type('', 'object')]);
      return undefined;
    }
    const r = new BodyReader(item, '', errs, FIELDS);
    for (const k of ['direction', 'duration', 'source', 'phone']) if (!r.has(k)) errs.push(E.blank(k));
    const direction = r.str('direction');
    if (direction !== undefined && direction !== 'inbound' && direction !== 'outbound') errs.push(E.choice('direction'));
    const duration = r.int('duration', { min: 0 });
    const source = r.str('source');
    if (source !== undefined && !source.trim()) errs.push(E.blank('source'));
    const phone = r.str('phone');
    if (phone !== undefined && !phone.trim()) errs.push(E.blank('phone'));
    const status = r.int('call_status');
    if (typeof status === 'number' && (status < 1 || status > 8)) errs.push(E.choice('call_status'));
    const uniq = r.str('uniq');
    const link = r.str('link');
    const result = r.str('call_result');
    const responsibleId = r.user(ctx, 'responsible_user_id');
    r.user(ctx, 'created_by', true);
    r.user(ctx, 'updated_by', true);
    const createdAt = r.int('created_at', { min: 0 });
    r.int('updated_at', { min: 0 });
    r.str('request_id');
    // A number is a user id; a string is a user's name (fact sheet 3.1), even one made of digits.
    let callResponsible: number | undefined;
    const cr = item.call_responsible;
    if (typeof cr === 'number') callResponsible = r.user(ctx, 'call_responsible');
    else if (typeof cr === 'string') callResponsible = [...ctx.state.users.values()].find((u) => u.name === cr)?.id ?? ctx.userId;
    else if (cr !== undefined) errs.push(E.type('call_responsible', 'int'));
    v.add(requestIdOf(item, i), errs);
    if (errs.length) return undefined;
    return {
      direction: direction as 'inbound' | 'outbound',
      duration: duration as number,
      source: source!,
      phone: phone!,
      uniq: uniq ?? null,
      link,
      result,
      status: typeof status === 'number' ? status : undefined,
      responsible: callResponsible ?? responsibleId ?? ctx.userId,
      at: typeof createdAt === 'number' ? createdAt : ctx.now,
    };
  });
  v.throwIfFailed();
  const store = callsOf(ctx.state);
  const out: unknown[] = [];
  plans.forEach((p, i) => {
    if (!p) return;
    if (p.uniq && store.byUniq.has(p.uniq)) return; // already logged: not added again
    const target = matchCall(ctx.state, p.phone);
    if (!target) return; // nobody has the number: dropped
    const id = ctx.state.nextId.note++;
    const noteType = p.direction === 'inbound' ? 'call_in' : 'call_out';
    ctx.state.notes[target.entity].set(id, {
      id,
      entity_id: target.id,
      created_by: ctx.userId,
      updated_by: ctx.userId,
      created_at: p.at,
      updated_at: ctx.now,
      responsible_user_id: p.responsible,
      group_id: ctx.state.users.get(p.responsible)?.rights.group_id ?? 0,
      note_type: noteType,
      params: {
        uniq: p.uniq ?? '',
        duration: p.duration,
        source: p.source,
        phone: p.phone,
        ...(p.link !== undefined ? { link: p.link } : {}),
        ...(p.result !== undefined ? { call_result: p.result } : {}),
        ...(p.status !== undefined ? { call_status: p.status } : {}),
      },
      account_id: ctx.state.account.id,
    });
    if (p.uniq) store.byUniq.set(p.uniq, id);
    store.calls.push({ id, uniq: p.uniq, direction: p.direction, entity_type: target.entity, entity_id: target.id, responsible_user_id: p.responsible });
    out.push({
      id,
      entity_id: target.id,
      entity_type: target.entity.replace(/s$/, '').replace(/ie$/, 'y'),
      request_id: requestIdOf(items[i], i),
      _embedded: { entity: { id: target.id, _links: selfLink(ctx, `/api/v4/${target.entity}/${target.id}`) } },
    });
  });
  return hal({ _total_items: out.length, _embedded: { calls: out } });
}
