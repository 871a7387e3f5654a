/** Kommo leads: lists (one pair per stage, merged), one lead with its people, creates and updates. */
import { randomUUID } from 'node:crypto';
import { CrmError, validationError } from '../../http/errors.js';
import { createLead as createLeadService, type LeadDraft, type LeadPrimitives, type NewLead } from '../../services/create-lead.js';
import { requireChanges } from '../../services/validate.js';
import type { CallContext, Company, Contact, CreateLeadInput, CreateLeadResult, Id, Lead, LeadFilter, Page, UpdateLeadInput, WriteResult } from '../types.js';
import { resolveFields } from './fields.js';
import { toId, toUnix } from './ids.js';
import { LOST, WON, mapCompany, mapContact, mapLead, multiField, type KCustomFieldWrite } from './map.js';
import type { KommoParts } from './metadata.js';
import { isMergeCursor, LEAD_ORDER, pairParams } from './paging.js';
import { nameCompanies, rawLead } from './records.js';
import { KComplexCreated, KContact, KLead } from './schemas.js';
import { findCompany, searchLeadByContact } from './search.js';

export async function listLeads(k: KommoParts, ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
  if (f.entity === 'deal') throw validationError('Kommo has no separate deals: omit `entity` (Kommo leads are the sales opportunities).');
  const [orderKey, dir] = LEAD_ORDER[f.sort ?? 'created_desc'];
  const params: Array<[string, string]> = [
    ['with', 'contacts'],
    [`order[${orderKey}]`, dir],
  ];
  if (f.query) params.push(['query', f.query]);
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
  const page = merged
    ? await k.api.mergedPage(ctx, '/api/v4/leads', 'leads', KLead, { params, pairs, limit: f.limit, cursor: f.cursor })
    : await k.api.listPage(ctx, '/api/v4/leads', 'leads', KLead, [...params, ...pairs.flatMap(pairParams(0))], f.limit, f.cursor);
  const l = await k.meta.lookups(ctx);
  const items = page.items.map((x) => mapLead(x, l));
  await nameCompanies(k, ctx, items);
  return { items, has_more: page.has_more, cursor: page.cursor };
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
  const body: Record<string, unknown> = {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.price !== undefined ? { price: input.price } : {}),
    ...stage,
    ...(responsible ? { responsible_user_id: responsible } : {}),
    ...(fields ? { custom_fields_values: fields } : {}),
    // Incremental tag changes (never `_embedded.tags`, which replaces the whole set, §5.4).
    ...(input.tags_to_add?.length ? { tags_to_add: input.tags_to_add.map((name) => ({ name })) } : {}),
    ...(input.tags_to_delete?.length ? { tags_to_delete: input.tags_to_delete.map((name) => ({ name })) } : {}),
  };
  requireChanges(body);
  const path = `/api/v4/leads/${id}`;
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [k.api.plan('PATCH', path, body)] };
  await k.api.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
  return { item: (await getLead(k, ctx, id)).lead };
}

interface KommoLeadDraft extends LeadDraft {
  stage: { pipeline_id?: number; status_id?: number };
  responsible: number | undefined;
  fields: KCustomFieldWrite[] | undefined;
}

const COMPLEX = '/api/v4/leads/complex';

/** The steps of create_lead that are Kommo's own (services/create-lead.ts runs them in order). */
function leadSteps(k: KommoParts): LeadPrimitives<KommoLeadDraft, unknown[]> {
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
      return { stage, responsible, fields, country: await k.meta.defaultCountry(ctx) };
    },
    searchByContact: (ctx, q) => searchLeadByContact(k, ctx, q),
    findCompany: (ctx, name) => findCompany(k, ctx, name),
    build: (n) => [leadBody(n)],
    plan: (body) => k.api.plan('POST', COMPLEX, body),
    async send(ctx, body) {
      const res = await k.api.call<unknown>(ctx, 'POST', COMPLEX, { body, op: 'create' });
      const parsed = KComplexCreated.safeParse(res);
      if (!parsed.success) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the lead but returned no id; search for it before retrying.' });
      const first = parsed.data[0]!;
      return {
        id: first.id,
        contact_id: first.contact_id ?? null,
        company_id: first.company_id ?? null,
        // §5.5: with the account's duplicate control on, Kommo merges the lead into an existing one and answers
        // with that lead's ids and `merged: true`: nothing new was created.
        ...(first.merged === true
          ? {
              mergedReason: `Merged by Kommo duplicate control into existing lead ${first.id}: the account found this contact already there, so no new lead was created.`,
            }
          : {}),
      };
    },
    findJustCreated: (ctx, n, startedAt) => findJustCreated(k, ctx, n.title, n.contact, Math.floor(startedAt / 1000) - 5),
    getLead: (ctx, id) => getLead(k, ctx, id),
  };
}

function leadBody(n: NewLead<KommoLeadDraft>): Record<string, unknown> {
  const { draft, input, contact, person, phone } = n;
  const contactBody =
    n.contactId !== undefined
      ? { id: n.contactId }
      : contact
        ? {
            ...(person.first ? { first_name: person.first } : {}),
            ...(person.last ? { last_name: person.last } : {}),
            name: n.contactName,
            custom_fields_values: [
              ...(phone ? [multiField('PHONE', [{ value: phone.e164, enum_code: 'WORK' }])] : []),
              ...(contact.email ? [multiField('EMAIL', [{ value: contact.email.trim(), enum_code: 'WORK' }])] : []),
            ],
          }
        : undefined;
  return {
    name: n.title,
    ...(input.price !== undefined ? { price: input.price } : {}),
    ...draft.stage,
    ...(draft.responsible ? { responsible_user_id: draft.responsible } : {}),
    ...(draft.fields ? { custom_fields_values: draft.fields } : {}),
    _embedded: {
      ...(input.tags?.length ? { tags: input.tags.map((t) => ({ name: t })) } : {}),
      ...(contactBody ? { contacts: [contactBody] } : {}),
      ...(input.company?.name ? { companies: [n.companyId !== undefined ? { id: n.companyId } : { name: input.company.name.trim() }] } : {}),
    },
    request_id: `crm-mcp-${randomUUID()}`,
  };
}

export function createLead(k: KommoParts, ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult> {
  return createLeadService(leadSteps(k), ctx, input);
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
