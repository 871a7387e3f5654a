/**
 * Bitrix24 deals and leads: lists, one record with its people, the steps of a create (one batch;
 * services/create-lead.ts runs them) and updates. `bitrixLeads` is the provider's leads group.
 */
import { CrmError, notFound, validationError } from '../../domain/errors.js';
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
  UpdateLeadInput,
  WriteResult,
} from '../types.js';
import { bitrixError } from './adapter.js';
import { boundIds, boundItemCommands } from './duplicates.js';
import { resolveFields } from './fields.js';
import { bxDate, bxId, cap } from './ids.js';
import { batchAll, companyLinkCommands, companyLinks } from './links.js';
import { pageTotal, readCursor, toPage, type BitrixLists } from './lists.js';
import { LEAD_PIPELINE, mapCompany, mapContact, mapDeal, mapLeadRow, num, phpQuery, type Row } from './map.js';
import { firstStage, type BitrixParts, type Lookups } from './metadata.js';
import { contactLeadIds, fillLeadLinks, findCompany, getRow, searchLeadByContact } from './records.js';
import { BRow, parseBitrix, rowsOf } from './schemas.js';
import { moveLead } from './stage-move.js';

export async function listLeads(b: BitrixParts, lists: BitrixLists, ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
  const entity = await listEntity(b, ctx, f);
  const kind = `leads:${entity}`;
  const c = readCursor(f.cursor, kind);
  let filter: Record<string, unknown> = c.f ?? {};
  const limit = c.l ?? f.limit;
  if (!f.cursor) {
    if (f.pipeline_id !== undefined && entity === 'deal') filter.CATEGORY_ID = bxId(f.pipeline_id, 'pipeline_id', true);
    if (f.status_ids?.length) filter[entity === 'deal' ? '@STAGE_ID' : '@STATUS_ID'] = f.status_ids.map(String);
    if (f.responsible_user_id !== undefined) filter.ASSIGNED_BY_ID = bxId(f.responsible_user_id, 'responsible_user_id');
    if (f.query) {
      // A phone or an email is matched through the contacts holding it (records.ts), else the title.
      const ids = await contactLeadIds(b, ctx, entity, f.query);
      if (ids && !ids.length) return { items: [], has_more: false, cursor: null, total: 0 };
      if (ids) filter['@ID'] = ids;
      else filter['%TITLE'] = f.query;
    }
    if (f.created_from) filter['>=DATE_CREATE'] = bxDate(f.created_from, 'created_from');
    if (f.created_to) filter['<=DATE_CREATE'] = bxDate(f.created_to, 'created_to');
    if (f.updated_from) filter['>=DATE_MODIFY'] = bxDate(f.updated_from, 'updated_from');
    if (f.updated_to) filter['<=DATE_MODIFY'] = bxDate(f.updated_to, 'updated_to');
  }
  filter = { ...filter };
  const sort = c.s ?? f.sort ?? 'created_desc';
  const { rows, hasMore, ahead, total } = await lists.rows(ctx, `crm.${entity}.list`, filter, ['*', 'UF_*'], limit, sort, c);
  const l = await b.meta.lookups(ctx);
  const page = toPage(
    rows,
    hasMore,
    (r) => (entity === 'deal' ? mapDeal(r, l) : mapLeadRow(r, l)),
    { k: kind, f: filter, l: limit, s: sort, off: (c.off ?? 0) + rows.length },
    pageTotal(total, c),
  );
  // A list page names companies but does not read every deal's contacts (one more batch per page, which
  // halved bulk reads): its items leave contact_ids out; get_lead and search list every contact.
  // The rows read ahead are named with this page: one lookup per read-ahead, none for the pages served from it.
  await fillLeadLinks(b, ctx, page.items, [], undefined, { contacts: false, alsoName: ahead.map((r) => num(r.COMPANY_ID)) });
  for (const x of page.items) delete (x as { contact_ids?: unknown }).contact_ids;
  return page;
}

/**
 * The entity a list reads: asked, else the one a pipeline_id names (get_pipelines lists the lead statuses as
 * pipeline "leads" and each deal category by id), else the portal's default. An unknown pipeline is refused
 * with the valid ones, never answered with an empty list.
 */
