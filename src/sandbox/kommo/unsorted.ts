/**
 * Incoming leads ("unsorted", §12; the calls fact sheet, events-calls-bulk-hosting.md 3.1; amoCRM
 * crm_platform/unsorted-api): a system stage (status type 1, §7) where leads from calls, forms, chats and mail
 * wait. Only `sip` and `forms` can be created by API. An incoming lead holds a lead in the pipeline's
 * incoming stage; its contact is not a contact yet ("before accepting, contacts and companies linked to it
 * are unavailable"): accepting creates it, links it and moves the lead to the chosen stage (default the
 * first regular one); declining removes the lead. "There can't be 2 identical entities in the Incoming
 * leads": the amoCRM page says a repeat is an error, Kommo's that it is tagged as a duplicate; the strictest
 * is emulated, a 400 for a repeated `source_uid` or call `uniq`.
 */
import { randomBytes } from 'node:crypto';
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, jsonBody, requestIdOf, selfLink } from './context.js';
import { intFilter, onlyParams, runList, stringFilter } from './list.js';
import { E, type FieldError, hal, notFound, Validation, validationError } from './responses.js';
import type { KContact, KLead, KommoState } from './types.js';
import { BodyReader } from './write.js';

export interface UnsortedItem {
  uid: string;
  source_uid: string;
  source_name: string;
  category: 'sip' | 'forms' | 'chats' | 'mail';
  pipeline_id: number;
  created_at: number;
  updated_at: number;
  metadata: Record<string, unknown>;
  lead_id: number;
  /** The contact as sent: created only when the incoming lead is accepted. */
  contact: { name: string; phone?: string } | null;
}

const stores = new WeakMap<KommoState, Map<string, UnsortedItem>>();

/** The pending incoming leads of an account, by uid (tests and the demo data read it). */
export function unsortedOf(s: KommoState): Map<string, UnsortedItem> {
  let m = stores.get(s);
  if (!m) stores.set(s, (m = new Map()));
  return m;
}

const newUid = () => randomBytes(20).toString('hex');

function incomingStage(s: KommoState, pipelineId: number): number | undefined {
  return s.pipelines.get(pipelineId)?._embedded.statuses.find((st) => st.type === 1)?.id;
}

function firstRegularStage(s: KommoState, pipelineId: number): number | undefined {
  return s.pipelines
    .get(pipelineId)
    ?._embedded.statuses.filter((st) => st.type === 0 && st.id !== 142 && st.id !== 143)
    .sort((a, b) => a.sort - b.sort)[0]?.id;
}

function mainPipeline(s: KommoState): number {
  return ([...s.pipelines.values()].find((p) => p.is_main) ?? [...s.pipelines.values()][0])!.id;
}

/** Adds an incoming lead and its lead in the incoming stage (used by the API handler and the demo data). */
export function addUnsorted(
  s: KommoState,
  o: Omit<UnsortedItem, 'uid' | 'lead_id' | 'updated_at' | 'pipeline_id'> & { pipeline_id?: number; lead_name: string; responsible: number; uid?: string },
): UnsortedItem {
  const pipelineId = o.pipeline_id ?? mainPipeline(s);
  const leadId = s.nextId.lead++;
  const lead: KLead = {
    id: leadId,
    name: o.lead_name,
    price: 0,
    responsible_user_id: o.responsible,
    group_id: 0,
    status_id: incomingStage(s, pipelineId)!,
    pipeline_id: pipelineId,
    loss_reason_id: null,
    source_id: null,
    created_by: 0,
    updated_by: 0,
    created_at: o.created_at,
    updated_at: o.created_at,
    closed_at: null,
    closest_task_at: null,
    is_deleted: false,
    custom_fields_values: null,
    score: null,
    account_id: s.account.id,
    is_price_modified_by_robot: false,
    _embedded: { tags: [], contacts: [], companies: [] },
  };
  s.leads.set(leadId, lead);
  const item: UnsortedItem = {
    uid: o.uid ?? newUid(),
    source_uid: o.source_uid,
    source_name: o.source_name,
    category: o.category,
    pipeline_id: pipelineId,
    created_at: o.created_at,
    updated_at: o.created_at,
    metadata: o.metadata,
    lead_id: leadId,
    contact: o.contact,
  };
  unsortedOf(s).set(item.uid, item);
  return item;
}

function render(ctx: Ctx, u: UnsortedItem): Record<string, unknown> {
  const lead = ctx.state.leads.get(u.lead_id);
  return {
    uid: u.uid,
    source_uid: u.source_uid,
    source_name: u.source_name,
    category: u.category,
    pipeline_id: u.pipeline_id,
    created_at: u.created_at,
    metadata: { ...u.metadata },
    account_id: ctx.state.account.id,
    _links: selfLink(ctx, `/api/v4/leads/unsorted/${u.uid}`),
    _embedded: { leads: lead ? [{ id: lead.id, name: lead.name, price: lead.price }] : [], contacts: [], companies: [] },
  };
}

