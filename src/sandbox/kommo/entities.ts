/** Leads, contacts and companies: list, get, create, update, and `/leads/complex` (fact sheet §5, §6). */
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, jsonBody, requestIdOf, selfLink } from './context.js';
import { type Mode, type Plan, readLead, readParty } from './entity-write.js';
import { COMPANY_WITH, CONTACT_WITH, LEAD_WITH, companySpec, contactSpec, leadSpec } from './filters.js';
import { onlyParams, runList, withSet } from './list.js';
import { createdRef, renderCompany, renderContact, renderLead } from './render.js';
import { leadsOf } from './store.js';
import { E, type FieldError, HAL, hal, noContent, Validation, validationError } from './responses.js';
import { type EntityType, entityMap, type KCompany, type KContact, type KLead } from './types.js';

export function listEntities(ctx: Ctx, entity: EntityType): EmuResponse {
  const s = ctx.state;
  const path = `/api/v4/${entity}`;
  // Without `order[...]` the order is undocumented: id ascending or descending, per `behaviour.defaultOrder`.
  const ordered = <T extends { id: number }>(items: Iterable<T>): T[] => {
    const all = [...items].sort((a, b) => a.id - b.id);
    return ctx.params.order === undefined && ctx.behaviour.defaultOrder === 'id_desc' ? all.reverse() : all;
  };
  if (entity === 'leads') {
    const w = withSet(ctx, LEAD_WITH);
    // No deletion is emulated (DELETE → 405), so `with=only_deleted` finds nothing → 204 (§4).
    const items = w.has('only_deleted') ? [] : ordered(s.leads.values());
    return runList(ctx, path, items, leadSpec(s, ctx.behaviour.statusFilter, ctx.behaviour.phoneQuery), (l) => renderLead(ctx, l, w));
  }
  if (entity === 'contacts') {
    const w = withSet(ctx, CONTACT_WITH);
    return runList(ctx, path, ordered(s.contacts.values()), contactSpec(s, ctx.behaviour.phoneQuery), (c) => renderContact(ctx, c, w));
  }
  const w = withSet(ctx, COMPANY_WITH);
  return runList(ctx, path, ordered(s.companies.values()), companySpec(s, ctx.behaviour.phoneQuery), (c) => renderCompany(ctx, c, w));
}

/** A missing id answers 204: the fact sheet (§4) leaves 204 vs 404 UNVERIFIED; older clients expect 204. */
export function getEntity(ctx: Ctx, entity: EntityType, id: number): EmuResponse {
  onlyParams(ctx, ['with']);
  const w = withSet(ctx, entity === 'leads' ? LEAD_WITH : entity === 'contacts' ? CONTACT_WITH : COMPANY_WITH);
  const rec = entityMap(ctx.state, entity).get(id);
  if (!rec) return noContent();
  return hal(render(ctx, entity, rec, w));
}

function render(ctx: Ctx, entity: EntityType, rec: KLead | KContact | KCompany, w: Set<string>): Record<string, unknown> {
  return entity === 'leads'
    ? renderLead(ctx, rec as KLead, w)
    : entity === 'contacts'
      ? renderContact(ctx, rec as KContact, w)
      : renderCompany(ctx, rec as KCompany, w);
}

function read(ctx: Ctx, entity: EntityType, body: unknown, mode: Mode, errs: FieldError[], current?: KLead | KContact | KCompany): Plan | undefined {
  return entity === 'leads'
    ? readLead(ctx, body, mode, errs, current as KLead | undefined)
    : readParty(ctx, entity, body, mode, errs, current as KContact | KCompany | undefined);
}

/** §5.3: a JSON array (≤250, else 422); the answer holds only ids and request ids. */
export function createEntities(ctx: Ctx, entity: EntityType): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    const plan = read(ctx, entity, item, 'create', errs);
    v.add(requestIdOf(item, i), errs);
    return plan;
  });
  v.throwIfFailed();
  const out = plans.map((p, i) => createdRef(ctx, entity, p!.apply(), requestIdOf(items[i], i)));
  return hal({ _links: selfLink(ctx, `/api/v4/${entity}`), _embedded: { [entity]: out } });
}

function updatedRef(ctx: Ctx, entity: EntityType, id: number, requestId: string): Record<string, unknown> {
  return { id, updated_at: entityMap(ctx.state, entity).get(id)!.updated_at, request_id: requestId, _links: selfLink(ctx, `/api/v4/${entity}/${id}`) };
}

