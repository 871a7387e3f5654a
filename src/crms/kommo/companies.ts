/**
 * Kommo company writes: the steps of create_company (services/create-company.ts runs them), update_company,
 * and linking a contact to a company. `kommoCompanyWrites` is the rest of the provider's companies group
 * (contacts.ts `kommoCompanies` has the reads).
 */
import { randomUUID } from 'node:crypto';
import { CrmError, validationError } from '../../domain/errors.js';
import { requireChanges } from '../../domain/validate.js';
import { normalizePhone, parsePhoneNumberFromString, sameEmail, samePhone } from '../../util/phone.js';
import type {
  CallContext,
  CompaniesApi,
  Company,
  CompanyPrimitives,
  ContactCompanyLink,
  LinkContactToCompanyInput,
  Ref,
  UpdateCompanyInput,
  WriteResult,
} from '../types.js';
import { editMultiField, getCompany, getContact } from './contacts.js';
import { resolveFields } from './fields.js';
import { toId } from './ids.js';
import { mapCompany, multiField, type KCustomFieldWrite } from './map.js';
import type { KommoParts } from './metadata.js';
import { PAGE_MAX } from './api.js';
import { rawEntity } from './records.js';
import { createdId, KContact } from './schemas.js';
import { resolveTags, type TagRef } from './tags.js';
import { clearsCustomField, removalNeedsDelete } from './write-checks.js';

const valuesOf = (c: KContact, code: 'PHONE' | 'EMAIL') =>
  ((c.custom_fields_values ?? []).find((f) => f.field_code === code)?.values ?? []).map((v) => String(v.value ?? ''));

async function byQuery(k: KommoParts, ctx: CallContext, text: string): Promise<KContact[]> {
  const q = new URLSearchParams({ query: text, with: 'contacts,leads', limit: String(PAGE_MAX) });
  return (await k.api.page(ctx, '/api/v4/companies', 'companies', q, KContact)).items;
}

/**
 * The `query` texts of a phone, tried in order until one finds it: `query` is a substring search over every
 * filled field (§6), so the national digits come first, then the subscriber part as people group it.
 */
function phoneTexts(e164: string, national: string): string[] {
  const out = new Set<string>([national]);
  const rest = parsePhoneNumberFromString(e164)?.formatInternational().split(/\s+/).slice(2) ?? [];
  if (rest.length > 1) for (const t of [rest.join('-'), rest.join(' '), rest.join('')]) if (t.replace(/\D+/g, '').length >= 5) out.add(t);
  return [...out];
}

/** Companies whose PHONE/EMAIL field holds this phone or email: Kommo's `query` (§6), then an exact check. */
export async function searchCompanies(k: KommoParts, ctx: CallContext, q: { email?: string; phone?: string }): Promise<KContact[]> {
  const country = await k.meta.defaultCountry(ctx);
  const found = new Map<number, KContact>();
  const n = q.phone ? normalizePhone(q.phone, country) : undefined;
  if (n) {
    for (const text of phoneTexts(n.e164, n.national)) {
      for (const c of await byQuery(k, ctx, text)) if (valuesOf(c, 'PHONE').some((v) => samePhone(v, n.e164, country))) found.set(c.id, c);
      if (found.size) break;
    }
  }
  if (q.email) {
    for (const c of await byQuery(k, ctx, q.email.trim())) if (valuesOf(c, 'EMAIL').some((v) => sameEmail(v, q.email!))) found.set(c.id, c);
  }
  // The oldest first: the one people have been using.
  return [...found.values()].sort((a, b) => a.id - b.id);
}

interface KommoCompanyDraft {
  responsible: number | undefined;
  fields: KCustomFieldWrite[] | undefined;
  tags: TagRef[] | undefined;
}

/** The steps of create_company that are Kommo's own (services/create-company.ts runs them in order). */
export function companySteps(k: KommoParts): CompanyPrimitives<KommoCompanyDraft, unknown[]> {
  const existing = async (ctx: CallContext, q: { email?: string; phone?: string }) => {
    const found = (await searchCompanies(k, ctx, q))[0];
    return found ? mapCompany(found, await k.meta.lookups(ctx)) : undefined;
  };
  return {
    country: (ctx) => k.meta.defaultCountry(ctx),
    prepare: async (ctx, input) => ({
      responsible: await k.meta.checkUser(ctx, input.responsible_user_id),
      fields: await resolveFields(k, ctx, 'companies', input.custom_fields),
      tags: await resolveTags(k, ctx, 'companies', input.tags, 'tags'),
    }),
    findExisting: existing,
    // §5.3/§6: a JSON array of records; phones and emails are the PHONE/EMAIL multitext fields; tags by id (§9).
    build: ({ draft, input, name, phone }) => [
      {
        name,
        ...(draft.responsible ? { responsible_user_id: draft.responsible } : {}),
        custom_fields_values: [
          ...(phone ? [multiField('PHONE', [{ value: phone.e164 }])] : []),
          ...(input.email ? [multiField('EMAIL', [{ value: input.email.trim() }])] : []),
          ...(draft.fields ?? []),
        ],
        ...(draft.tags ? { _embedded: { tags: draft.tags } } : {}),
        request_id: `crm-mcp-${randomUUID()}`,
      },
    ],
    plan: (body) => k.api.plan('POST', '/api/v4/companies', body),
    async send(ctx, body) {
      const id = createdId(await k.api.call<unknown>(ctx, 'POST', '/api/v4/companies', { body, op: 'create' }), 'companies');
      if (!id) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the company but returned no id; search for it before retrying.' });
      return id;
    },
    findJustCreated: existing,
    getCompany: (ctx, id) => getCompany(k, ctx, id),
  };
}

