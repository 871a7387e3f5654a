/**
 * Bitrix24 records by id, the links listed records lack (every contact, company names: links.ts), and
 * finding people and their deals/leads by email or phone (duplicates.ts).
 */
import { CrmError, notFound } from '../../domain/errors.js';
import { nameCacheOf } from '../../util/name-cache.js';
import { normalizePhone } from '../../util/phone.js';
import { byOpenThenRecent } from '../../domain/dedupe.js';
import { requireSearchKey } from '../../domain/validate.js';
import type { CallContext, ContactItem, Id, Lead, SearchResult } from '../types.js';
import { findByComm as findByCommIn } from './duplicates.js';
import { bxId, cap } from './ids.js';
import { fetchLinks, type Links } from './links.js';
import { mapContact, mapDeal, mapLeadRow, type Row } from './map.js';
import type { BitrixParts, Entity } from './metadata.js';
import { BRow, parseBitrix, rowsOf } from './schemas.js';

export async function getRow(b: BitrixParts, ctx: CallContext, entity: Entity, id: Id): Promise<Row> {
  const n = bxId(id);
  let result: unknown;
  try {
    result = (await b.api.call<unknown>(ctx, `crm.${entity}.get`, { id: n })).result;
  } catch (e) {
    if (e instanceof CrmError && e.code === 'not_found') throw notFound(`${cap(entity)} ${n}`);
    throw e;
  }
  if (!result || typeof result !== 'object') throw notFound(`${cap(entity)} ${n}`);
  return parseBitrix(BRow, result, `crm.${entity}.get`);
}

/**
 * Every contact (not only the primary CONTACT_ID) and the company's name of listed deals/leads, in one batch
 * per page (links.ts). A lead's COMPANY_TITLE is its own free-text field, not the linked company's name.
 */
export async function fillLeadLinks(
  b: BitrixParts,
  ctx: CallContext,
  leads: Lead[],
  contacts: ContactItem[] = [],
  known?: Links,
  opts: { contacts?: boolean; alsoName?: Array<Id | null> } = {},
): Promise<void> {
  // Company titles read in the last minute are reused (services/name-cache.ts): a long scan pays for them once.
  const cache = nameCacheOf(b.api);
  const titles = new Map(known?.titles);
  for (const x of [...leads, ...contacts]) {
    const id = x.company?.id;
    if (id !== undefined && !titles.has(String(id)) && cache.has(id)) titles.set(String(id), cache.get(id) ?? null);
  }
  const contactsOf = new Map(known?.contacts);
  const withContacts = opts.contacts ?? true;
  // Companies of rows read ahead for later pages are named now, in the same lookup, so those pages need none.
  const later = (opts.alsoName ?? []).filter((id): id is Id => id !== null && id !== 0 && !cache.has(id));
  const companyIds = [
    ...new Set([...[...leads, ...contacts].map((x) => x.company?.id), ...later].filter((id) => id !== undefined && !titles.has(String(id))).map(String)),
  ];
  const fetched = await fetchLinks({ batch: (c, x) => b.api.batch(c, x) }, ctx, {
    companyIds,
    deals: withContacts ? leads.filter((x) => x.entity === 'deal' && !contactsOf.has(`deal:${String(x.id)}`)).map((x) => x.id) : [],
    leads: withContacts ? leads.filter((x) => x.entity === 'lead' && !contactsOf.has(`lead:${String(x.id)}`)).map((x) => x.id) : [],
  });
  for (const [k, v] of fetched.titles) {
    titles.set(k, v);
    cache.set(k, v);
  }
  // A company the lookup did not return (deleted, or hidden from this user) stays unnamed, and is not asked again.
  for (const id of companyIds) if (!fetched.titles.has(id) && /^\d+$/.test(id)) cache.set(id, null);
  for (const [k, v] of known?.titles ?? []) cache.set(k, v);
  for (const [k, v] of fetched.contacts) contactsOf.set(k, v);
  for (const x of leads) {
    const ids = contactsOf.get(`${x.entity}:${String(x.id)}`);
    if (ids) x.contact_ids = ids;
  }
  for (const x of [...leads, ...contacts]) {
    if (x.company && titles.has(String(x.company.id))) x.company = { id: x.company.id, name: titles.get(String(x.company.id)) ?? null };
  }
}

/** Finds contacts, leads and deals by email/phone (duplicates.ts: per-type findbycomm, every binding). */
export async function findByComm(b: BitrixParts, ctx: CallContext, q: { email?: string; phone?: string }): ReturnType<typeof findByCommIn> {
  requireSearchKey(q);
  const l = await b.meta.lookups(ctx);
  return findByCommIn({ batch: (c, cmd) => b.api.batch(c, cmd), leadsEnabled: l.leadsEnabled, country: l.country }, ctx, q);
}

export async function searchLeadByContact(b: BitrixParts, ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult> {
  const r = await findByComm(b, ctx, q);
  const l = await b.meta.lookups(ctx);
  const leads = [...r.deals.map((d) => mapDeal(d, l)), ...r.leads.map((x) => mapLeadRow(x, l))].sort(byOpenThenRecent);
  const contacts = r.contacts.map((c) => mapContact(c, l, r.linksOf.get(Number(c.ID)) ?? []));
  await fillLeadLinks(b, ctx, leads, contacts, r.links);
  return {
    query: { ...(q.email ? { email: q.email } : {}), ...(q.phone ? { phone: q.phone, phone_e164: r.e164 } : {}) },
    contacts,
    leads,
  };
}

/** The company with exactly this title (case and surrounding spaces aside), if there is one. */
export async function findCompany(b: BitrixParts, ctx: CallContext, name: string): Promise<number | undefined> {
  const r = await b.api.call<unknown>(ctx, 'crm.company.list', { filter: { TITLE: name.trim() }, select: ['ID', 'TITLE'], start: -1 });
  const co = rowsOf(r.result, 'crm.company.list').find((c) => String(c.TITLE).toLowerCase() === name.trim().toLowerCase());
  return co ? Number(co.ID) : undefined;
}

/**
 * list_leads `query` as a phone or an email: the ids of the portal's deals or leads bound to the contacts (and,
 * for leads, the leads themselves) holding it, found as search_lead_by_contact finds them. Undefined when the
 * query is neither or nobody holds it (then the title search applies, as for any other text).
 */
export async function contactLeadIds(b: BitrixParts, ctx: CallContext, entity: 'lead' | 'deal', query: string): Promise<number[] | undefined> {
  const text = query.trim();
  const isEmail = /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text);
  const digits = text.replace(/\D+/g, '').length;
  const isPhone = /^\+?[\d\s().-]+$/.test(text) && digits >= 7 && digits <= 15;
  if (!isEmail && !isPhone) return undefined;
  if (isPhone && !normalizePhone(text, (await b.meta.lookups(ctx)).country)) return undefined;
  const r = await findByComm(b, ctx, isEmail ? { email: text } : { phone: text });
  if (!r.contacts.length && !r.leads.length) return undefined;
  return (entity === 'deal' ? r.deals : r.leads).map((x) => Number(x.ID)).filter((x) => Number.isInteger(x) && x > 0);
}
