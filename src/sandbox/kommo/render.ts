/**
 * Stored records → API JSON (fact sheet §4–§9): key order as in the fixtures, absolute `_links.self` on
 * every entity, `_embedded` extras only when `with=` asks for them. Also the `query` full-text search.
 */
import { type Ctx, href, selfLink } from './context.js';
import { contactsOf, leadsOf } from './store.js';
import type { KCompany, KContact, KCustomFieldValue, KLead, KTagRef } from './types.js';

const tags = (t: KTagRef[]) => t.map((x) => ({ id: x.id, name: x.name, color: x.color }));
const ref = (ctx: Ctx, entity: string, id: number) => ({ id, _links: selfLink(ctx, `/api/v4/${entity}/${id}`) });
const cfv = (v: KCustomFieldValue[] | null) => (v && v.length ? v.map((f) => ({ ...f, values: f.values.map((x) => ({ ...x })) })) : null);

export function renderLead(ctx: Ctx, l: KLead, w: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: l.id,
    name: l.name,
    price: l.price,
    responsible_user_id: l.responsible_user_id,
    group_id: l.group_id,
    status_id: l.status_id,
    pipeline_id: l.pipeline_id,
    loss_reason_id: l.loss_reason_id,
    source_id: l.source_id,
    created_by: l.created_by,
    updated_by: l.updated_by,
    created_at: l.created_at,
    updated_at: l.updated_at,
    closed_at: l.closed_at,
    closest_task_at: l.closest_task_at,
    is_deleted: l.is_deleted,
    custom_fields_values: cfv(l.custom_fields_values),
    score: l.score,
    account_id: l.account_id,
  };
  if (w.has('is_price_modified_by_robot')) out.is_price_modified_by_robot = l.is_price_modified_by_robot;
  out._links = selfLink(ctx, `/api/v4/leads/${l.id}`);
  const emb: Record<string, unknown> = { tags: tags(l._embedded.tags) };
  // The emulator has no catalogs or loss reasons: those `with` values give empty lists.
  if (w.has('catalog_elements')) emb.catalog_elements = [];
  if (w.has('loss_reason')) emb.loss_reason = [];
  emb.companies = l._embedded.companies.map((c) => ref(ctx, 'companies', c.id));
  // §5.1: with=contacts → `_embedded.contacts[{id, is_main, _links}]`.
  if (w.has('contacts')) emb.contacts = l._embedded.contacts.map((c) => ({ id: c.id, is_main: c.is_main, _links: selfLink(ctx, `/api/v4/contacts/${c.id}`) }));
  out._embedded = emb;
  return out;
}

export function renderContact(ctx: Ctx, c: KContact, w: Set<string>): Record<string, unknown> {
  const emb: Record<string, unknown> = { tags: tags(c._embedded.tags) };
  if (w.has('leads')) emb.leads = leadsOf(ctx.state, 'contacts', c.id).map((id) => ref(ctx, 'leads', id));
  if (w.has('customers')) emb.customers = [];
  if (w.has('catalog_elements')) emb.catalog_elements = [];
  emb.companies = c._embedded.companies.map((x) => ref(ctx, 'companies', x.id));
  return {
    id: c.id,
    name: c.name,
    first_name: c.first_name,
    last_name: c.last_name,
    responsible_user_id: c.responsible_user_id,
    group_id: c.group_id,
    created_by: c.created_by,
    updated_by: c.updated_by,
    created_at: c.created_at,
    updated_at: c.updated_at,
    closest_task_at: c.closest_task_at,
    custom_fields_values: cfv(c.custom_fields_values),
    account_id: c.account_id,
    _links: selfLink(ctx, `/api/v4/contacts/${c.id}`),
    _embedded: emb,
  };
}

export function renderCompany(ctx: Ctx, c: KCompany, w: Set<string>): Record<string, unknown> {
  const emb: Record<string, unknown> = { tags: tags(c._embedded.tags) };
  if (w.has('leads')) emb.leads = leadsOf(ctx.state, 'companies', c.id).map((id) => ref(ctx, 'leads', id));
  if (w.has('customers')) emb.customers = [];
  if (w.has('contacts')) emb.contacts = contactsOf(ctx.state, c.id).map((id) => ref(ctx, 'contacts', id));
  if (w.has('catalog_elements')) emb.catalog_elements = [];
  return {
    id: c.id,
    name: c.name,
    responsible_user_id: c.responsible_user_id,
    group_id: c.group_id,
    created_by: c.created_by,
    updated_by: c.updated_by,
    created_at: c.created_at,
    updated_at: c.updated_at,
    closest_task_at: c.closest_task_at,
    custom_fields_values: cfv(c.custom_fields_values),
    account_id: c.account_id,
    _links: selfLink(ctx, `/api/v4/companies/${c.id}`),
    _embedded: emb,
  };
}

/** The short `{id, request_id, _links}` items of POST responses (§5.3). */
export function createdRef(ctx: Ctx, entity: string, id: number, requestId: string): Record<string, unknown> {
  return { id, request_id: requestId, _links: { self: href(ctx, `/api/v4/${entity}/${id}`) } };
}

/**
 * `query` (§5.1, §6): a case-insensitive substring search over the filled fields (names, every custom field
 * value incl. PHONE/EMAIL), plus the id and price when equal to the query. The stored format matters:
 * `+7 912 345-67-89` does not contain `9123456789`. To match how practitioners query (§6: strip the
 * formatting, query the digits, post-filter on PHONE), a query of 5+ digits is ALSO matched against the
 * digits-only form of phone values — an emulator choice, since Kommo's exact algorithm is UNVERIFIED; with
 * `phoneQuery: 'as-stored'` (KommoBehaviour) it is not, the stricter reading.
 */
export function matchesQuery(
  rec: { id: number; name: string; custom_fields_values: KCustomFieldValue[] | null } & Partial<{ first_name: string; last_name: string; price: number }>,
  q: string,
  phoneQuery: 'digits' | 'as-stored' = 'digits',
): boolean {
  const needle = q.toLowerCase();
  if (String(rec.id) === q || (rec.price !== undefined && rec.price > 0 && String(rec.price) === q)) return true;
  const texts = [rec.name, rec.first_name ?? '', rec.last_name ?? ''];
  for (const f of rec.custom_fields_values ?? []) for (const v of f.values) texts.push(String(v.value));
  if (texts.some((t) => t.toLowerCase().includes(needle))) return true;
  if (phoneQuery === 'digits' && /^\d{5,}$/.test(q)) {
    for (const f of rec.custom_fields_values ?? []) {
      if (f.field_code !== 'PHONE') continue;
      if (f.values.some((v) => String(v.value).replace(/\D+/g, '').includes(q))) return true;
    }
  }
  return false;
}
