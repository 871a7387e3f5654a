/**
 * Kommo leads: lists (one pair per stage, merged), one lead with its people, the steps of a create (plain,
 * never merged; services/create-lead.ts runs them) and updates. `kommoLeads` is the provider's leads group.
 */
import { randomUUID } from 'node:crypto';
import { CrmError, validationError } from '../../domain/errors.js';
import { requireChanges } from '../../domain/validate.js';
import type {
  CallContext,
  Company,
  Contact,
  CreateLeadInput,
  Id,
  Lead,
  LeadDraft,
  LeadFilter,
  LeadPrimitives,
  LeadsApi,
  NewLead,
  Page,
  PlannedRequest,
  UpdateLeadInput,
  WriteResult,
} from '../types.js';
import { PAGE_MAX, type EntityPath } from './api.js';
import { resolveFields } from './fields.js';
import { toId, toUnix } from './ids.js';
import { LOST, WON, mapCompany, mapContact, mapLead, multiField, type KCustomFieldWrite } from './map.js';
import type { KommoParts } from './metadata.js';
import { isMergeCursor, LEAD_ORDER, pairParams } from './paging.js';
import { nameCompanies, rawLead } from './records.js';
import { createdId, KContact, KLead } from './schemas.js';
import { contactLeadIds, findCompany, searchContacts, searchLeadByContact } from './search.js';
import { resolveTags, type TagRef } from './tags.js';
import { moveLead } from './stage-move.js';
import { clearsCustomField, removalNeedsDelete } from './write-checks.js';

export async function listLeads(k: KommoParts, ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
  if (f.entity === 'deal') throw validationError('Kommo has no separate deals: omit `entity` (Kommo leads are the sales opportunities).');
  const [orderKey, dir] = LEAD_ORDER[f.sort ?? 'created_desc'];
  const params: Array<[string, string]> = [
    ['with', 'contacts'],
    [`order[${orderKey}]`, dir],
  ];
  if (f.pipeline_id !== undefined && !f.cursor) await k.meta.checkStage(ctx, f.pipeline_id, undefined); // unknown: refused, naming the valid ones
  if (f.query && !f.cursor) {
    // A phone or an email is matched through the contacts holding it (search.ts), else Kommo's text `query`.
    const ids = await contactLeadIds(k, ctx, f.query);
    if (ids && !ids.length) return { items: [], has_more: false, cursor: null, total: null };
    if (ids) for (const id of ids) params.push(['filter[id][]', String(id)]);
    else params.push(['query', f.query]);
  }
  if (f.pipeline_id !== undefined) params.push(['filter[pipeline_id][]', String(f.pipeline_id)]);
  const pairs = f.status_ids?.length ? await k.meta.statusPairs(ctx, f.pipeline_id, f.status_ids) : [];
  if (f.responsible_user_id !== undefined) params.push(['filter[responsible_user_id][]', String(f.responsible_user_id)]);
  for (const [name, from, to] of [
    ['created_at', f.created_from, f.created_to],
    ['updated_at', f.updated_from, f.updated_to],
  ] as const) {
    if (from) params.push([`filter[${name}][from]`, String(toUnix(from, `${name.split('_')[0]}_from`))]);
    if (to) params.push([`filter[${name}][to]`, String(toUnix(to, `${name.split('_')[0]}_to`))]);
  }
  const merged = f.cursor ? isMergeCursor(f.cursor) : pairs.length > 1;
  // A Kommo page holds at most 250 leads (§3): a larger `limit` (Bitrix24 reads 2,500 a call) gives 250 and a cursor.
  const limit = Math.min(f.limit, PAGE_MAX);
  const page = merged
    ? await k.api.mergedPage(ctx, '/api/v4/leads', 'leads', KLead, { params, pairs, limit, cursor: f.cursor })
    : await k.api.listPage(ctx, '/api/v4/leads', 'leads', KLead, [...params, ...pairs.flatMap(pairParams(0))], limit, f.cursor);
  const l = await k.meta.lookups(ctx);
  const items = page.items.map((x) => mapLead(x, l));
  await nameCompanies(k, ctx, items, { directory: true });
  // Kommo's lead lists carry no count (§4: no `_total_items`).
  return { items, has_more: page.has_more, cursor: page.cursor, total: null };
}