export async function updateCompany(k: KommoParts, ctx: CallContext, input: UpdateCompanyInput): Promise<WriteResult<Company>> {
  const id = toId(input.id, 'id');
  if (input.tags_to_delete?.length) removalNeedsDelete(ctx, 'tags_to_delete', 'removing tags from a company');
  const current = await rawEntity(k, ctx, 'companies', id, 'contacts,leads');
  const country = await k.meta.defaultCountry(ctx);
  const responsible = await k.meta.checkUser(ctx, input.responsible_user_id);
  const fields = (await resolveFields(k, ctx, 'companies', input.custom_fields)) ?? [];
  // A field's values sent on PATCH replace its values (§5.4): send the existing ones plus/minus the changes.
  const multi = (code: 'PHONE' | 'EMAIL', add: string[] | undefined, remove: string[] | undefined) =>
    editMultiField(current, country, code, add, remove, (r) => {
      throw validationError(`${code === 'PHONE' ? 'phones' : 'emails'}_to_remove: ${r} is not on company ${id}.`);
    });
  const phones = multi('PHONE', input.phones_to_add, input.phones_to_remove);
  const emails = multi('EMAIL', input.emails_to_add, input.emails_to_remove);
  const cfv = [...(phones ? [phones] : []), ...(emails ? [emails] : []), ...fields];
  if (cfv.some(clearsCustomField))
    removalNeedsDelete(
      ctx,
      phones?.values.length === 0 ? 'phones_to_remove' : emails?.values.length === 0 ? 'emails_to_remove' : 'custom_fields',
      'clearing a field',
    );
  const tagsToAdd = await resolveTags(k, ctx, 'companies', input.tags_to_add, 'tags_to_add');
  const body: Record<string, unknown> = {
    ...(input.name !== undefined ? { name: input.name.trim() } : {}),
    ...(responsible ? { responsible_user_id: responsible } : {}),
    ...(cfv.length ? { custom_fields_values: cfv } : {}),
    ...(tagsToAdd ? { tags_to_add: tagsToAdd } : {}),
    ...(input.tags_to_delete?.length ? { tags_to_delete: input.tags_to_delete.map((name) => ({ name })) } : {}),
  };
  requireChanges(body);
  const path = `/api/v4/companies/${id}`;
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [k.api.plan('PATCH', path, body)] };
  await k.api.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
  return { item: await getCompany(k, ctx, id) };
}

/**
 * `POST /api/v4/contacts/{id}/link` with `to_entity_type: companies` (§12, Kommo's "Links between entities"):
 * it changes the contact's company link and nothing else, where a PATCH of the contact's `_embedded` would
 * rewrite everything `_embedded` holds (§5.4). A Kommo contact has one company, so a link to another company
 * replaces the one it had: that is a removal, done only when asked (`replace_existing`) under a delete grant.
 */
export async function linkContactToCompany(k: KommoParts, ctx: CallContext, input: LinkContactToCompanyInput): Promise<ContactCompanyLink> {
  const contactId = toId(input.contact_id, 'contact_id');
  const companyId = toId(input.company_id, 'company_id');
  const contact = await rawEntity(k, ctx, 'contacts', contactId, 'leads');
  const company = await getCompany(k, ctx, companyId);
  const currentId = contact._embedded?.companies?.[0]?.id;
  if (currentId === companyId) {
    return {
      linked: false,
      contact: await getContact(k, ctx, contactId),
      company,
      replaced: null,
      note: 'The contact already is linked to this company; nothing was sent.',
    };
  }
  let replaced: Ref | null = null;
  if (currentId) {
    const [old] = await k.api.byIds(ctx, 'companies', [currentId], KContact);
    replaced = { id: currentId, name: old?.name ?? null };
    const was = `company ${currentId}${old?.name ? ` ("${old.name}")` : ''}`;
    if (!input.replace_existing) {
      throw validationError(
        `contact ${contactId} is linked to ${was}, and a Kommo contact has one company: linking it to company ${companyId} would unlink it from ${was}. Nothing was sent. To replace the link, call again with replace_existing: true (a removal, so it needs CRM_ALLOW_DELETE=true).`,
      );
    }
    if (!ctx.grant.has('delete')) removalNeedsDelete(ctx, 'replace_existing', `unlinking the contact from ${was}`);
  }
  const path = `/api/v4/contacts/${contactId}/link`;
  const body = [{ to_entity_id: companyId, to_entity_type: 'companies' }];
  const note = replaced
    ? `Kommo keeps one company per contact: the contact is no longer linked to company ${String(replaced.id)}${replaced.name ? ` ("${replaced.name}")` : ''}.`
    : undefined;
  if (ctx.dryRun)
    return { dry_run: true, linked: false, contact: null, company, replaced, ...(note ? { note } : {}), requests: [k.api.plan('POST', path, body)] };
  // Linking twice leaves one link, so a retry after a lost answer is safe.
  await k.api.call(ctx, 'POST', path, { body, op: 'idempotent' });
  const [after, co] = [await getContact(k, ctx, contactId), await getCompany(k, ctx, companyId)];
  return { linked: true, contact: after, company: co, replaced, ...(note ? { note } : {}) };
}

/** The writes of a Kommo provider's companies group (capabilities.ts CompaniesApi). */
export function kommoCompanyWrites(k: KommoParts): Pick<CompaniesApi, 'updateCompany' | 'linkContactToCompany' | 'createCompanySteps'> {
  return {
    updateCompany: (ctx, input) => updateCompany(k, ctx, input),
    linkContactToCompany: (ctx, input) => linkContactToCompany(k, ctx, input),
    createCompanySteps: companySteps(k),
  };
}
