import * as z from 'zod';
import { defineTool, dryRunField, pageOf, UNTRUSTED } from './define.js';
import { Company, CompanyItem, Contact, ContactItem } from '../domain/records.js';
import { CreateContactArgs, ListQueryArgs, PlannedRequests, RecordId, UpdateContactArgs } from '../domain/inputs.js';
import { createContact as createContactFlow } from '../services/create-contact.js';
import { DuplicateCheckField } from './leads.js';
import { listItems, updateEffect } from './common.js';
import { contactPrior } from './prior.js';

export const listContacts = defineTool({
  name: 'list_contacts',
  title: 'List contacts',
  description: `Lists contacts with phones and emails flattened, optionally filtered by a search text: a name or part of one in either word order ("Elena Kuznetsova", "Kuznetsova Elena"), a phone in any format (local numbers in the account's country) or an email; newest first unless \`sort\` says otherwise (Kommo orders contacts by id for creation order). Pages with an opaque cursor; Bitrix24 pages leave \`lead_ids\` out (get_contact has them), and search_lead_by_contact is the tool for a person's leads by phone or email. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['contacts'],
  input: ListQueryArgs,
  output: pageOf(ContactItem),
  async handler({ with_custom_fields, ...args }, { provider, ctx }) {
    return listItems(await provider.listContacts(ctx, args), with_custom_fields);
  },
});

export const getContact = defineTool({
  name: 'get_contact',
  title: 'Get a contact',
  description: `Gets one contact by id: name, phones, emails, company, responsible user, tags, custom fields and linked lead ids. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['contacts'],
  input: z.object({ id: RecordId }),
  output: z.object({ contact: Contact }),
  async handler({ id }, { provider, ctx }) {
    return { contact: await provider.getContact(ctx, id) };
  },
});

export const listCompanies = defineTool({
  name: 'list_companies',
  title: 'List companies',
  description: `Lists companies with phones and emails flattened, optionally filtered by a search text; newest first unless \`sort\` says otherwise (Kommo orders companies by id for creation order). Pages with an opaque cursor. \`contact_ids\`/\`lead_ids\` are present where the list read them (Kommo) and left out on Bitrix24 lists: call get_company for them. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['companies'],
  input: ListQueryArgs,
  output: pageOf(CompanyItem),
  async handler({ with_custom_fields, ...args }, { provider, ctx }) {
    return listItems(await provider.listCompanies(ctx, args), with_custom_fields);
  },
});

export const getCompany = defineTool({
  name: 'get_company',
  title: 'Get a company',
  description: `Gets one company by id with its phones, emails, tags, custom fields and linked contact and lead ids. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['companies'],
  input: z.object({ id: RecordId }),
  output: z.object({ company: Company }),
  async handler({ id }, { provider, ctx }) {
    return { company: await provider.getCompany(ctx, id) };
  },
});

export const createContact = defineTool({
  name: 'create_contact',
  title: 'Create a contact (duplicate-safe)',
  description:
    'Creates a contact with phone/email (phones stored in E.164). If a contact with that email or phone already exists it is returned with `created: false` instead. company_name links an existing company by exact name. Use dry_run to preview.',
  effect: 'create',
  toolset: 'core',
  requires: ['contacts'],
  input: CreateContactArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    created: z.boolean(),
    dry_run: z.boolean().optional(),
    contact: Contact.nullable(),
    reason: z.string().optional(),
    duplicate_check: DuplicateCheckField,
    requests: PlannedRequests,
  }),
  async handler(args, { provider, ctx, identityLock }) {
    const { dry_run: _d, ...input } = args;
    // The workflow (services/create-contact.ts) over this CRM's own steps.
    return createContactFlow(provider.createContactSteps, ctx, input, identityLock);
  },
});

export const updateContact = defineTool({
  name: 'update_contact',
  title: 'Update a contact',
  description:
    'Changes an existing contact. Phones and emails are edited incrementally (phones_to_add/phones_to_remove, emails_to_add/emails_to_remove): existing ones are kept unless explicitly removed, which is a delete. Tags likewise. Use dry_run to preview.',
  effect: 'update',
  maxEffect: 'delete',
  effectOf: (args) => updateEffect(args, ['phones_to_remove', 'emails_to_remove', 'tags_to_delete']),
  toolset: 'core',
  requires: ['contacts'],
  input: UpdateContactArgs.extend({ dry_run: dryRunField }),
  output: z.object({ dry_run: z.boolean().optional(), contact: Contact.nullable(), requests: PlannedRequests }),
  audit: {
    prior: async (args, provider, ctx) => contactPrior(await provider.getContact(ctx, args.id), args),
  },
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    const r = await provider.updateContact(ctx, input);
    return { ...(r.dry_run ? { dry_run: true } : {}), contact: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});