async function listEntity(b: BitrixParts, ctx: CallContext, f: LeadFilter): Promise<'lead' | 'deal'> {
  if (f.pipeline_id === undefined || f.cursor) return b.meta.defaultEntity(ctx, f.entity);
  const l = await b.meta.lookups(ctx);
  const p = String(f.pipeline_id);
  const isLeads = p === LEAD_PIPELINE.id && l.leadsEnabled;
  const isDeal = /^\d+$/.test(p) && l.categories.has(Number(p));
  if ((isLeads && f.entity !== 'deal') || (isDeal && f.entity !== 'lead')) return isLeads ? 'lead' : 'deal';
  const valid = [
    ...(l.leadsEnabled ? [`${LEAD_PIPELINE.name} (${LEAD_PIPELINE.id}, leads)`] : []),
    ...[...l.categories.values()].map((x) => `${x.name} (${x.id})`),
  ];
  throw validationError(
    `pipeline_id: no pipeline ${JSON.stringify(f.pipeline_id)}${f.entity ? ` for entity "${f.entity}"` : ''}. Pipelines: ${valid.join(', ')}.`,
  );
}

export async function getLead(
  b: BitrixParts,
  ctx: CallContext,
  id: Id,
  entityIn?: 'lead' | 'deal',
): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }> {
  const entity = await b.meta.defaultEntity(ctx, entityIn);
  const n = bxId(id);
  // Every bound contact, not only the primary CONTACT_ID (crm.lead.contact.items.get exists for leads too).
  const cmd: Record<string, string> = { item: `crm.${entity}.get?${phpQuery({ id: n })}`, links: `crm.${entity}.contact.items.get?${phpQuery({ id: n })}` };
  const r = await b.api.batch(ctx, cmd);
  const raw = r.result.item;
  if (!raw || typeof raw !== 'object') {
    const err = r.errors.item;
    if (!err || /not found/i.test(err.error_description) || /not found/i.test(err.error)) throw notFound(`${cap(entity)} ${n}`);
    throw bitrixError(err.error, err.error_description, 400);
  }
  const item = parseBitrix(BRow, raw, `crm.${entity}.get`);
  const l = await b.meta.lookups(ctx);
  const lead = entity === 'deal' ? mapDeal(item, l) : mapLeadRow(item, l);
  const linkIds = rowsOf(r.result.links, `crm.${entity}.contact.items.get`)
    .map((x) => num(x.CONTACT_ID))
    .filter((x): x is Id => x !== null);
  const contactIds = [...new Set([...linkIds, ...lead.contact_ids])].slice(0, 20);
  lead.contact_ids = contactIds;
  // The embedded records with their own links (each contact's deals and leads, the company's contacts and
  // deals), never as empty lists that would read as "none".
  const more: Record<string, string> = {};
  contactIds.forEach((cid, i) => {
    more[`c${i}`] = `crm.contact.get?${phpQuery({ id: cid })}`;
    Object.assign(more, boundItemCommands([Number(cid)], l.leadsEnabled, `b${i}_`));
  });
  if (lead.company) {
    more.company = `crm.company.get?${phpQuery({ id: lead.company.id })}`;
    Object.assign(more, companyLinkCommands(Number(lead.company.id), l.leadsEnabled, 'co_'));
  }
  const deps = { batch: (c: CallContext, x: Record<string, string>) => b.api.batch(c, x) };
  const m = { result: await batchAll(deps, ctx, more, (k) => /^c\d+$/.test(k)), errors: {} };
  const contacts: Contact[] = [];
  contactIds.forEach((cid, i) => {
    const row = m.result[`c${i}`];
    if (row && typeof row === 'object') contacts.push(mapContact(parseBitrix(BRow, row, 'crm.contact.get'), l, boundIds(m, `b${i}_`).linksOf(Number(cid))));
  });
  const companies: Company[] = [];
  if (lead.company && m.result.company && typeof m.result.company === 'object') {
    companies.push(mapCompany(parseBitrix(BRow, m.result.company, 'crm.company.get'), l, await companyLinks(deps, ctx, Number(lead.company.id), m, 'co_')));
  }
  if (lead.company && companies[0]) lead.company = { id: companies[0].id, name: companies[0].name };
  // The lead's company is named already: only other companies of its contacts cost a lookup.
  const known = new Map(companies.map((co) => [String(co.id), co.name] as [string, string | null]));
  await fillLeadLinks(b, ctx, [], contacts, { titles: known, contacts: new Map() });
  return { lead, contacts, companies };
}

