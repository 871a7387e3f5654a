/**
 * Bitrix24 contacts and companies: lists, one record with its links, the steps of a create
 * (services/create-contact.ts runs them) and updates. `bitrixContacts` and `bitrixCompanies` are the groups.
 */
import { notFound, validationError } from '../../domain/errors.js';
import { emailToAdd, notOnContact, phoneToAdd, requireChanges } from '../../domain/validate.js';
import { sameEmail, samePhone } from '../../util/phone.js';
import type {
  CallContext,
  CompaniesApi,
  CompanyItem,
  Company,
  Contact,
  ContactItem,
  ContactPrimitives,
  ContactsApi,
  Id,
  ListQuery,
  Page,
  UpdateContactInput,
  WriteResult,
} from '../types.js';
import { bitrixError } from './adapter.js';
import { parseContactQuery, unionRows } from './contact-search.js';
import { boundIds, boundItemCommands, contactIdsByComm } from './duplicates.js';
import { resolveFields } from './fields.js';
import { bxId } from './ids.js';
import { companyLinkCommands, companyLinks } from './links.js';
import { pageTotal, readCursor, toPage, type BitrixLists } from './lists.js';
import { mapCompany, mapContact, phpQuery, type BMulti } from './map.js';
import type { BitrixParts } from './metadata.js';
import { fillLeadLinks, findByComm, findCompany, getRow } from './records.js';
import { BRow, parseBitrix } from './schemas.js';

/**
 * `query` is an email, a phone or name words (contact-search.ts): email and phone through findbycomm, the
 * words as the union of the NAME/LAST_NAME readings. Lead ids are not read for lists (left out, see ContactItem).
 */
export async function listContacts(b: BitrixParts, lists: BitrixLists, ctx: CallContext, q: ListQuery): Promise<Page<ContactItem>> {
  const c = readCursor(q.cursor, 'contacts');
  const filters = c.fs ?? (c.f ? [c.f] : await contactFilters(b, ctx, q.query));
  const limit = c.l ?? q.limit;
  const sort = c.s ?? q.sort ?? 'created_desc';
  if (!filters.length) return { items: [], has_more: false, cursor: null, total: 0 };
  const select = ['*', 'UF_*', 'PHONE', 'EMAIL'];
  // A union of several readings (name words) has no one count: its total is null.
  const { rows, hasMore, total } =
    filters.length === 1
      ? await lists.rows(ctx, 'crm.contact.list', filters[0]!, select, limit, sort, c)
      : { ...(await unionRows({ batch: (x, cmd) => b.api.batch(x, cmd) }, ctx, 'crm.contact.list', filters, select, limit, sort, c)), total: null };
  const l = await b.meta.lookups(ctx);
  const state = { k: 'contacts', fs: filters, l: limit, s: sort, off: (c.off ?? 0) + rows.length };
  const page = toPage(rows, hasMore, (r) => mapContact(r, l), state, filters.length === 1 ? pageTotal(total, c) : null);
  await fillLeadLinks(b, ctx, [], page.items);
  return page;
}

/** The crm.contact.list filters whose union answers `query`; none when nothing can match. */
async function contactFilters(b: BitrixParts, ctx: CallContext, query: string | undefined): Promise<Array<Record<string, unknown>>> {
  const l = await b.meta.lookups(ctx);
  const parsed = parseContactQuery(query, l.country);
  if (parsed.kind === 'all') return [{}];
  if (parsed.kind === 'nothing') return [];
  if (parsed.kind === 'names') return parsed.filters;
  const ids = await contactIdsByComm({ batch: (c, cmd) => b.api.batch(c, cmd), leadsEnabled: l.leadsEnabled }, ctx, parsed);
  return ids.length ? [{ '@ID': ids }] : [];
}

