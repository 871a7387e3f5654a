/**
 * Bitrix24 company writes: the steps of create_company (services/create-company.ts runs them), update_company,
 * and binding a contact to a company. `bitrixCompanyWrites` is the rest of the provider's companies group
 * (contacts.ts `bitrixCompanies` has the reads).
 */
import { validationError } from '../../domain/errors.js';
import { checkSearchEmail, emailToAdd, phoneToAdd, requireChanges } from '../../domain/validate.js';
import { normalizePhone, phoneFormats, sameEmail, samePhone } from '../../util/phone.js';
import type {
  CallContext,
  CompaniesApi,
  Company,
  CompanyPrimitives,
  ContactCompanyLink,
  LinkContactToCompanyInput,
  UpdateCompanyInput,
  WriteResult,
} from '../types.js';
import { bitrixError } from './adapter.js';
import { getCompany, getContact } from './contacts.js';
import { resolveFields } from './fields.js';
import { bxId } from './ids.js';
import type { BMulti } from './map.js';
import { phpQuery } from './map.js';
import type { BitrixParts } from './metadata.js';
import { getRow } from './records.js';

const NO_TAGS = 'tags: Bitrix24 companies have no tags.';

/**
 * The ids of companies holding this phone or email: `crm.duplicate.findbycomm` with `entity_type: COMPANY`
 * (§7.7; asked per type, so leads and contacts with the number never crowd the companies out), the phone in
 * the formats people type (≤ 20 values a command), one batch.
 */
export async function companyIdsByComm(b: BitrixParts, ctx: CallContext, q: { email?: string; phone?: string }): Promise<number[]> {
  const l = await b.meta.lookups(ctx);
  checkSearchEmail(q.email);
  const cmd: Record<string, string> = {};
  const e164 = q.phone ? normalizePhone(q.phone, l.country)?.e164 : undefined;
  if (e164) cmd.phone = `crm.duplicate.findbycomm?${phpQuery({ type: 'PHONE', entity_type: 'COMPANY', values: phoneFormats(e164).slice(0, 20) })}`;
  if (q.email) {
    const e = q.email.trim();
    cmd.email = `crm.duplicate.findbycomm?${phpQuery({ type: 'EMAIL', entity_type: 'COMPANY', values: [...new Set([e, e.toLowerCase()])] })}`;
  }
  if (!Object.keys(cmd).length) return [];
  const r = await b.api.batch(ctx, cmd);
  const ids = new Set<number>();
  for (const k of Object.keys(cmd)) {
    const err = r.errors[k];
    if (err) throw bitrixError(err.error, err.error_description, 400);
    const v = r.result[k];
    // Nothing found is `[]` (§3, §7.7); hits are `{COMPANY: [ids]}`.
    if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
    for (const id of ((v as Record<string, unknown>).COMPANY as unknown[] | undefined) ?? []) ids.add(Number(id));
  }
  // The oldest first: the one people have been using.
  return [...ids].filter((n) => Number.isSafeInteger(n) && n > 0).sort((a, c) => a - c);
}

interface BitrixCompanyDraft {
  responsible: number | undefined;
  uf: Record<string, unknown>;
}

/** The steps of create_company that are Bitrix24's own (services/create-company.ts runs them in order). */
export function companySteps(b: BitrixParts): CompanyPrimitives<BitrixCompanyDraft, { fields: Record<string, unknown> }> {
  const existing = async (ctx: CallContext, q: { email?: string; phone?: string }) => {
    const [id] = await companyIdsByComm(b, ctx, q);
    return id === undefined ? undefined : getCompany(b, ctx, id);
  };
  return {
    country: async (ctx) => (await b.meta.lookups(ctx)).country,
    refuse: (input) => {
      if (input.tags?.length) throw validationError(NO_TAGS);
    },
    prepare: async (ctx, input) => ({
      responsible: await b.meta.checkUser(ctx, input.responsible_user_id),
      uf: await resolveFields(b, ctx, 'company', input.custom_fields),
    }),
    findExisting: existing,
    // §7.2 crm.company.add `fields`; phones and emails as multi-field items (§7.4).
    build: ({ draft, input, name, phone }) => ({
      fields: {
        TITLE: name,
        ...(phone ? { PHONE: [{ VALUE: phone.e164, VALUE_TYPE: 'WORK' }] } : {}),
        ...(input.email ? { EMAIL: [{ VALUE: input.email.trim(), VALUE_TYPE: 'WORK' }] } : {}),
        ...(draft.responsible ? { ASSIGNED_BY_ID: draft.responsible } : {}),
        ...draft.uf,
      },
    }),
    plan: (params) => b.api.plan('crm.company.add', params),
    send: async (ctx, params) => Number((await b.api.call<unknown>(ctx, 'crm.company.add', params)).result),
    findJustCreated: existing,
    getCompany: (ctx, id) => getCompany(b, ctx, id),
  };
}

