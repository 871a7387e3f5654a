/**
 * Bitrix24 ⇄ domain mapping, and nowhere else. Bitrix speaks UPPER_CASE fields with string ids and
 * multi-fields (`PHONE: [{ID, VALUE, VALUE_TYPE}]`); the domain speaks the same compact shapes as Kommo.
 */
import type { Company, CompanyItem, Contact, ContactItem, CustomFieldDef, CustomFieldValue, Id, Lead, Pipeline, User } from '../types.js';

export type Row = Record<string, unknown>;

export interface BMulti {
  ID?: string;
  VALUE?: string;
  VALUE_TYPE?: string;
  TYPE_ID?: string;
}

export interface BStatus {
  ID?: string | number;
  ENTITY_ID: string;
  STATUS_ID: string;
  NAME: string;
  SORT: string | number;
  CATEGORY_ID?: string | number | null;
  COLOR?: string | null;
  SEMANTICS?: string | null;
  EXTRA?: { SEMANTICS?: string; COLOR?: string } | null;
}

export interface BCategory {
  id: number;
  name: string;
  sort: number;
  isDefault?: string;
}

export interface BField {
  type: string;
  isRequired?: boolean;
  isReadOnly?: boolean;
  isMultiple?: boolean;
  isDynamic?: boolean;
  title?: string;
  formLabel?: string;
  listLabel?: string;
  items?: Array<{ ID: string; VALUE: string }>;
}

/** Lookups used to put names beside ids. */
export interface BLookups {
  categories: Map<number, BCategory>;
  /** Deal stages and lead statuses by STATUS_ID. */
  stages: Map<string, BStatus>;
  users: Map<string, User>;
  dealFields: Record<string, BField>;
  leadFields: Record<string, BField>;
  /** crm.contact.fields / crm.company.fields: the labels of their UF_CRM_* fields (listLabel/formLabel). */
  contactFields: Record<string, BField>;
  companyFields: Record<string, BField>;
  /** The portal's web address: the connection's configured origin, never the webhook's path (its secret). */
  web: string;
}

/** A CRM record's card in the portal: `https://{portal}/crm/deal/details/{id}/` (lead, contact, company alike). */
export function recordUrl(web: string, entity: 'lead' | 'deal' | 'contact' | 'company', id: Id): string {
  return `${web}/crm/${entity}/details/${encodeURIComponent(String(id))}/`;
}

/** A task's page, under its responsible user's tasks: `https://{portal}/company/personal/user/{user}/tasks/task/view/{id}/`. */
export function taskUrl(web: string, responsibleId: Id, id: Id): string {
  return `${web}/company/personal/user/${encodeURIComponent(String(responsibleId))}/tasks/task/view/${encodeURIComponent(String(id))}/`;
}

/** Bitrix ids are numeric strings: expose them as numbers (like Kommo's) where they are. */
export function num(v: unknown): Id | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  if (typeof v === 'string' && v !== '') return v;
  return null;
}

export function iso(v: unknown): string | null {
  if (typeof v !== 'string' || !v) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString().replace('.000Z', 'Z');
}

/**
 * A `date` field (no time): the portal writes it as a moment in its own zone, e.g. CLOSEDATE
 * `2026-05-01T00:00:00+03:00`, and the day it means is the date part as written. Moved to UTC that midnight
 * is the evening before (east of Greenwich), so a deal closed the day it was created would seem closed before
 * it was created: the answer is the date, `2026-05-01`.
 */
export function portalDate(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  return /^(\d{4}-\d{2}-\d{2})(?:$|[T ])/.exec(v.trim())?.[1] ?? null;
}

/** A field's value by its type in `crm.*.fields`: a date without a time stays a date (portalDate). */
function moment(v: unknown, def: BField | undefined): string | null {
  return def?.type === 'date' ? portalDate(v) : iso(v);
}

export function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : null;
}

export function multi(v: unknown): string[] {
  return Array.isArray(v) ? (v as BMulti[]).map((m) => m.VALUE ?? '').filter(Boolean) : [];
}

/** Semantics of a stage/status (§7.6): S success, F failure, otherwise in progress. */
export function stageType(s: Pick<BStatus, 'SEMANTICS' | 'EXTRA' | 'STATUS_ID'> | undefined): 'open' | 'won' | 'lost' {
  const sem = (s?.SEMANTICS ?? '').toUpperCase();
  const extra = (s?.EXTRA?.SEMANTICS ?? '').toLowerCase();
  if (sem === 'S' || extra === 'success') return 'won';
  if (sem === 'F' || extra === 'failure' || extra === 'apology') return 'lost';
  return 'open';
}

function userRef(id: unknown, l: BLookups) {
  const key = str(id);
  if (!key) return null;
  return { id: num(key)!, name: l.users.get(key)?.name ?? null };
}