export async function updateLead(b: BitrixParts, ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>> {
  const entity = await b.meta.defaultEntity(ctx, input.entity);
  if (input.tags_to_add?.length || input.tags_to_delete?.length) throw validationError('tags: Bitrix24 deals and leads have no tags.');
  const id = bxId(input.id);
  const current = await getRow(b, ctx, entity, id);
  const stage = await b.meta.checkStage(ctx, entity, input.pipeline_id, input.status_id);
  if (entity === 'deal' && stage.CATEGORY_ID !== undefined && Number(stage.CATEGORY_ID) !== Number(current.CATEGORY_ID ?? 0)) {
    // §7.2: crm.deal.update cannot move a deal to another pipeline.
    throw validationError(
      `Moving deal ${id} to another pipeline is not supported here (crm.deal.update cannot change CATEGORY_ID); pick a stage of pipeline ${Number(current.CATEGORY_ID ?? 0)}.`,
    );
  }
  delete stage.CATEGORY_ID;
  const responsible = await b.meta.checkUser(ctx, input.responsible_user_id);
  const uf = await resolveFields(b, ctx, entity, input.custom_fields);
  const fields = {
    ...(input.name !== undefined ? { TITLE: input.name } : {}),
    ...(input.price !== undefined ? { OPPORTUNITY: input.price } : {}),
    ...stage,
    ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
    ...uf,
  };
  requireChanges(fields);
  const params = { id, fields };
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [b.api.plan(`crm.${entity}.update`, params)] };
  await b.api.call(ctx, `crm.${entity}.update`, params);
  return { item: (await getLead(b, ctx, id, entity)).lead };
}

interface BitrixLeadDraft extends LeadDraft {
  entity: 'lead' | 'deal';
  lookups: Lookups;
  stage: Record<string, unknown>;
  responsible: number | undefined;
  uf: Record<string, unknown>;
}

/** The one `batch` of a create: company (when new), contact (when new), then the deal/lead, linked by `$result`. */
export interface LeadBatch {
  cmd: Record<string, string>;
  entity: 'lead' | 'deal';
  contactId: number | undefined;
  companyId: number | undefined;
  /** The lead's or deal's own fields (`$result[…]` where they name a record the batch makes), for a bulk import. */
  fields: Record<string, unknown>;
}

/** The steps of create_lead that are Bitrix24's own (services/create-lead.ts runs them in order). */
export function leadSteps(b: BitrixParts): LeadPrimitives<BitrixLeadDraft, LeadBatch> {
  return {
    async prepare(ctx, input) {
      const l = await b.meta.lookups(ctx);
      const entity = await b.meta.defaultEntity(ctx, input.entity);
      if (input.tags?.length) throw validationError('tags: Bitrix24 deals and leads have no tags; use a custom field or a note instead.');
      const stage = await b.meta.checkStage(ctx, entity, input.pipeline_id, input.status_id);
      // Without status_id the lead goes to the first stage by SORT, as get_pipelines lists it and the tool says:
      // sent explicitly, so the result does not rest on the portal's own default (or on which pipeline it thinks
      // is the default one).
      if (input.status_id === undefined) Object.assign(stage, firstStage(l, entity, stage.CATEGORY_ID as number | undefined));
      const responsible = await b.meta.checkUser(ctx, input.responsible_user_id);
      const uf = await resolveFields(b, ctx, entity, input.custom_fields);
      return { entity, lookups: l, stage, responsible, uf, country: l.country };
    },
    searchByContact: (ctx, q) => searchLeadByContact(b, ctx, q),
    findCompany: (ctx, name) => findCompany(b, ctx, name),
    build: leadBatch,
    plan: (r) => b.api.plan('batch', { halt: 1, cmd: r.cmd }),
    async send(ctx, r) {
      const res = await b.api.batch(ctx, r.cmd, true);
      const errKey = Object.keys(res.errors)[0];
      if (errKey) {
        const err = res.errors[errKey]!;
        const made = Object.entries(res.result)
          .map(([k, v]) => `${k} ${String(v)}`)
          .join(', ');
        const e = bitrixError(err.error, err.error_description, 400);
        throw new CrmError({
          code: e.code,
          status: e.status,
          message: `Bitrix24 refused ${errKey === 'item' ? `the ${r.entity}` : `the ${errKey}`}: ${e.message}${made ? ` (already created: ${made})` : ''}`,
        });
      }
      return {
        id: Number(res.result.item),
        contact_id: num(res.result.contact) ?? r.contactId ?? null,
        company_id: num(res.result.company) ?? r.companyId ?? null,
      };
    },
    findJustCreated: (ctx, n, startedAt) => findJustCreated(b, ctx, n.draft.entity, n.title, n.contact, startedAt - 5000),
    getLead: (ctx, id, entity) => getLead(b, ctx, id, entity),
  };
}