export async function getLead(k: KommoParts, ctx: CallContext, id: Id): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }> {
  const raw = await rawLead(k, ctx, id);
  const l = await k.meta.lookups(ctx);
  const lead = mapLead(raw, l);
  const contactIds = (raw._embedded?.contacts ?? []).map((c) => c.id);
  const companyIds = (raw._embedded?.companies ?? []).map((c) => c.id);
  // `with` so the embedded records' own links are read, not left as empty lists that would mean "none" (§6).
  const [contacts, companies] = await Promise.all([
    contactIds.length ? k.api.byIds(ctx, 'contacts', contactIds, KContact, 'leads') : [],
    companyIds.length ? k.api.byIds(ctx, 'companies', companyIds, KContact, 'contacts,leads') : [],
  ]);
  if (lead.company && companies[0]) lead.company = { id: companies[0].id, name: companies[0].name ?? null };
  const people = contacts.map((c) => mapContact(c, l));
  // The contacts' companies by name too (the lead's own company is known by now: no second read of it).
  for (const p of people) if (p.company && lead.company && String(p.company.id) === String(lead.company.id)) p.company = { ...lead.company };
  await nameCompanies(k, ctx, people);
  return { lead, contacts: people, companies: companies.map((c) => mapCompany(c, l)) };
}

export async function updateLead(k: KommoParts, ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>> {
  const id = toId(input.id, 'id');
  if (input.tags_to_delete?.length) removalNeedsDelete(ctx, 'tags_to_delete', 'removing tags from a lead');
  const current = await rawLead(k, ctx, id);
  let stage: { pipeline_id?: number; status_id?: number } = {};
  if (input.status_id !== undefined || input.pipeline_id !== undefined) {
    // Moving within the current pipeline needs its id too when the stage is won/lost (shared ids, §7).
    stage = await k.meta.checkStage(
      ctx,
      input.pipeline_id ?? (input.status_id !== undefined ? (current.pipeline_id ?? undefined) : undefined),
      input.status_id,
    );
  }
  const responsible = await k.meta.checkUser(ctx, input.responsible_user_id);
  const fields = await resolveFields(k, ctx, 'leads', input.custom_fields);
  if (fields?.some(clearsCustomField)) removalNeedsDelete(ctx, 'custom_fields', 'clearing a custom field');
  const tagsToAdd = await resolveTags(k, ctx, 'leads', input.tags_to_add, 'tags_to_add');
  const body: Record<string, unknown> = {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.price !== undefined ? { price: input.price } : {}),
    ...stage,
    ...(responsible ? { responsible_user_id: responsible } : {}),
    ...(fields ? { custom_fields_values: fields } : {}),
    // Incremental tag changes (never `_embedded.tags`, which replaces the whole set, §5.4); added tags must exist.
    ...(tagsToAdd ? { tags_to_add: tagsToAdd } : {}),
    ...(input.tags_to_delete?.length ? { tags_to_delete: input.tags_to_delete.map((name) => ({ name })) } : {}),
  };
  requireChanges(body);
  const path = `/api/v4/leads/${id}`;
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [k.api.plan('PATCH', path, body)] };
  await k.api.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
  return { item: (await getLead(k, ctx, id)).lead };
}

// ---------------------------------------------------------------- create_lead

/*
 * create_lead on Kommo: a create never changes an existing record. `POST /leads/complex` would be one
 * request, but with the account's duplicate control on (an integration setting the API does not show, §5.5)
 * Kommo merges such a lead into the contact's existing open lead, changing it. So the lead is built from
 * plain creates, which never merge: the company (`POST /companies`) and the contact (`POST /contacts`) when
 * they are new, then the lead (`POST /leads`) linked to them by id. A step whose answer was lost is looked up
 * before it is sent again, and a resend after a lost lead answer does not make the contact or company twice.
 */

interface KommoLeadDraft extends LeadDraft {
  stage: { pipeline_id?: number; status_id?: number };
  responsible: number | undefined;
  fields: KCustomFieldWrite[] | undefined;
  tags: TagRef[] | undefined;
}

/** The creates behind one lead, and the ids of those already made (kept across a resend). */
export interface LeadPlan {
  company?: { body: Record<string, unknown>; name: string };
  contact?: { body: Record<string, unknown>; email?: string; phone?: string };
  lead: Record<string, unknown>;
  companyId?: number;
  contactId?: number;
}

const WORD: Record<EntityPath, string> = { leads: 'lead', contacts: 'contact', companies: 'company' };

/** Sends one plain create and returns the new id. */
async function post(k: KommoParts, ctx: CallContext, entity: EntityPath, body: Record<string, unknown>): Promise<number> {
  const id = createdId(await k.api.call<unknown>(ctx, 'POST', `/api/v4/${entity}`, { body: [body], op: 'create' }), entity);
  if (!id) throw new CrmError({ code: 'upstream', message: `Kommo accepted the ${WORD[entity]} but returned no id; search for it before retrying.` });
  return id;
}

