/**
 * Finding people and their deals/leads by phone or email on Bitrix24 (fact sheet §7.7), written so it is right
 * whichever way the portal compares phones:
 * - the CRM core normalises phones to a match code (`DuplicateCommunicationCriterion::normalizePhone`:
 *   digits, trunk 8 → 7, `00`/`011` dropped), so E.164 finds `+7 912 447-03-61` and `89124470361` alike, but
 *   not a number stored without its country code; the fact sheet's older reading is an exact string match.
 *   Every search therefore sends the number in the formats people type (`phoneFormats`), at most 20 values
 *   per command; under normalisation they collapse into one criterion and cost nothing extra.
 * - each value returns at most 20 matches across types, leads first, and a type with 20 or more hits hides
 *   the others (§7.7 [D-FINDBYCOMM]; core `find($entityTypeID, 20)`): contacts and leads are asked for
 *   separately with `entity_type`, so a repeat customer with 20 leads still comes back with the contact.
 * - `CONTACT_ID` in `crm.deal.list`/`crm.lead.list` is the primary contact only; the deals and leads of a
 *   contact are read with `crm.item.list` and the `contactIds` filter (crm-deal-list docs: "for filtering by
 *   contacts use crm.item.list"), then fetched as compat rows by id.
 */
import type { CallContext } from '../types.js';
import { badSearchPhone, checkSearchEmail, requireSearchKey } from '../../domain/validate.js';
import { normalizePhone, phoneFormats } from '../../util/phone.js';
import { bitrixError } from './adapter.js';
import { linkCommands, readLinks, type Links } from './links.js';
import { phpQuery, type Row } from './map.js';
import { rowsOf } from './schemas.js';

interface BatchAnswer {
  result: Record<string, unknown>;
  errors: Record<string, { error: string; error_description: string }>;
}

export interface CommDeps {
  batch(ctx: CallContext, cmd: Record<string, string>): Promise<BatchAnswer>;
  leadsEnabled: boolean;
  /** The portal's country (ISO 3166 alpha-2) for numbers typed without a country code (country.ts). */
  country?: string;
}

export interface CommMatches {
  contacts: Row[];
  leads: Row[];
  deals: Row[];
  e164: string | null;
  /** Per matched contact: the ids of its deals and leads through any binding (the Contact's `lead_ids`). */
  linksOf: Map<number, number[]>;
  /** Company names and the contacts of the deals/leads found, read with their rows (links.ts). */
  links: Links;
}

/** findbycomm takes at most 20 values per call (§7.7). */
const MAX_VALUES = 20;
/** Contacts and leads taken from the matches, newest first (keeps the follow-up batch within 50 commands). */
const MAX_CONTACTS = 10;
const MAX_LEADS = 10;
/** Deals/leads per search: one page of `crm.*.list` by id. */
const MAX_RECORDS = 50;