export async function listCompanies(b: BitrixParts, lists: BitrixLists, ctx: CallContext, q: ListQuery): Promise<Page<CompanyItem>> {
  const c = readCursor(q.cursor, 'companies');
  const filter = c.f ?? (q.query ? { '%TITLE': q.query } : {});
  const limit = c.l ?? q.limit;
  const sort = c.s ?? q.sort ?? 'created_desc';
  const { rows, hasMore, total } = await lists.rows(ctx, 'crm.company.list', filter, ['*', 'UF_*', 'PHONE', 'EMAIL'], limit, sort, c);
  const l = await b.meta.lookups(ctx);
  const state = { k: 'companies', f: filter, l: limit, s: sort, off: (c.off ?? 0) + rows.length };
  return toPage(rows, hasMore, (r) => mapCompany(r, l), state, pageTotal(total, c));
}

export async function getContact(b: BitrixParts, ctx: CallContext, id: Id): Promise<Contact> {
  const n = bxId(id);
  const l = await b.meta.lookups(ctx);
  // Deals and leads through any binding: CONTACT_ID in crm.deal.list is the primary contact only (duplicates.ts).
  const r = await b.api.batch(ctx, { c: `crm.contact.get?${phpQuery({ id: n })}`, ...boundItemCommands([n], l.leadsEnabled) });
  const row = r.result.c;
  if (!row || typeof row !== 'object') throw notFound(`Contact ${n}`);
  const bound = boundIds(r);
  const contact = mapContact(parseBitrix(BRow, row, 'crm.contact.get'), l, [...bound.deals, ...bound.leads]);
  await fillLeadLinks(b, ctx, [], [contact]);
  return contact;
}

/** A company with its contacts (every binding) and its deals and leads (links.ts), in one batch mostly. */
export async function getCompany(b: BitrixParts, ctx: CallContext, id: Id): Promise<Company> {
  const n = bxId(id);
  const l = await b.meta.lookups(ctx);
  const r = await b.api.batch(ctx, { co: `crm.company.get?${phpQuery({ id: n })}`, ...companyLinkCommands(n, l.leadsEnabled) });
  const row = r.result.co;
  if (!row || typeof row !== 'object') {
    const err = r.errors.co;
    if (!err || /not found/i.test(`${err.error} ${err.error_description}`)) throw notFound(`Company ${n}`);
    throw bitrixError(err.error, err.error_description, 400);
  }
  return mapCompany(parseBitrix(BRow, row, 'crm.company.get'), l, await companyLinks({ batch: (c, x) => b.api.batch(c, x) }, ctx, n, r));
}

interface BitrixContactDraft {
  responsible: number | undefined;
  uf: Record<string, unknown>;
}

/** The steps of create_contact that are Bitrix24's own (services/create-contact.ts runs them in order). */
export function contactSteps(b: BitrixParts): ContactPrimitives<BitrixContactDraft, { fields: Record<string, unknown> }> {
  const send = (ctx: CallContext, params: { fields: Record<string, unknown> }) => b.api.call<unknown>(ctx, 'crm.contact.add', params);
  return {
    country: async (ctx) => (await b.meta.lookups(ctx)).country,
    refuse: (input) => {
      if (input.tags?.length) throw validationError('tags: Bitrix24 contacts have no tags.');
    },
    prepare: async (ctx, input) => ({
      responsible: await b.meta.checkUser(ctx, input.responsible_user_id),
      uf: await resolveFields(b, ctx, 'contact', input.custom_fields),
    }),
    async findExisting(ctx, q) {
      const found = await findByComm(b, ctx, q);
      const hit = found.contacts[0];
      if (!hit) return undefined;
      const existing = mapContact(hit, await b.meta.lookups(ctx), found.linksOf.get(Number(hit.ID)) ?? []);
      await fillLeadLinks(b, ctx, [], [existing], found.links);
      return existing;
    },
    findCompany: (ctx, name) => findCompany(b, ctx, name),
    build: ({ draft, input, person, phone, companyId }) => ({
      fields: {
        ...(person.first ? { NAME: person.first } : {}),
        ...(person.last ? { LAST_NAME: person.last } : {}),
        ...(phone ? { PHONE: [{ VALUE: phone.e164, VALUE_TYPE: 'WORK' }] } : {}),
        ...(input.email ? { EMAIL: [{ VALUE: input.email.trim(), VALUE_TYPE: 'WORK' }] } : {}),
        ...(companyId ? { COMPANY_ID: companyId } : {}),
        ...(draft.responsible ? { ASSIGNED_BY_ID: draft.responsible } : {}),
        ...draft.uf,
      },
    }),
    plan: (params) => b.api.plan('crm.contact.add', params),
    send: async (ctx, params) => Number((await send(ctx, params)).result),
    async findJustCreated(ctx, q) {
      const landed = (await findByComm(b, ctx, q)).contacts[0];
      return landed ? getContact(b, ctx, Number(landed.ID)) : undefined;
    },
    getContact: (ctx, id) => getContact(b, ctx, id),
  };
}

