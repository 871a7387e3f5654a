/**
 * Kommo contacts and companies: lists, one record, the steps of a create (services/create-contact.ts runs them)
 * and updates. `kommoContacts` and `kommoCompanies` are the provider's groups.
 */
import { randomUUID } from 'node:crypto';
import { CrmError } from '../../domain/errors.js';
import { emailToAdd, notOnContact, phoneToAdd, requireChanges } from '../../domain/validate.js';
import { sameEmail, samePhone } from '../../util/phone.js';
import type {
  CallContext,
  CompaniesApi,
  Company,
  Contact,
  ContactPrimitives,
  ContactsApi,
  Id,
  ListQuery,
  Page,
  UpdateContactInput,
  WriteResult,
} from '../types.js';
import { resolveFields } from './fields.js';
import { toId } from './ids.js';
import { mapCompany, mapContact, multiField, type KCustomFieldWrite } from './map.js';
import type { KommoParts } from './metadata.js';
import { PARTY_ORDER } from './paging.js';
import { nameCompanies, rawEntity } from './records.js';
import { createdId, KContact } from './schemas.js';
import { findCompany, looksLikePhone, searchContacts } from './search.js';
import { resolveTags, type TagRef } from './tags.js';
import { clearsCustomField, removalNeedsDelete } from './write-checks.js';

export async function listContacts(k: KommoParts, ctx: CallContext, q: ListQuery): Promise<Page<Contact>> {
  const [orderKey, dir] = PARTY_ORDER[q.sort ?? 'created_desc'];
  const params: Array<[string, string]> = [
    ['with', 'leads'],
    [`order[${orderKey}]`, dir],
  ];
  const text = q.query?.trim();
  const l = await k.meta.lookups(ctx);
  const done = async (raw: KContact[], has_more: boolean, cursor: string | null): Promise<Page<Contact>> => {
    const items = raw.map((x) => mapContact(x, l));
    await nameCompanies(k, ctx, items);
    return { items, has_more, cursor, total: null };
  };
  // "Phone in any format": Kommo's `query` matches a phone only as stored (§6), so a phone-like query goes
  // through the duplicate check's search (search.ts: the same variants, then an exact comparison); one page.
  if (text && !q.cursor && looksLikePhone(text)) {
    const { contacts } = await searchContacts(k, ctx, { phone: text });
    if (contacts.length) {
      const ord = (c: KContact) => (orderKey === 'id' ? c.id : (c.updated_at ?? 0));
      const sorted = contacts.sort((a, b) => (dir === 'asc' ? ord(a) - ord(b) : ord(b) - ord(a)));
      return done(sorted.slice(0, q.limit), false, null);
    }
  }
  if (text) params.push(['query', text]);
  const page = await k.api.listPage(ctx, '/api/v4/contacts', 'contacts', KContact, params, q.limit, q.cursor);
  // "Either word order": `query` is one substring (§6), so "Smirnov Pavel" misses "Pavel Smirnov". A two-word
  // name whose first page is not full also reads the reversed order, merged by id (one more request at most).
  const words = text?.split(/\s+/) ?? [];
  if (q.cursor || page.has_more || words.length !== 2 || looksLikePhone(text!) || text!.includes('@')) {
    return done(page.items, page.has_more, page.cursor);
  }
  const rev: Array<[string, string]> = [...params.slice(0, -1), ['query', `${words[1]} ${words[0]}`]];
  const other = await k.api.listPage(ctx, '/api/v4/contacts', 'contacts', KContact, rev, q.limit);
  const seen = new Set(page.items.map((x) => x.id));
  const merged = [...page.items, ...other.items.filter((x) => !seen.has(x.id))];
  // The as-typed page was the last one, so what follows is the reversed order's (its cursor).
  return done(merged, other.has_more, other.cursor);
}

export async function getContact(k: KommoParts, ctx: CallContext, id: Id): Promise<Contact> {
  const raw = await rawEntity(k, ctx, 'contacts', id, 'leads');
  const l = await k.meta.lookups(ctx);
  const c = mapContact(raw, l);
  if (c.company) {
    const [co] = await k.api.byIds(ctx, 'companies', [Number(c.company.id)], KContact);
    if (co) c.company = { id: co.id, name: co.name ?? null };
  }
  return c;
}