function customValues(row: Row, fields: Record<string, BField>): CustomFieldValue[] {
  const out: CustomFieldValue[] = [];
  for (const [k, v] of Object.entries(row)) {
    if (!k.startsWith('UF_') || v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    const def = fields[k];
    const raw = Array.isArray(v) ? v : [v];
    const values = raw.map((x) => {
      if (def?.type === 'date' && typeof x === 'string') return portalDate(x) ?? x;
      const label = def?.items?.find((i) => i.ID === String(x))?.VALUE;
      if (label) return label;
      return typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean' ? x : JSON.stringify(x);
    });
    // The UF_CRM_* name is the id: no separate `code`.
    out.push({ id: k, name: def?.formLabel || def?.listLabel || def?.title || k, values });
  }
  return out;
}

export function mapDeal(r: Row, l: BLookups): Lead {
  const cat = Number(r.CATEGORY_ID ?? 0);
  const stageId = str(r.STAGE_ID);
  const stage = stageId ? l.stages.get(stageId) : undefined;
  const companyId = num(r.COMPANY_ID);
  const closed = moment(r.CLOSEDATE, l.dealFields.CLOSEDATE ?? { type: 'date' });
  return {
    id: num(r.ID)!,
    entity: 'deal',
    name: str(r.TITLE) ?? '',
    price: r.OPPORTUNITY !== undefined && r.OPPORTUNITY !== null && r.OPPORTUNITY !== '' ? Number(r.OPPORTUNITY) : null,
    pipeline: { id: cat, name: l.categories.get(cat)?.name ?? null },
    stage: stageId ? { id: stageId, name: stage?.NAME ?? null, type: stage ? stageType(stage) : null } : null,
    responsible: userRef(r.ASSIGNED_BY_ID, l),
    tags: [],
    contact_ids: [num(r.CONTACT_ID)].filter((x): x is Id => x !== null && x !== 0),
    company: companyId && companyId !== 0 ? { id: companyId, name: null } : null,
    custom_fields: customValues(r, l.dealFields),
    created_at: iso(r.DATE_CREATE),
    updated_at: iso(r.DATE_MODIFY),
    // CLOSEDATE is a `date` field (crm.deal.fields), the day the deal closed in the portal's zone.
    ...(r.CLOSED === 'Y' && closed ? { closed_at: closed } : {}),
    url: recordUrl(l.web, 'deal', num(r.ID)!),
  };
}

export const LEAD_PIPELINE = { id: 'leads', name: 'Leads' } as const;

export function mapLeadRow(r: Row, l: BLookups): Lead {
  const statusId = str(r.STATUS_ID);
  const status = statusId ? l.stages.get(`STATUS:${statusId}`) : undefined;
  const companyId = num(r.COMPANY_ID);
  const closed = moment(r.DATE_CLOSED, l.leadFields.DATE_CLOSED);
  return {
    id: num(r.ID)!,
    entity: 'lead',
    name: str(r.TITLE) ?? '',
    price: r.OPPORTUNITY !== undefined && r.OPPORTUNITY !== null && r.OPPORTUNITY !== '' ? Number(r.OPPORTUNITY) : null,
    pipeline: { ...LEAD_PIPELINE },
    stage: statusId ? { id: statusId, name: status?.NAME ?? null, type: status ? stageType(status) : null } : null,
    responsible: userRef(r.ASSIGNED_BY_ID, l),
    tags: [],
    contact_ids: [num(r.CONTACT_ID)].filter((x): x is Id => x !== null && x !== 0),
    company: companyId && companyId !== 0 ? { id: companyId, name: str(r.COMPANY_TITLE) } : null,
    custom_fields: customValues(r, l.leadFields),
    created_at: iso(r.DATE_CREATE),
    updated_at: iso(r.DATE_MODIFY),
    ...(closed ? { closed_at: closed } : {}),
    url: recordUrl(l.web, 'lead', num(r.ID)!),
  };
}

/**
 * A contact; `leadIds` are its deals and leads when they were read. Without them `lead_ids` is left out (list
 * items): an empty list would say "no leads".
 */
export function mapContact(r: Row, l: BLookups, leadIds: Id[]): Contact;
export function mapContact(r: Row, l: BLookups): ContactItem;
export function mapContact(r: Row, l: BLookups, leadIds?: Id[]): ContactItem {
  const first = str(r.NAME);
  const last = str(r.LAST_NAME);
  const companyId = num(r.COMPANY_ID);
  return {
    id: num(r.ID)!,
    name: [first, str(r.SECOND_NAME), last].filter(Boolean).join(' '),
    first_name: first,
    last_name: last,
    phones: multi(r.PHONE),
    emails: multi(r.EMAIL),
    company: companyId && companyId !== 0 ? { id: companyId, name: null } : null,
    responsible: userRef(r.ASSIGNED_BY_ID, l),
    tags: [],
    ...(leadIds ? { lead_ids: leadIds } : {}),
    custom_fields: customValues(r, l.contactFields),
    created_at: iso(r.DATE_CREATE),
    updated_at: iso(r.DATE_MODIFY),
    url: recordUrl(l.web, 'contact', num(r.ID)!),
  };
}

/** A company; its contact and lead ids only when they were read (see mapContact). */
export function mapCompany(r: Row, l: BLookups, links: { contact_ids: Id[]; lead_ids: Id[] }): Company;
export function mapCompany(r: Row, l: BLookups): CompanyItem;
export function mapCompany(r: Row, l: BLookups, links?: { contact_ids: Id[]; lead_ids: Id[] }): CompanyItem {
  return {
    id: num(r.ID)!,
    name: str(r.TITLE) ?? '',
    phones: multi(r.PHONE),
    emails: multi(r.EMAIL),
    responsible: userRef(r.ASSIGNED_BY_ID, l),
    tags: [],
    ...(links ? { contact_ids: links.contact_ids, lead_ids: links.lead_ids } : {}),
    custom_fields: customValues(r, l.companyFields),
    created_at: iso(r.DATE_CREATE),
    updated_at: iso(r.DATE_MODIFY),
    url: recordUrl(l.web, 'company', num(r.ID)!),
  };
}

export function mapUser(r: Row): User {
  const name = [str(r.NAME), str(r.LAST_NAME)].filter(Boolean).join(' ') || str(r.EMAIL) || `User ${String(r.ID)}`;
  return {
    id: num(r.ID)!,
    name,
    email: str(r.EMAIL),
    is_admin: typeof r.ADMIN === 'boolean' ? r.ADMIN : r.IS_ADMIN === 'Y' ? true : r.IS_ADMIN === 'N' ? false : null,
    is_active: typeof r.ACTIVE === 'boolean' ? r.ACTIVE : r.ACTIVE === 'Y' ? true : r.ACTIVE === 'N' ? false : null,
  };
}

export function mapPipelines(categories: BCategory[], stages: BStatus[], leadStatuses: BStatus[] | null): Pipeline[] {
  const out: Pipeline[] = categories
    .slice()
    .sort((a, b) => a.sort - b.sort || a.id - b.id)
    .map((c) => {
      const entityId = c.id === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${c.id}`;
      return {
        id: c.id,
        entity: 'deal' as const,
        name: c.name,
        is_main: c.isDefault === 'Y' || c.id === 0,
        sort: c.sort,
        stages: stages
          .filter((s) => s.ENTITY_ID === entityId)
          .sort((a, b) => Number(a.SORT) - Number(b.SORT))
          .map((s) => ({ id: s.STATUS_ID, name: s.NAME, sort: Number(s.SORT), type: stageType(s), color: s.COLOR ?? s.EXTRA?.COLOR ?? null })),
      };
    });
  if (leadStatuses) {
    out.push({
      id: LEAD_PIPELINE.id,
      entity: 'lead',
      name: LEAD_PIPELINE.name,
      is_main: false,
      sort: 100_000,
      stages: leadStatuses
        .slice()
        .sort((a, b) => Number(a.SORT) - Number(b.SORT))
        .map((s) => ({ id: s.STATUS_ID, name: s.NAME, sort: Number(s.SORT), type: stageType(s), color: s.COLOR ?? s.EXTRA?.COLOR ?? null })),
    });
  }
  return out;
}

export function mapFieldDefs(fields: Record<string, BField>, entity: string): CustomFieldDef[] {
  return Object.entries(fields)
    .filter(([k, f]) => k.startsWith('UF_') || f.isDynamic)
    .map(([k, f]) => ({
      id: k,
      name: f.formLabel || f.listLabel || f.title || k,
      code: k,
      type: f.type,
      entity,
      is_required: f.isRequired ?? null,
      ...(f.items ? { options: f.items.map((i) => ({ id: num(i.ID)!, value: i.VALUE })) } : {}),
    }));
}

/**
 * PHP-style query string for batch commands (§4.2): nested objects and arrays become bracket keys,
 * e.g. {filter: {'>ID': 5}, select: ['ID']} → `filter[>ID]=5&select[0]=ID`.
 */
export function phpQuery(params: Record<string, unknown>): string {
  const parts: string[] = [];
  const walk = (prefix: string, v: unknown) => {
    if (v === undefined || v === null) return;
    if (Array.isArray(v)) v.forEach((x, i) => walk(`${prefix}[${i}]`, x));
    else if (typeof v === 'object') for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(`${prefix}[${k}]`, x);
    else parts.push(`${encodeKey(prefix)}=${encodeValue(String(v))}`);
  };
  for (const [k, v] of Object.entries(params)) walk(k, v);
  return parts.join('&');
}

// Brackets stay literal (readable and accepted); `$result[...]` references must stay literal too.
function encodeKey(k: string): string {
  return encodeURIComponent(k).replace(/%5B/g, '[').replace(/%5D/g, ']');
}

function encodeValue(v: string): string {
  if (/^\$(result|next|total|time|error)\[/i.test(v)) return v;
  return encodeURIComponent(v);
}