/** §5.4 bulk: every element must carry an existing `id`. */
export function updateEntities(ctx: Ctx, entity: EntityType): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const map = entityMap(ctx.state, entity);
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    let plan: Plan | undefined;
    if (!isObject(item)) errs.push(E.type('', 'object'));
    else if (item.id === undefined) errs.push(E.blank('id'));
    else if (typeof item.id !== 'number' || !Number.isInteger(item.id)) errs.push(E.type('id', 'int'));
    else if (!map.has(item.id)) errs.push(E.choice('id'));
    else plan = read(ctx, entity, item, 'update', errs, map.get(item.id));
    v.add(requestIdOf(item, i), errs);
    return plan;
  });
  v.throwIfFailed();
  const out = plans.map((p, i) => updatedRef(ctx, entity, p!.apply(), requestIdOf(items[i], i)));
  return hal({ _links: selfLink(ctx, `/api/v4/${entity}`), _embedded: { [entity]: out } });
}

/** §5.4 single: an object (no array) for `/{entity}/{id}`; answers `{id, updated_at, request_id, _links}`. */
export function updateEntity(ctx: Ctx, entity: EntityType, id: number): EmuResponse {
  onlyParams(ctx, []);
  const body = jsonBody(ctx);
  const errs: FieldError[] = [];
  const current = entityMap(ctx.state, entity).get(id);
  let plan: Plan | undefined;
  if (!isObject(body)) errs.push(E.type('', 'object'));
  else if (body.id !== undefined && body.id !== id) errs.push(E.choice('id'));
  else if (!current) errs.push(E.choice('id'));
  else plan = read(ctx, entity, body, 'update', errs, current);
  const rid = requestIdOf(body, 0);
  if (errs.length || !plan) throw validationError([{ request_id: rid, errors: errs }]);
  return hal(updatedRef(ctx, entity, plan.apply(), rid));
}

interface PartyPlan {
  existing?: number;
  plan?: Plan;
}

/** `{id}` links an existing record (other keys ignored, as the SDK sends the full model with its id); otherwise a new one. */
function party(ctx: Ctx, entity: 'contacts' | 'companies', raw: unknown, prefix: string, errs: FieldError[]): PartyPlan | undefined {
  if (isObject(raw) && raw.id !== undefined) {
    if (typeof raw.id !== 'number' || !Number.isInteger(raw.id)) return void errs.push(E.type(`${prefix}id`, 'int'));
    if (!(entity === 'contacts' ? ctx.state.contacts : ctx.state.companies).has(raw.id)) return void errs.push(E.choice(`${prefix}id`));
    return { existing: raw.id };
  }
  const plan = readParty(ctx, entity, raw, 'create', errs, undefined, prefix);
  return plan ? { plan } : undefined;
}

function embeddedOne(ctx: Ctx, entity: 'contacts' | 'companies', emb: Record<string, unknown> | undefined, errs: FieldError[]): PartyPlan | undefined {
  const raw = emb?.[entity];
  if (raw === undefined) return undefined;
  const path = `_embedded.${entity}`;
  if (!Array.isArray(raw)) return void errs.push(E.type(path, 'array'));
  // §5.5: at most one contact and one company per lead.
  if (raw.length > 1) return void errs.push(E.choice(path));
  return raw.length ? party(ctx, entity, raw[0], `${path}.0.`, errs) : undefined;
}

const METADATA_KEYS = [
  'category',
  'form_id',
  'form_name',
  'form_page',
  'form_sent_at',
  'ip',
  'referer',
  'uniq',
  'duration',
  'service_code',
  'link',
  'phone',
  'called_at',
  'from',
];

/**
 * §5.5 `POST /leads/complex`: ≤50 leads, each with at most one contact and one company (new or by id); a new
 * contact and company are linked to each other; `_embedded.metadata` makes it an incoming lead. The answer is
 * a plain array. Duplicate control is an account setting (`behaviour.duplicateControl`, off by default): when on,
 * a lead whose contact duplicates an existing one is merged into that contact's open lead (`merged: true`).
 */