export async function updateCompany(b: BitrixParts, ctx: CallContext, input: UpdateCompanyInput): Promise<WriteResult<Company>> {
  if (input.tags_to_add?.length || input.tags_to_delete?.length) throw validationError(NO_TAGS);
  const id = bxId(input.id);
  const current = await getRow(b, ctx, 'company', id);
  const country = (await b.meta.lookups(ctx)).country;
  const responsible = await b.meta.checkUser(ctx, input.responsible_user_id);
  const uf = await resolveFields(b, ctx, 'company', input.custom_fields);
  // §7.4, as update_contact sends it: items without ID are added, {ID, DELETE:'Y'} removes one, the rest stay.
  const edits = (type: 'PHONE' | 'EMAIL', add: string[] | undefined, remove: string[] | undefined) => {
    const have = Array.isArray(current[type]) ? (current[type] as BMulti[]) : [];
    const same = type === 'PHONE' ? (a: string, c: string) => samePhone(a, c, country) : sameEmail;
    const out: Array<Record<string, string>> = [];
    for (const r of remove ?? []) {
      const hit = have.filter((m) => same(m.VALUE ?? '', r));
      if (!hit.length) throw validationError(`${type === 'PHONE' ? 'phones' : 'emails'}_to_remove: ${r} is not on company ${id}.`);
      for (const m of hit) out.push({ ID: String(m.ID), DELETE: 'Y' });
    }
    for (const a of add ?? []) {
      const value = type === 'PHONE' ? phoneToAdd(a, country) : emailToAdd(a);
      if (!have.some((m) => same(m.VALUE ?? '', value))) out.push({ VALUE: value, VALUE_TYPE: 'WORK' });
    }
    return out.length ? { [type]: out } : {};
  };
  const fields = {
    ...(input.name !== undefined ? { TITLE: input.name.trim() } : {}),
    ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
    ...edits('PHONE', input.phones_to_add, input.phones_to_remove),
    ...edits('EMAIL', input.emails_to_add, input.emails_to_remove),
    ...uf,
  };
  requireChanges(fields);
  const params = { id, fields };
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [b.api.plan('crm.company.update', params)] };
  await b.api.call(ctx, 'crm.company.update', params);
  return { item: await getCompany(b, ctx, id) };
}

/**
 * `crm.contact.company.add` (§7.2 `crm.contact.company.*`): adds the binding and keeps the contact's other
 * companies (a Bitrix24 contact may have several), so nothing is removed and `replace_existing` has nothing
 * to replace. A binding that already exists is reported and not sent again.
 */
export async function linkContactToCompany(b: BitrixParts, ctx: CallContext, input: LinkContactToCompanyInput): Promise<ContactCompanyLink> {
  const contactId = bxId(input.contact_id, 'contact_id');
  const companyId = bxId(input.company_id, 'company_id');
  await getRow(b, ctx, 'contact', contactId);
  // getCompany reads the company's contacts through every binding (crm.company.contact.items.get).
  const company = await getCompany(b, ctx, companyId);
  if (company.contact_ids.some((c) => Number(c) === contactId)) {
    return {
      linked: false,
      contact: await getContact(b, ctx, contactId),
      company,
      replaced: null,
      note: 'The contact already is linked to this company; nothing was sent.',
    };
  }
  const params = { id: contactId, fields: { COMPANY_ID: companyId } };
  const note = "Bitrix24 contacts may have several companies: the contact's other companies stay linked.";
  if (ctx.dryRun)
    return { dry_run: true, linked: false, contact: null, company, replaced: null, note, requests: [b.api.plan('crm.contact.company.add', params)] };
  await b.api.call(ctx, 'crm.contact.company.add', params);
  return { linked: true, contact: await getContact(b, ctx, contactId), company: await getCompany(b, ctx, companyId), replaced: null, note };
}

/** The writes of a Bitrix24 provider's companies group (capabilities.ts CompaniesApi). */
export function bitrixCompanyWrites(b: BitrixParts): Pick<CompaniesApi, 'updateCompany' | 'linkContactToCompany' | 'createCompanySteps'> {
  return {
    updateCompany: (ctx, input) => updateCompany(b, ctx, input),
    linkContactToCompany: (ctx, input) => linkContactToCompany(b, ctx, input),
    createCompanySteps: companySteps(b),
  };
}