/**
 * A contact or company create before the lead: when its answer was lost, look for it, then send it once more.
 * If that fails too, the error is no longer "ambiguous" for the caller: resending the whole lead could make
 * the record twice, so the agent is told what may exist instead.
 */
async function prerequisite(
  k: KommoParts,
  ctx: CallContext,
  entity: 'contacts' | 'companies',
  body: Record<string, unknown>,
  lookup: (() => Promise<number | undefined>) | undefined,
): Promise<number> {
  try {
    return await post(k, ctx, entity, body);
  } catch (e) {
    if (!(e instanceof CrmError && e.ambiguous)) throw e;
    const found = lookup ? await lookup() : undefined;
    if (found !== undefined) return found;
    if (!lookup) throw settled(e, entity);
    try {
      return await post(k, ctx, entity, body);
    } catch (e2) {
      throw e2 instanceof CrmError && e2.ambiguous ? settled(e2, entity) : e2;
    }
  }
}

function settled(e: CrmError, entity: 'contacts' | 'companies'): CrmError {
  return new CrmError({
    code: e.code,
    status: e.status,
    requestId: e.requestId,
    retryable: false,
    message: `${e.message} The new ${WORD[entity]} may exist; the lead was not created. Search for the ${WORD[entity]} before calling create_lead again.`,
  });
}

async function sendPlan(k: KommoParts, ctx: CallContext, p: LeadPlan): Promise<{ id: number; contact_id: number | null; company_id: number | null }> {
  if (p.company && p.companyId === undefined) {
    const name = p.company.name;
    p.companyId = await prerequisite(k, ctx, 'companies', p.company.body, () => findCompany(k, ctx, name));
  }
  if (p.contact && p.contactId === undefined) {
    const { email, phone } = p.contact;
    const body = { ...p.contact.body, ...(p.companyId !== undefined ? { _embedded: { companies: [{ id: p.companyId }] } } : {}) };
    const lookup = email || phone ? async () => (await searchContacts(k, ctx, { email, phone })).contacts[0]?.id : undefined;
    p.contactId = await prerequisite(k, ctx, 'contacts', body, lookup);
  }
  const id = await post(k, ctx, 'leads', withLinks(p.lead, p.contactId, p.companyId));
  return { id, contact_id: p.contactId ?? null, company_id: p.companyId ?? null };
}

/** The lead linked to its contact and company by id (§5.3 `_embedded.contacts[{id, is_main}]`, `companies[{id}]`). */
export function withLinks(lead: Record<string, unknown>, contact: number | string | undefined, company: number | string | undefined): Record<string, unknown> {
  const emb = {
    ...((lead._embedded ?? {}) as Record<string, unknown>),
    ...(contact !== undefined ? { contacts: [{ id: contact, is_main: true }] } : {}),
    ...(company !== undefined ? { companies: [{ id: company }] } : {}),
  };
  return Object.keys(emb).length ? { ...lead, _embedded: emb } : lead;
}

/** The dry-run view: every create in order, with the ids the earlier ones would return shown as placeholders. */
function planOf(k: KommoParts, p: LeadPlan): PlannedRequest[] {
  const out: PlannedRequest[] = [];
  const companyRef = p.companyId ?? (p.company ? '<id of the new company>' : undefined);
  const contactRef = p.contactId ?? (p.contact ? '<id of the new contact>' : undefined);
  if (p.company && p.companyId === undefined) out.push(k.api.plan('POST', '/api/v4/companies', [p.company.body]));
  if (p.contact && p.contactId === undefined) {
    out.push(
      k.api.plan('POST', '/api/v4/contacts', [{ ...p.contact.body, ...(companyRef !== undefined ? { _embedded: { companies: [{ id: companyRef }] } } : {}) }]),
    );
  }
  out.push(k.api.plan('POST', '/api/v4/leads', [withLinks(p.lead, contactRef, companyRef)]));
  return out;
}