export function createComplex(ctx: Ctx): EmuResponse {
  onlyParams(ctx, []);
  // More than 50: the sheet gives the limit, not the error; the 422 of the 250 limit is reused (§3).
  const items = arrayBody(ctx, 50);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    const rid = requestIdOf(item, i);
    const emb = isObject(item) && isObject(item._embedded) ? item._embedded : undefined;
    const meta = emb?.metadata;
    if (meta !== undefined) {
      if (!isObject(meta)) errs.push(E.type('_embedded.metadata', 'object'));
      else {
        for (const k of Object.keys(meta)) if (!METADATA_KEYS.includes(k)) errs.push(E.extra(`_embedded.metadata.${k}`));
        if (!['forms', 'sip', 'mail', 'chats'].includes(String(meta.category))) errs.push(E.choice('_embedded.metadata.category'));
      }
    }
    const lead = readLead(ctx, item, 'create', errs, undefined, { incoming: meta !== undefined, embeddedKeys: ['tags', 'contacts', 'companies', 'metadata'] });
    const contact = embeddedOne(ctx, 'contacts', emb, errs);
    const company = embeddedOne(ctx, 'companies', emb, errs);
    v.add(rid, errs);
    return { lead, contact, company, rid };
  });
  v.throwIfFailed();
  // Duplicate control compares against records that existed before this request only (§5.5), so every
  // match is found before anything is written.
  const dupes = plans.map((p, i) => (ctx.behaviour.duplicateControl && p.contact ? duplicateOf(ctx, p.contact, items[i]) : undefined));
  const merged = new Map<number, { id: number; contact_id: number; company_id: number | null; request_id: string[]; merged: true }>();
  const out: unknown[] = [];
  plans.forEach((p, i) => {
    const dupe = dupes[i];
    if (!dupe) {
      out.push(created(p));
      return;
    }
    // §5.5: merged into the existing lead; the answer carries the existing ids, and one element gathers the
    // request ids of every input lead merged into the same lead.
    const prev = merged.get(dupe.lead.id);
    if (prev) {
      prev.request_id.push(p.rid);
      return;
    }
    p.lead!.merge!(dupe.lead);
    const entry = {
      id: dupe.lead.id,
      contact_id: dupe.contactId,
      company_id: dupe.lead._embedded.companies[0]?.id ?? null,
      request_id: [p.rid],
      merged: true as const,
    };
    merged.set(dupe.lead.id, entry);
    out.push(entry);
  });
  return { status: 200, headers: { 'content-type': HAL }, body: out };

  function created(p: (typeof plans)[number]) {
    const companyId = p.company ? (p.company.existing ?? p.company.plan!.apply()) : null;
    const contactId = p.contact ? (p.contact.existing ?? p.contact.plan!.apply()) : null;
    if (p.contact?.plan && contactId && companyId) ctx.state.contacts.get(contactId)!._embedded.companies = [{ id: companyId }];
    const leadId = p.lead!.apply();
    const lead = ctx.state.leads.get(leadId)!;
    if (contactId) lead._embedded.contacts = [{ id: contactId, is_main: true }];
    if (companyId) lead._embedded.companies = [{ id: companyId }];
    return { id: leadId, contact_id: contactId, company_id: companyId, request_id: [p.rid], merged: false };
  }
}

/** Last ten digits: the part of a number that survives every way people type it (8…, +7…, 7…). */
const phoneKey = (v: unknown) => String(v).replace(/\D+/g, '').slice(-10);

/**
 * The existing contact this complex-add's contact duplicates (same id, or a shared phone or email) and that
 * contact's most recently updated open lead — the lead Kommo merges into. No open lead, no merge.
 */
function duplicateOf(ctx: Ctx, party: PartyPlan, item: unknown): { contactId: number; lead: KLead } | undefined {
  const s = ctx.state;
  let contactIds: number[];
  if (party.existing !== undefined) contactIds = [party.existing];
  else {
    const raw = isObject(item) && isObject(item._embedded) && Array.isArray(item._embedded.contacts) ? item._embedded.contacts[0] : undefined;
    const { phones, emails } = contactKeys(ctx, raw);
    if (!phones.length && !emails.length) return undefined;
    contactIds = [...s.contacts.values()]
      .filter((c) =>
        (c.custom_fields_values ?? []).some(
          (f) =>
            (f.field_code === 'PHONE' && f.values.some((x) => phones.includes(phoneKey(x.value)))) ||
            (f.field_code === 'EMAIL' && f.values.some((x) => emails.includes(String(x.value).trim().toLowerCase()))),
        ),
      )
      .map((c) => c.id);
  }
  for (const contactId of contactIds) {
    const open = leadsOf(s, 'contacts', contactId)
      .map((id) => s.leads.get(id)!)
      .filter((l) => l.status_id !== 142 && l.status_id !== 143)
      .sort((a, b) => b.updated_at - a.updated_at || b.id - a.id);
    if (open[0]) return { contactId, lead: open[0] };
  }
  return undefined;
}

/** Phones and emails of a contact in a write body, addressed by `field_code` or by the PHONE/EMAIL field ids. */
function contactKeys(ctx: Ctx, raw: unknown): { phones: string[]; emails: string[] } {
  const phones: string[] = [];
  const emails: string[] = [];
  const cfv = isObject(raw) && Array.isArray(raw.custom_fields_values) ? raw.custom_fields_values : [];
  for (const f of cfv) {
    if (!isObject(f) || !Array.isArray(f.values)) continue;
    const code =
      typeof f.field_code === 'string' ? f.field_code : typeof f.field_id === 'number' ? ctx.state.customFields.contacts.get(f.field_id)?.code : undefined;
    for (const v of f.values) {
      if (!isObject(v) || v.value === undefined) continue;
      if (code === 'PHONE' && phoneKey(v.value).length >= 7) phones.push(phoneKey(v.value));
      if (code === 'EMAIL') emails.push(String(v.value).trim().toLowerCase());
    }
  }
  return { phones, emails };
}