function leadBatch(n: NewLead<BitrixLeadDraft>): LeadBatch {
  const { draft, input, contact, person, phone } = n;
  const cmd: Record<string, string> = {};
  if (input.company?.name && n.companyId === undefined) cmd.company = `crm.company.add?${phpQuery({ fields: { TITLE: input.company.name.trim() } })}`;
  const companyRef = cmd.company ? '$result[company]' : n.companyId;
  if (contact && n.contactId === undefined) {
    const fields: Record<string, unknown> = {
      ...(person.first ? { NAME: person.first } : {}),
      ...(person.last ? { LAST_NAME: person.last } : {}),
      ...(phone ? { PHONE: [{ VALUE: phone.e164, VALUE_TYPE: 'WORK' }] } : {}),
      ...(contact.email ? { EMAIL: [{ VALUE: contact.email.trim(), VALUE_TYPE: 'WORK' }] } : {}),
      ...(companyRef !== undefined ? { COMPANY_ID: companyRef } : {}),
      ...(draft.responsible ? { ASSIGNED_BY_ID: draft.responsible } : {}),
    };
    cmd.contact = `crm.contact.add?${phpQuery({ fields })}`;
  }
  const contactRef = cmd.contact ? '$result[contact]' : n.contactId;
  const fields: Record<string, unknown> = {
    TITLE: n.title,
    ...(input.price !== undefined ? { OPPORTUNITY: input.price } : {}),
    ...draft.stage,
    ...(companyRef !== undefined ? { COMPANY_ID: companyRef } : {}),
    ...(contactRef !== undefined ? { CONTACT_ID: contactRef } : {}),
    ...(draft.responsible ? { ASSIGNED_BY_ID: draft.responsible } : {}),
    ...draft.uf,
  };
  if (draft.entity === 'lead' && contact) {
    if (person.first) fields.NAME = person.first;
    if (person.last) fields.LAST_NAME = person.last;
  }
  cmd.item = `crm.${draft.entity}.add?${phpQuery({ fields })}`;
  return { cmd, entity: draft.entity, contactId: n.contactId, companyId: n.companyId, fields };
}

/** The leads group of a Bitrix24 provider (capabilities.ts LeadsApi): leads where the portal has them, else deals. */
export function bitrixLeads(b: BitrixParts, lists: BitrixLists): LeadsApi {
  return {
    listLeads: (ctx, f) => listLeads(b, lists, ctx, f),
    getLead: (ctx, id, entity) => getLead(b, ctx, id, entity),
    updateLead: (ctx, input) => updateLead(b, ctx, input),
    moveLead: (ctx, input) => moveLead(b, ctx, input),
    searchLeadByContact: (ctx, q) => searchLeadByContact(b, ctx, q),
    createLeadSteps: leadSteps(b),
  };
}

async function findJustCreated(
  b: BitrixParts,
  ctx: CallContext,
  entity: 'lead' | 'deal',
  title: string,
  contact: CreateLeadInput['contact'],
  since: number,
): Promise<Lead | undefined> {
  const fresh = (x: Lead) => x.name === title && !!x.created_at && Date.parse(x.created_at) >= since - 60_000;
  if (contact?.email || contact?.phone) {
    const r = await searchLeadByContact(b, ctx, { email: contact.email, phone: contact.phone });
    const hit = r.leads.find(fresh);
    if (hit) return hit;
  }
  const r = await b.api.call<unknown>(ctx, `crm.${entity}.list`, { filter: { TITLE: title }, order: { ID: 'DESC' }, select: ['*', 'UF_*'], start: -1 });
  const l = await b.meta.lookups(ctx);
  return rowsOf(r.result, `crm.${entity}.list`)
    .map((x: Row) => (entity === 'deal' ? mapDeal(x, l) : mapLeadRow(x, l)))
    .find(fresh);
}