function chunks<T>(list: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

/** The findbycomm commands of one search: per entity type, per chunk of ≤ 20 values. */
export function commCommands(q: { phoneE164?: string; email?: string }, leadsEnabled: boolean): Record<string, string> {
  const types = leadsEnabled ? ['CONTACT', 'LEAD'] : ['CONTACT'];
  const cmd: Record<string, string> = {};
  const add = (key: string, type: 'PHONE' | 'EMAIL', values: string[]) => {
    chunks(values, MAX_VALUES).forEach((vals, i) => {
      for (const t of types) cmd[`${key}_${t}_${i}`] = `crm.duplicate.findbycomm?${phpQuery({ type, entity_type: t, values: vals })}`;
    });
  };
  if (q.phoneE164) add('phone', 'PHONE', phoneFormats(q.phoneE164));
  if (q.email) {
    const e = q.email.trim();
    add('email', 'EMAIL', [...new Set([e, e.toLowerCase()])]);
  }
  return cmd;
}

function arr(v: unknown): Row[] {
  return rowsOf(v, 'crm.*.list');
}

/** Items of a `crm.item.list` answer (`{items: [{id, contactIds, companyId}]}`). */
function items(v: unknown): Array<{ id: number; contactIds: number[]; companyId: number | null }> {
  const list = v && typeof v === 'object' && !Array.isArray(v) ? (v as { items?: unknown }).items : undefined;
  if (!Array.isArray(list)) return [];
  return list
    .map((x) => {
      const o = (x ?? {}) as { id?: unknown; contactIds?: unknown; companyId?: unknown };
      const co = Number(o.companyId);
      return {
        id: Number(o.id),
        contactIds: Array.isArray(o.contactIds) ? o.contactIds.map(Number).filter((n) => Number.isSafeInteger(n)) : [],
        companyId: Number.isSafeInteger(co) && co > 0 ? co : null,
      };
    })
    .filter((x) => Number.isSafeInteger(x.id) && x.id > 0);
}

function throwIfErrors(b: BatchAnswer, keys: string[]): void {
  for (const k of keys) {
    const err = b.errors[k];
    if (err) throw bitrixError(err.error, err.error_description, 400);
  }
}

/** Commands that list the deal (and lead) ids bound to contacts through any binding, newest first. */
export function boundItemCommands(contactIds: number[], leadsEnabled: boolean, prefix = ''): Record<string, string> {
  const cmd: Record<string, string> = {};
  if (contactIds.length === 0) return cmd;
  // `contactIds` in the select says which of the contacts each item belongs to (crm.item.list returns it for deals
  // and leads); `companyId` lets the company names be read with the rows.
  const q = (entityTypeId: number) =>
    `crm.item.list?${phpQuery({ entityTypeId, select: ['id', 'contactIds', 'companyId'], filter: { '@contactIds': contactIds }, order: { id: 'DESC' } })}`;
  cmd[`${prefix}dealIds`] = q(2);
  if (leadsEnabled) cmd[`${prefix}leadIds`] = q(1);
  return cmd;
}

export function boundIds(b: BatchAnswer, prefix = ''): { deals: number[]; leads: number[]; companyIds: number[]; linksOf(contactId: number): number[] } {
  throwIfErrors(
    b,
    [`${prefix}dealIds`, `${prefix}leadIds`].filter((k) => k in b.errors),
  );
  const deals = items(b.result[`${prefix}dealIds`]);
  const leads = items(b.result[`${prefix}leadIds`]);
  return {
    deals: deals.map((x) => x.id),
    leads: leads.map((x) => x.id),
    companyIds: [...deals, ...leads].map((x) => x.companyId).filter((x): x is number => x !== null),
    // Deal ids then lead ids of one contact, as get_contact lists them.
    linksOf: (cid) => [...deals, ...leads].filter((x) => x.contactIds.includes(cid)).map((x) => x.id),
  };
}

/** The ids of contacts with this email or phone (findbycomm for contacts only, one batch). */
export async function contactIdsByComm(d: CommDeps, ctx: CallContext, q: { email?: string; phoneE164?: string }): Promise<number[]> {
  const cmd = commCommands(q, false);
  const found = await d.batch(ctx, cmd);
  throwIfErrors(found, Object.keys(cmd));
  const ids = new Set<number>();
  for (const key of Object.keys(cmd)) {
    const r = found.result[key];
    if (!r || typeof r !== 'object' || Array.isArray(r)) continue;
    for (const id of ((r as Record<string, unknown>).CONTACT as unknown[] | undefined) ?? []) ids.add(Number(id));
  }
  return [...ids].filter((n) => Number.isSafeInteger(n) && n > 0).sort((a, b) => b - a);
}

/** Finds contacts and leads by email/phone, then every deal and lead of those contacts: three batches. */
export async function findByComm(d: CommDeps, ctx: CallContext, q: { email?: string; phone?: string }): Promise<CommMatches> {
  requireSearchKey(q);
  checkSearchEmail(q.email);
  let e164: string | null = null;
  if (q.phone) {
    const n = normalizePhone(q.phone, d.country);
    if (!n) badSearchPhone(q.phone);
    e164 = n.e164;
  }
  const cmd = commCommands({ phoneE164: e164 ?? undefined, email: q.email }, d.leadsEnabled);
  const found = await d.batch(ctx, cmd);
  throwIfErrors(found, Object.keys(cmd));
  const ids = { CONTACT: new Set<number>(), LEAD: new Set<number>() };
  for (const key of Object.keys(cmd)) {
    const r = found.result[key];
    if (!r || typeof r !== 'object' || Array.isArray(r)) continue;
    for (const t of ['CONTACT', 'LEAD'] as const) for (const id of ((r as Record<string, unknown>)[t] as unknown[] | undefined) ?? []) ids[t].add(Number(id));
  }
  const newest = (s: Set<number>, n: number) => [...s].sort((a, b) => b - a).slice(0, n);
  const contactIds = newest(ids.CONTACT, MAX_CONTACTS);
  const matchedLeads = newest(ids.LEAD, MAX_LEADS);
  if (contactIds.length === 0 && matchedLeads.length === 0) return { contacts: [], leads: [], deals: [], e164, linksOf: new Map(), links: readLinks({}) };

  const get: Record<string, string> = {};
  contactIds.forEach((id, i) => (get[`c${i}`] = `crm.contact.get?${phpQuery({ id })}`));
  Object.assign(get, boundItemCommands(contactIds, d.leadsEnabled));
  const b = await d.batch(ctx, get);
  const contacts = contactIds.map((_, i) => b.result[`c${i}`]).filter((x): x is Row => !!x && typeof x === 'object' && !Array.isArray(x));
  const bound = boundIds(b);
  const linksOf = new Map(contactIds.map((id) => [id, bound.linksOf(id)]));
  const dealIds = bound.deals.slice(0, MAX_RECORDS);
  const leadIds = [...new Set([...matchedLeads, ...bound.leads])].sort((x, y) => y - x).slice(0, MAX_RECORDS);

  const rows: Record<string, string> = {};
  const list = (entity: string, idList: number[]) =>
    `crm.${entity}.list?${phpQuery({ filter: { '@ID': idList }, select: ['*', 'UF_*'], order: { ID: 'DESC' }, start: -1 })}`;
  if (dealIds.length) rows.deals = list('deal', dealIds);
  if (leadIds.length && d.leadsEnabled) rows.leads = list('lead', leadIds);
  // In the same batch: every contact of those deals/leads and the names of the companies known so far.
  Object.assign(
    rows,
    linkCommands({
      companyIds: [...bound.companyIds, ...contacts.map((c) => c.COMPANY_ID as number | null)],
      deals: dealIds,
      leads: d.leadsEnabled ? leadIds : [],
    }),
  );
  const r = await d.batch(ctx, rows);
  throwIfErrors(r, Object.keys(rows));
  return { contacts, leads: arr(r.result.leads), deals: arr(r.result.deals), e164, linksOf, links: readLinks(r.result) };
}
