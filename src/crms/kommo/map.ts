/**
 * Kommo ⇄ domain mapping, and nowhere else. Kommo's language inside (custom_fields_values, _embedded,
 * Unix seconds), the domain's outside (phones/emails flattened, names beside ids, ISO dates).
 */
import type { Company, Contact, CustomFieldDef, CustomFieldValue, Id, Lead, Pipeline, Ref, Tag, User } from '../types.js';
import type { KCustomField, KCustomFieldValue, KLead, KContact, KPipeline, KStatus, KUser } from './schemas.js';

// The payload types are the lenient schemas' (schemas.ts): what the API layer has parsed is what is mapped.
export type { KCustomField, KCustomFieldValue, KContact, KEmbeddedRef, KLead, KPipeline, KStatus, KUser } from './schemas.js';

export const WON = 142;
export const LOST = 143;

/** Lookups used to put names beside ids. */
export interface Lookups {
  pipelines: Map<number, KPipeline>;
  users: Map<number, KUser>;
  /** The account's web address: the connection's configured origin (records' links are built on it). */
  web: string;
}

/** The account's web address from the connection's API base: its origin only. */
export function webOf(baseUrl: string): string {
  return new URL(baseUrl).origin;
}

/** The account's pages by record kind (singular, or the API's plural path). */
const PAGES: Record<string, 'leads' | 'contacts' | 'companies' | 'customers'> = {
  lead: 'leads',
  leads: 'leads',
  contact: 'contacts',
  contacts: 'contacts',
  company: 'companies',
  companies: 'companies',
  customer: 'customers',
  customers: 'customers',
};

/**
 * A record's page in Kommo's web interface, `https://{account}/leads/detail/{id}` (contacts, companies and
 * customers alike); null for a kind that has none. Kommo has no page per task: a task links its record's.
 */
export function recordUrl(web: string, entity: string, id: Id): string | null {
  const page = PAGES[entity];
  return page ? detailUrl(web, page, id) : null;
}

/** A lead's, contact's or company's page (the kinds every account has). */
export function detailUrl(web: string, page: 'leads' | 'contacts' | 'companies' | 'customers', id: Id): string {
  return `${web}/${page}/detail/${encodeURIComponent(String(id))}`;
}

export function iso(ts: number | null | undefined): string | null {
  return typeof ts === 'number' && ts > 0 ? new Date(ts * 1000).toISOString().replace('.000Z', 'Z') : null;
}

export function stageType(status: Pick<KStatus, 'id' | 'type'>): 'incoming' | 'open' | 'won' | 'lost' {
  if (status.id === WON) return 'won';
  if (status.id === LOST) return 'lost';
  return status.type === 1 ? 'incoming' : 'open';
}

function userRef(id: number | null | undefined, l: Lookups): Ref | null {
  if (!id) return null;
  return { id, name: l.users.get(id)?.name ?? null };
}

function cfValues(cfv: KCustomFieldValue[] | null | undefined, skipCodes: string[] = []): CustomFieldValue[] {
  return (cfv ?? [])
    .filter((f) => !f.field_code || !skipCodes.includes(f.field_code))
    .map((f) => ({
      id: f.field_id,
      name: f.field_name ?? String(f.field_id),
      // `code` only where the field has one (PHONE, EMAIL, …): fewer bytes in every result.
      ...(f.field_code ? { code: f.field_code } : {}),
      values: (f.values ?? []).map((v) =>
        typeof v.value === 'string' || typeof v.value === 'number' || typeof v.value === 'boolean' ? v.value : JSON.stringify(v.value ?? null),
      ),
    }));
}

export function multiValues(cfv: KCustomFieldValue[] | null | undefined, code: 'PHONE' | 'EMAIL'): string[] {
  const f = (cfv ?? []).find((x) => x.field_code === code);
  return (f?.values ?? []).map((v) => String(v.value ?? '')).filter(Boolean);
}