export async function listCompanies(k: KommoParts, ctx: CallContext, q: ListQuery): Promise<Page<Company>> {
  const [orderKey, dir] = PARTY_ORDER[q.sort ?? 'created_desc'];
  const params: Array<[string, string]> = [
    ['with', 'contacts,leads'],
    [`order[${orderKey}]`, dir],
  ];
  if (q.query) params.push(['query', q.query]);
  const page = await k.api.listPage(ctx, '/api/v4/companies', 'companies', KContact, params, q.limit, q.cursor);
  const l = await k.meta.lookups(ctx);
  return { items: page.items.map((x) => mapCompany(x, l)), has_more: page.has_more, cursor: page.cursor, total: null };
}

export async function getCompany(k: KommoParts, ctx: CallContext, id: Id): Promise<Company> {
  return mapCompany(await rawEntity(k, ctx, 'companies', id, 'contacts,leads'), await k.meta.lookups(ctx));
}

interface KommoContactDraft {
  responsible: number | undefined;
  fields: KCustomFieldWrite[] | undefined;
  tags: TagRef[] | undefined;
}

/** The steps of create_contact that are Kommo's own (services/create-contact.ts runs them in order). */
export function contactSteps(k: KommoParts): ContactPrimitives<KommoContactDraft, unknown[]> {
  const existing = async (ctx: CallContext, q: { email?: string; phone?: string }) => {
    const found = (await searchContacts(k, ctx, q)).contacts[0];
    return found ? mapContact(found, await k.meta.lookups(ctx)) : undefined;
  };
  const send = (ctx: CallContext, body: unknown[]) => k.api.call<unknown>(ctx, 'POST', '/api/v4/contacts', { body, op: 'create' });
  return {
    country: (ctx) => k.meta.defaultCountry(ctx),
    prepare: async (ctx, input) => ({
      responsible: await k.meta.checkUser(ctx, input.responsible_user_id),
      fields: await resolveFields(k, ctx, 'contacts', input.custom_fields),
      tags: await resolveTags(k, ctx, 'contacts', input.tags, 'tags'),
    }),
    findExisting: existing,
    findCompany: (ctx, name) => findCompany(k, ctx, name),
    noCompanyHint: "Create the lead with a company, or use an existing company's exact name.",
    build: ({ draft, input, person, name, phone, companyId }) => [
      {
        name,
        ...(person.first ? { first_name: person.first } : {}),
        ...(person.last ? { last_name: person.last } : {}),
        ...(draft.responsible ? { responsible_user_id: draft.responsible } : {}),
        custom_fields_values: [
          ...(phone ? [multiField('PHONE', [{ value: phone.e164 }])] : []),
          ...(input.email ? [multiField('EMAIL', [{ value: input.email.trim() }])] : []),
          ...(draft.fields ?? []),
        ],
        _embedded: {
          ...(draft.tags ? { tags: draft.tags } : {}),
          ...(companyId ? { companies: [{ id: companyId }] } : {}),
        },
        request_id: `crm-mcp-${randomUUID()}`,
      },
    ],
    plan: (body) => k.api.plan('POST', '/api/v4/contacts', body),
    async send(ctx, body) {
      const id = createdId(await send(ctx, body), 'contacts');
      if (!id) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the contact but returned no id; search for it before retrying.' });
      return id;
    },
    findJustCreated: existing,
    getContact: (ctx, id) => getContact(k, ctx, id),
  };
}

/** The contacts group of a Kommo provider (capabilities.ts ContactsApi). */
export function kommoContacts(k: KommoParts): ContactsApi {
  return {
    listContacts: (ctx, q) => listContacts(k, ctx, q),
    getContact: (ctx, id) => getContact(k, ctx, id),
    updateContact: (ctx, input) => updateContact(k, ctx, input),
    createContactSteps: contactSteps(k),
  };
}

/** The companies group of a Kommo provider (capabilities.ts CompaniesApi). */
export function kommoCompanies(k: KommoParts): Pick<CompaniesApi, 'listCompanies' | 'getCompany'> {
  return { listCompanies: (ctx, q) => listCompanies(k, ctx, q), getCompany: (ctx, id) => getCompany(k, ctx, id) };
}

