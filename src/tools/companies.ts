/**
 * Companies on their own (toolset `companies`, off by default): create (duplicate-safe), update, and linking a
 * contact to a company. The reads (list_companies, get_company) are core tools (contacts.ts).
 */
import * as z from 'zod';
import { defineTool, dryRunField } from './define.js';
import { Company, Contact, Ref } from '../domain/records.js';
import { CreateCompanyArgs, LinkContactToCompanyArgs, PlannedRequests, UpdateCompanyArgs } from '../domain/inputs.js';
import type { Company as CompanyRecord } from '../domain/records.js';
import { createCompany as createCompanyFlow } from '../services/create-company.js';
import { DuplicateCheckField } from './leads.js';
import { updateEffect } from './common.js';

export const createCompany = defineTool({
  name: 'create_company',
  title: 'Create a company (duplicate-safe)',
  description:
    'Creates a company with a phone and/or email (phones stored in E.164), tags (Kommo) and custom fields. If a company with that email or phone already exists it is returned with `created: false` instead; with neither, no duplicate check is possible (`duplicate_check` says so). Use dry_run to preview.',
  effect: 'create',
  toolset: 'companies',
  requires: ['companies'],
  input: CreateCompanyArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    created: z.boolean(),
    dry_run: z.boolean().optional(),
    company: Company.nullable(),
    reason: z.string().optional(),
    duplicate_check: DuplicateCheckField,
    requests: PlannedRequests,
  }),
  async handler(args, { provider, ctx, identityLock }) {
    const { dry_run: _d, ...input } = args;
    // The workflow (services/create-company.ts) over this CRM's own steps, under the phone/email lock.
    return createCompanyFlow(provider.createCompanySteps, ctx, input, identityLock);
  },
});

/** The audit log's prior values of the fields an update_company call changes. */
function companyPrior(c: CompanyRecord, args: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, [string, unknown]> = {
    name: ['name', c.name],
    responsible_user_id: ['responsible_user_id', c.responsible?.id ?? null],
    phones_to_add: ['phones', c.phones],
    phones_to_remove: ['phones', c.phones],
    emails_to_add: ['emails', c.emails],
    emails_to_remove: ['emails', c.emails],
    tags_to_add: ['tags', c.tags],
    tags_to_delete: ['tags', c.tags],
    custom_fields: ['custom_fields', c.custom_fields],
  };
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(args)) if (fields[k]) out[fields[k][0]] = fields[k][1];
  return out;
}

export const updateCompany = defineTool({
  name: 'update_company',
  title: 'Update a company',
  description:
    'Changes an existing company. Phones and emails are edited incrementally (phones_to_add/phones_to_remove, emails_to_add/emails_to_remove): existing ones are kept unless explicitly removed, which is a delete. Tags likewise (Kommo). Use dry_run to preview.',
  effect: 'update',
  maxEffect: 'delete',
  effectOf: (args) => updateEffect(args, ['phones_to_remove', 'emails_to_remove', 'tags_to_delete']),
  toolset: 'companies',
  requires: ['companies'],
  input: UpdateCompanyArgs.extend({ dry_run: dryRunField }),
  output: z.object({ dry_run: z.boolean().optional(), company: Company.nullable(), requests: PlannedRequests }),
  audit: {
    prior: async (args, provider, ctx) => companyPrior(await provider.getCompany(ctx, args.id), args),
  },
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    const r = await provider.updateCompany(ctx, input);
    return { ...(r.dry_run ? { dry_run: true } : {}), company: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});

export const linkContactToCompany = defineTool({
  name: 'link_contact_to_company',
  title: 'Link a contact to a company',
  description:
    "Links an existing contact to an existing company. A Kommo contact has one company: when it already has another, the call is refused unless replace_existing is true, and replacing counts as a delete (the old link is removed; the result names it in `replaced`). On Bitrix24 the contact's other companies stay. Use dry_run to preview.",
  effect: 'update',
  maxEffect: 'delete',
  effectOf: (args) =>
    args.replace_existing === true
      ? { effect: 'delete', note: "replace_existing removes the contact's link to its current company, so this call counts as a delete" }
      : { effect: 'update' },
  toolset: 'companies',
  requires: ['contacts', 'companies'],
  input: LinkContactToCompanyArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    dry_run: z.boolean().optional(),
    linked: z.boolean().describe('False when nothing was sent (already linked, or a dry run).'),
    contact: Contact.nullable(),
    company: Company.nullable(),
    replaced: Ref.nullable().describe('The company the contact was linked to before and no longer is (Kommo), or null.'),
    note: z.string().optional(),
    requests: PlannedRequests,
  }),
  audit: {
    target: (args) => ({ contact_id: args.contact_id, company_id: args.company_id }),
    prior: async (args, provider, ctx) => ({ company: (await provider.getContact(ctx, args.contact_id)).company?.id ?? null }),
  },
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    return provider.linkContactToCompany(ctx, input);
  },
});