/** The contacts group of a Bitrix24 provider (capabilities.ts ContactsApi). */
export function bitrixContacts(b: BitrixParts, lists: BitrixLists): ContactsApi {
  return {
    listContacts: (ctx, q) => listContacts(b, lists, ctx, q),
    getContact: (ctx, id) => getContact(b, ctx, id),
    updateContact: (ctx, input) => updateContact(b, ctx, input),
    createContactSteps: contactSteps(b),
  };
}

/** The companies group of a Bitrix24 provider (capabilities.ts CompaniesApi). */
export function bitrixCompanies(b: BitrixParts, lists: BitrixLists): Pick<CompaniesApi, 'listCompanies' | 'getCompany'> {
  return { listCompanies: (ctx, q) => listCompanies(b, lists, ctx, q), getCompany: (ctx, id) => getCompany(b, ctx, id) };
}

export async function updateContact(b: BitrixParts, ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>> {
  if (input.tags_to_add?.length || input.tags_to_delete?.length) throw validationError('tags: Bitrix24 contacts have no tags.');
  const id = bxId(input.id);
  const current = await getRow(b, ctx, 'contact', id);
  const country = (await b.meta.lookups(ctx)).country;
  const responsible = await b.meta.checkUser(ctx, input.responsible_user_id);
  const uf = await resolveFields(b, ctx, 'contact', input.custom_fields);
  // §7.4: items without ID are added, {ID, DELETE:'Y'} removes one; values not mentioned stay.
  const edits = (type: 'PHONE' | 'EMAIL', add: string[] | undefined, remove: string[] | undefined) => {
    const existing = Array.isArray(current[type]) ? (current[type] as BMulti[]) : [];
    const same = type === 'PHONE' ? (a: string, c: string) => samePhone(a, c, country) : sameEmail;
    const out: Array<Record<string, string>> = [];
    for (const r of remove ?? []) {
      const hit = existing.filter((m) => same(m.VALUE ?? '', r));
      if (!hit.length) notOnContact(type, r, id);
      for (const m of hit) out.push({ ID: String(m.ID), DELETE: 'Y' });
    }
    for (const a of add ?? []) {
      const value = type === 'PHONE' ? phoneToAdd(a, country) : emailToAdd(a);
      if (!existing.some((m) => same(m.VALUE ?? '', value))) out.push({ VALUE: value, VALUE_TYPE: 'WORK' });
    }
    return out.length ? { [type]: out } : {};
  };
  const fields = {
    ...(input.first_name !== undefined ? { NAME: input.first_name } : input.name !== undefined ? { NAME: input.name } : {}),
    ...(input.last_name !== undefined ? { LAST_NAME: input.last_name } : {}),
    ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
    ...edits('PHONE', input.phones_to_add, input.phones_to_remove),
    ...edits('EMAIL', input.emails_to_add, input.emails_to_remove),
    ...uf,
  };
  requireChanges(fields);
  const params = { id, fields };
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [b.api.plan('crm.contact.update', params)] };
  await b.api.call(ctx, 'crm.contact.update', params);
  return { item: await getContact(b, ctx, id) };
}