export async function updateContact(k: KommoParts, ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>> {
  const id = toId(input.id, 'id');
  if (input.tags_to_delete?.length) removalNeedsDelete(ctx, 'tags_to_delete', 'removing tags from a contact');
  const current = await rawEntity(k, ctx, 'contacts', id, 'leads');
  const country = await k.meta.defaultCountry(ctx);
  const responsible = await k.meta.checkUser(ctx, input.responsible_user_id);
  const fields = (await resolveFields(k, ctx, 'contacts', input.custom_fields)) ?? [];
  // Kommo replaces a field's values on PATCH: send the existing values plus/minus the requested changes,
  // so an update never silently drops phones or emails.
  const multi = (code: 'PHONE' | 'EMAIL', add: string[] | undefined, remove: string[] | undefined) =>
    editMultiField(current, country, code, add, remove, (r) => notOnContact(code, r, id));
  const phones = multi('PHONE', input.phones_to_add, input.phones_to_remove);
  const emails = multi('EMAIL', input.emails_to_add, input.emails_to_remove);
  const cfv = [...(phones ? [phones] : []), ...(emails ? [emails] : []), ...fields];
  // Removing a contact's last phone or email clears the field, like an emptied custom field.
  if (cfv.some(clearsCustomField))
    removalNeedsDelete(
      ctx,
      phones?.values.length === 0 ? 'phones_to_remove' : emails?.values.length === 0 ? 'emails_to_remove' : 'custom_fields',
      'clearing a field',
    );
  const tagsToAdd = await resolveTags(k, ctx, 'contacts', input.tags_to_add, 'tags_to_add');
  const body: Record<string, unknown> = {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.first_name !== undefined ? { first_name: input.first_name } : {}),
    ...(input.last_name !== undefined ? { last_name: input.last_name } : {}),
    ...(responsible ? { responsible_user_id: responsible } : {}),
    ...(cfv.length ? { custom_fields_values: cfv } : {}),
    ...(tagsToAdd ? { tags_to_add: tagsToAdd } : {}),
    ...(input.tags_to_delete?.length ? { tags_to_delete: input.tags_to_delete.map((name) => ({ name })) } : {}),
  };
  requireChanges(body);
  const path = `/api/v4/contacts/${id}`;
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [k.api.plan('PATCH', path, body)] };
  await k.api.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
  return { item: await getContact(k, ctx, id) };
}

/**
 * A phone or email field after adding and removing values. Kommo replaces a field's values on PATCH (§5.4), so
 * the existing values are sent plus/minus the change; a value to remove that the record lacks is `missing`'s
 * error. Undefined when nothing changes.
 */
export function editMultiField(
  current: {
    custom_fields_values?: Array<{
      field_code?: string | null;
      values?: Array<{ value?: unknown; enum_code?: string | null; enum?: string | null }> | null;
    }> | null;
  },
  country: Parameters<typeof samePhone>[2],
  code: 'PHONE' | 'EMAIL',
  add: string[] | undefined,
  remove: string[] | undefined,
  missing: (value: string) => never,
): KCustomFieldWrite | undefined {
  if (!add?.length && !remove?.length) return undefined;
  const same = code === 'PHONE' ? (a: string, b: string) => samePhone(a, b, country) : sameEmail;
  const existing = (current.custom_fields_values ?? []).find((f) => f.field_code === code)?.values ?? [];
  for (const r of remove ?? []) if (!existing.some((v) => same(String(v.value ?? ''), r))) missing(r);
  const kept = existing.filter((v) => !(remove ?? []).some((r) => same(String(v.value ?? ''), r)));
  const added = (add ?? []).map((a) => (code === 'PHONE' ? phoneToAdd(a, country) : emailToAdd(a)));
  return multiField(code, [
    ...kept.map((v) => ({ value: String(v.value ?? ''), enum_code: v.enum_code ?? v.enum ?? 'WORK' })),
    ...added.filter((a) => !kept.some((v) => same(String(v.value ?? ''), a))).map((value) => ({ value, enum_code: 'WORK' })),
  ]);
}