function buildPlan(n: NewLead<KommoLeadDraft>): LeadPlan {
  const { draft, input, contact, person, phone } = n;
  const companyName = input.company?.name?.trim();
  return {
    ...(companyName && n.companyId === undefined ? { company: { body: { name: companyName, request_id: `crm-mcp-${randomUUID()}` }, name: companyName } } : {}),
    ...(n.companyId !== undefined ? { companyId: n.companyId } : {}),
    ...(n.contactId !== undefined ? { contactId: n.contactId } : {}),
    ...(contact && n.contactId === undefined
      ? {
          contact: {
            email: contact.email?.trim() || undefined,
            phone: contact.phone?.trim() || undefined,
            body: {
              ...(person.first ? { first_name: person.first } : {}),
              ...(person.last ? { last_name: person.last } : {}),
              name: n.contactName,
              custom_fields_values: [
                ...(phone ? [multiField('PHONE', [{ value: phone.e164, enum_code: 'WORK' }])] : []),
                ...(contact.email ? [multiField('EMAIL', [{ value: contact.email.trim(), enum_code: 'WORK' }])] : []),
              ],
              request_id: `crm-mcp-${randomUUID()}`,
            },
          },
        }
      : {}),
    lead: {
      name: n.title,
      ...(input.price !== undefined ? { price: input.price } : {}),
      ...draft.stage,
      ...(draft.responsible ? { responsible_user_id: draft.responsible } : {}),
      ...(draft.fields ? { custom_fields_values: draft.fields } : {}),
      ...(draft.tags ? { _embedded: { tags: draft.tags } } : {}),
      request_id: `crm-mcp-${randomUUID()}`,
    },
  };
}

/** The steps of create_lead that are Kommo's own (services/create-lead.ts runs them in order). */
export function leadSteps(k: KommoParts): LeadPrimitives<KommoLeadDraft, LeadPlan> {
  return {
    async prepare(ctx, input) {
      if (input.entity === 'deal') throw validationError('Kommo has no separate deals: omit `entity`.');
      const stage = await k.meta.checkStage(ctx, input.pipeline_id, input.status_id);
      if (stage.status_id !== undefined && stage.pipeline_id === undefined) {
        stage.pipeline_id = (await k.meta.pipelines(ctx)).find((p) => p.is_main)?.id;
      }
      if (input.status_id === undefined) {
        // The tool promises the pipeline's first working stage by sort: the one after "Incoming leads" (type 1,
        // §7: only incoming leads go there), never won/lost. Sent explicitly so the lead does not land wherever
        // the account's default puts it, and a dry run shows the stage.
        const pipelines = await k.meta.pipelines(ctx);
        const p = pipelines.find((x) => x.id === stage.pipeline_id) ?? pipelines.find((x) => x.is_main);
        const first = (p?._embedded?.statuses ?? []).filter((st) => st.type !== 1 && st.id !== WON && st.id !== LOST).sort((a, b) => a.sort - b.sort)[0];
        if (p && first) Object.assign(stage, { pipeline_id: p.id, status_id: first.id });
      }
      const responsible = await k.meta.checkUser(ctx, input.responsible_user_id);
      const fields = await resolveFields(k, ctx, 'leads', input.custom_fields);
      const tags = await resolveTags(k, ctx, 'leads', input.tags, 'tags');
      return { stage, responsible, fields, tags, country: await k.meta.defaultCountry(ctx) };
    },
    searchByContact: (ctx, q) => searchLeadByContact(k, ctx, q),
    findCompany: (ctx, name) => findCompany(k, ctx, name),
    build: (n) => buildPlan(n),
    plan: (p) => planOf(k, p),
    send: (ctx, p) => sendPlan(k, ctx, p),
    findJustCreated: (ctx, n, startedAt) => findJustCreated(k, ctx, n.title, n.contact, Math.floor(startedAt / 1000) - 5),
    getLead: (ctx, id) => getLead(k, ctx, id),
  };
}

/** The leads group of a Kommo provider (capabilities.ts LeadsApi). Kommo has no deals: `entity` is not read. */
export function kommoLeads(k: KommoParts): LeadsApi {
  return {
    listLeads: (ctx, f) => listLeads(k, ctx, f),
    getLead: (ctx, id) => getLead(k, ctx, id),
    updateLead: (ctx, input) => updateLead(k, ctx, input),
    moveLead: (ctx, input) => moveLead(k, ctx, input),
    searchLeadByContact: (ctx, q) => searchLeadByContact(k, ctx, q),
    createLeadSteps: leadSteps(k),
  };
}

/** After an ambiguous create: the lead we may have created, found by contact or by name and time. */
async function findJustCreated(k: KommoParts, ctx: CallContext, name: string, contact: CreateLeadInput['contact'], since: number): Promise<Lead | undefined> {
  const recent = (l: Lead) => !!l.created_at && Date.parse(l.created_at) / 1000 >= since && l.name === name;
  if (contact?.email || contact?.phone) {
    const found = await searchLeadByContact(k, ctx, { email: contact.email, phone: contact.phone });
    return found.leads.find(recent);
  }
  const q = new URLSearchParams({ query: name, limit: '50', with: 'contacts', 'order[created_at]': 'desc' });
  const l = await k.meta.lookups(ctx);
  return (await k.api.page(ctx, '/api/v4/leads', 'leads', q, KLead)).items.map((x) => mapLead(x, l)).find(recent);
}