/** `GET /api/v4/leads/unsorted`: `filter[uid]` (one or many), `filter[category][]`, `filter[pipeline_id]`, order, paging ≤ 250. */
export function listUnsorted(ctx: Ctx): EmuResponse {
  const spec = {
    key: 'unsorted',
    filters: {
      uid: stringFilter<UnsortedItem>((u) => u.uid),
      category: stringFilter<UnsortedItem>((u) => u.category),
      pipeline_id: intFilter<UnsortedItem>((u) => u.pipeline_id),
    },
    order: { created_at: (u: UnsortedItem) => u.created_at, updated_at: (u: UnsortedItem) => u.updated_at },
    totalItems: true,
  };
  return runList(ctx, '/api/v4/leads/unsorted', unsortedOf(ctx.state).values(), spec, (u) => render(ctx, u));
}

const SIP_META_REQUIRED = ['uniq', 'duration', 'service_code', 'phone', 'called_at', 'from'];
const SIP_META = [...SIP_META_REQUIRED, 'link', 'is_call_event_needed'];

/** `POST /api/v4/leads/unsorted/sip`: incoming call leads (source_uid, source_name and the call metadata required). */
export function addSip(ctx: Ctx): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const pending = [...unsortedOf(ctx.state).values()];
  const seen = new Set<string>();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    if (!isObject(item)) {
      v.add(requestIdOf(item, i), [E.type('', 'object')]);
      return undefined;
    }
    const r = new BodyReader(item, '', errs, ['source_uid', 'source_name', 'created_at', 'pipeline_id', 'metadata', '_embedded', 'request_id']);
    for (const k of ['source_uid', 'source_name', 'metadata']) if (!r.has(k)) errs.push(E.blank(k));
    const sourceUid = r.str('source_uid');
    const sourceName = r.str('source_name');
    const createdAt = r.int('created_at', { min: 0 });
    const pipelineId = r.int('pipeline_id');
    if (typeof pipelineId === 'number' && !ctx.state.pipelines.has(pipelineId)) errs.push(E.choice('pipeline_id'));
    r.str('request_id');
    const meta = r.object('metadata');
    if (meta) {
      const m = new BodyReader(meta, 'metadata.', errs, SIP_META);
      for (const k of SIP_META_REQUIRED) if (!m.has(k)) errs.push(E.blank(m.path(k)));
      m.int('duration', { min: 0 });
      m.int('called_at', { min: 0 });
      for (const k of ['uniq', 'service_code', 'phone', 'link']) m.str(k);
      if (meta.from !== undefined && typeof meta.from !== 'string' && typeof meta.from !== 'number') errs.push(E.type('metadata.from', 'string'));
      m.bool('is_call_event_needed');
    }
    const emb = r.object('_embedded');
    let leadName = '';
    let contact: UnsortedItem['contact'] = null;
    if (emb) {
      const e = new BodyReader(emb, '_embedded.', errs, ['leads', 'contacts', 'companies']);
      const leads = e.array('leads') ?? [];
      const contacts = e.array('contacts') ?? [];
      if (leads.length > 1) errs.push(E.choice('_embedded.leads'));
      if (contacts.length > 1) errs.push(E.choice('_embedded.contacts'));
      const l0 = leads[0];
      if (isObject(l0) && typeof l0.name === 'string') leadName = l0.name;
      const c0 = contacts[0];
      if (isObject(c0)) {
        const cfv = Array.isArray(c0.custom_fields_values) ? c0.custom_fields_values : [];
        const phoneField = cfv.find((f) => isObject(f) && f.field_code === 'PHONE');
        const phone =
          isObject(phoneField) && Array.isArray(phoneField.values) && isObject(phoneField.values[0]) ? String(phoneField.values[0].value) : undefined;
        contact = { name: typeof c0.name === 'string' ? c0.name : '', ...(phone ? { phone } : {}) };
      }
    }
    const uniq = meta && typeof meta.uniq === 'string' ? meta.uniq : undefined;
    const dup = (x: string | undefined, key: string) =>
      x !== undefined && (seen.has(`${key}:${x}`) || pending.some((p) => (key === 'u' ? p.metadata.uniq : p.source_uid) === x));
    if (dup(sourceUid, 's')) errs.push({ code: 'Duplicate', path: 'source_uid', detail: 'This incoming lead already exists.' });
    if (dup(uniq, 'u')) errs.push({ code: 'Duplicate', path: 'metadata.uniq', detail: 'This incoming lead already exists.' });
    if (sourceUid) seen.add(`s:${sourceUid}`);
    if (uniq) seen.add(`u:${uniq}`);
    v.add(requestIdOf(item, i), errs);
    if (errs.length) return undefined;
    return { sourceUid: sourceUid!, sourceName: sourceName!, createdAt, pipelineId, meta: meta!, leadName, contact };
  });
  v.throwIfFailed();
  const out = plans.map((p, i) => {
    const u = addUnsorted(ctx.state, {
      source_uid: p!.sourceUid,
      source_name: p!.sourceName,
      category: 'sip',
      created_at: typeof p!.createdAt === 'number' ? p!.createdAt : ctx.now,
      ...(typeof p!.pipelineId === 'number' ? { pipeline_id: p!.pipelineId } : {}),
      metadata: { ...p!.meta },
      contact: p!.contact,
      lead_name: p!.leadName,
      responsible: ctx.userId,
    });
    return {
      uid: u.uid,
      account_id: ctx.state.account.id,
      request_id: requestIdOf(items[i], i),
      _embedded: { leads: [{ id: u.lead_id }], contacts: [], companies: [] },
    };
  });
  return hal({ _total_items: out.length, _embedded: { unsorted: out } });
}