export function mapLead(raw: KLead, l: Lookups): Lead {
  const pipeline = raw.pipeline_id ? l.pipelines.get(raw.pipeline_id) : undefined;
  const status = pipeline?._embedded?.statuses?.find((s) => s.id === raw.status_id);
  const company = raw._embedded?.companies?.[0];
  return {
    id: raw.id,
    entity: 'lead',
    name: raw.name ?? '',
    price: raw.price ?? null,
    pipeline: raw.pipeline_id ? { id: raw.pipeline_id, name: pipeline?.name ?? null } : null,
    stage: raw.status_id
      ? {
          id: raw.status_id,
          name: status?.name ?? null,
          type: status ? stageType(status) : raw.status_id === WON ? 'won' : raw.status_id === LOST ? 'lost' : null,
        }
      : null,
    responsible: userRef(raw.responsible_user_id, l),
    tags: (raw._embedded?.tags ?? []).map((t) => t.name),
    contact_ids: (raw._embedded?.contacts ?? []).map((c) => c.id),
    company: company ? { id: company.id, name: null } : null,
    custom_fields: cfValues(raw.custom_fields_values),
    created_at: iso(raw.created_at),
    updated_at: iso(raw.updated_at),
    // Only closed leads carry closed_at (fewer bytes per open lead).
    ...(raw.closed_at ? { closed_at: iso(raw.closed_at) } : {}),
    url: detailUrl(l.web, 'leads', raw.id),
  };
}

export function mapContact(raw: KContact, l: Lookups): Contact {
  const company = raw._embedded?.companies?.[0];
  return {
    id: raw.id,
    name: raw.name ?? [raw.first_name, raw.last_name].filter(Boolean).join(' '),
    first_name: raw.first_name ?? null,
    last_name: raw.last_name ?? null,
    phones: multiValues(raw.custom_fields_values, 'PHONE'),
    emails: multiValues(raw.custom_fields_values, 'EMAIL'),
    company: company ? { id: company.id, name: null } : null,
    responsible: userRef(raw.responsible_user_id, l),
    tags: (raw._embedded?.tags ?? []).map((t) => t.name),
    lead_ids: (raw._embedded?.leads ?? []).map((x) => x.id),
    custom_fields: cfValues(raw.custom_fields_values, ['PHONE', 'EMAIL']),
    created_at: iso(raw.created_at),
    updated_at: iso(raw.updated_at),
    url: detailUrl(l.web, 'contacts', raw.id),
  };
}

export function mapCompany(raw: KContact, l: Lookups): Company {
  return {
    id: raw.id,
    name: raw.name ?? '',
    phones: multiValues(raw.custom_fields_values, 'PHONE'),
    emails: multiValues(raw.custom_fields_values, 'EMAIL'),
    responsible: userRef(raw.responsible_user_id, l),
    tags: (raw._embedded?.tags ?? []).map((t) => t.name),
    contact_ids: (raw._embedded?.contacts ?? []).map((x) => x.id),
    lead_ids: (raw._embedded?.leads ?? []).map((x) => x.id),
    custom_fields: cfValues(raw.custom_fields_values, ['PHONE', 'EMAIL']),
    created_at: iso(raw.created_at),
    updated_at: iso(raw.updated_at),
    url: detailUrl(l.web, 'companies', raw.id),
  };
}

export function mapPipeline(p: KPipeline): Pipeline {
  return {
    id: p.id,
    entity: 'lead',
    name: p.name,
    is_main: !!p.is_main,
    sort: p.sort,
    stages: (p._embedded?.statuses ?? [])
      .slice()
      .sort((a, b) => a.sort - b.sort)
      .map((s) => ({ id: s.id, name: s.name, sort: s.sort, type: stageType(s), color: s.color ?? null })),
  };
}

export function mapUser(u: KUser): User {
  return { id: u.id, name: u.name, email: u.email ?? null, is_admin: u.rights?.is_admin ?? null, is_active: u.rights?.is_active ?? null };
}

export function mapFieldDef(f: KCustomField, entity: string): CustomFieldDef {
  return {
    id: f.id,
    name: f.name,
    code: f.code ?? null,
    type: f.type,
    entity,
    is_api_only: f.is_api_only ?? null,
    ...(f.enums ? { options: f.enums.map((e) => ({ id: e.id, value: e.value })) } : {}),
  };
}

export function mapTag(t: { id: number; name: string; color?: string | null }): Tag {
  return { id: t.id, name: t.name, color: t.color ?? null };
}

/** Kommo's write shape for custom field values. */
export interface KCustomFieldWrite {
  field_id?: number;
  field_code?: string;
  values: Array<{ value?: string | number | boolean; enum_id?: number; enum_code?: string }>;
}

/** Phones/emails are multitext fields addressed by code (§6). */
export function multiField(code: 'PHONE' | 'EMAIL', values: Array<{ value: string; enum_code?: string }>): KCustomFieldWrite {
  return { field_code: code, values: values.map((v) => ({ value: v.value, enum_code: v.enum_code ?? 'WORK' })) };
}