function mustGet(ctx: Ctx, uid: string): UnsortedItem {
  const u = unsortedOf(ctx.state).get(uid);
  if (!u) throw notFound('Unsorted not found');
  return u;
}

/** Creates the incoming lead's contact (a contact only now), linked to its lead. */
function materialiseContact(ctx: Ctx, u: UnsortedItem, lead: KLead, responsible: number): number | undefined {
  if (!u.contact) return undefined;
  const s = ctx.state;
  const id = s.nextId.contact++;
  const phoneDef = [...s.customFields.contacts.values()].find((f) => f.code === 'PHONE');
  const c: KContact = {
    id,
    name: u.contact.name,
    first_name: u.contact.name,
    last_name: '',
    responsible_user_id: responsible,
    group_id: 0,
    created_by: ctx.userId,
    updated_by: ctx.userId,
    created_at: ctx.now,
    updated_at: ctx.now,
    closest_task_at: null,
    custom_fields_values:
      u.contact.phone && phoneDef
        ? [
            {
              field_id: phoneDef.id,
              field_name: phoneDef.name,
              field_code: 'PHONE',
              field_type: phoneDef.type,
              values: [{ value: u.contact.phone, enum_code: 'WORK' }],
            },
          ]
        : null,
    account_id: s.account.id,
    _embedded: { tags: [], companies: [] },
  } as KContact;
  s.contacts.set(id, c);
  lead._embedded.contacts.push({ id, is_main: true } as (typeof lead._embedded.contacts)[number]);
  return id;
}

/** `POST /api/v4/leads/unsorted/{uid}/accept {user_id?, status_id?}`. */
export function acceptUnsorted(ctx: Ctx, uid: string): EmuResponse {
  onlyParams(ctx, []);
  const u = mustGet(ctx, uid);
  const body = ctx.req.rawBody.trim() ? jsonBody(ctx) : {};
  const errs: FieldError[] = [];
  if (!isObject(body)) throw validationError([{ request_id: '0', errors: [E.type('', 'object')] }]);
  const r = new BodyReader(body, '', errs, ['user_id', 'status_id']);
  const user = r.user(ctx, 'user_id');
  const status = r.int('status_id');
  const stages = ctx.state.pipelines.get(u.pipeline_id)?._embedded.statuses ?? [];
  if (typeof status === 'number' && !stages.some((st) => st.id === status && st.type === 0)) errs.push(E.choice('status_id'));
  if (errs.length) throw validationError([{ request_id: '0', errors: errs }]);
  const lead = ctx.state.leads.get(u.lead_id)!;
  const responsible = user ?? ctx.userId;
  lead.status_id = typeof status === 'number' ? status : firstRegularStage(ctx.state, u.pipeline_id)!;
  lead.responsible_user_id = responsible;
  lead.updated_at = ctx.now;
  lead.updated_by = ctx.userId;
  if (lead.status_id === 142 || lead.status_id === 143) lead.closed_at = ctx.now;
  const contactId = materialiseContact(ctx, u, lead, responsible);
  unsortedOf(ctx.state).delete(uid);
  return hal({
    uid,
    account_id: ctx.state.account.id,
    pipeline_id: u.pipeline_id,
    category: u.category,
    created_at: u.created_at,
    _embedded: {
      leads: [{ id: lead.id, name: lead.name, status_id: lead.status_id }],
      contacts: contactId ? [{ id: contactId, name: ctx.state.contacts.get(contactId)!.name }] : [],
      companies: [],
    },
  });
}

/** `DELETE /api/v4/leads/unsorted/{uid}/decline {user_id?}`: the incoming lead and its lead are removed. */
export function declineUnsorted(ctx: Ctx, uid: string): EmuResponse {
  onlyParams(ctx, []);
  const u = mustGet(ctx, uid);
  const body = ctx.req.rawBody.trim() ? jsonBody(ctx) : {};
  const errs: FieldError[] = [];
  if (!isObject(body)) throw validationError([{ request_id: '0', errors: [E.type('', 'object')] }]);
  new BodyReader(body, '', errs, ['user_id']).user(ctx, 'user_id');
  if (errs.length) throw validationError([{ request_id: '0', errors: errs }]);
  ctx.state.leads.delete(u.lead_id);
  unsortedOf(ctx.state).delete(uid);
  return hal({ uid, account_id: ctx.state.account.id, _embedded: { leads: [{ id: u.lead_id }], contacts: [], companies: [] } });
}
