import * as z from 'zod';
import { defineTool, dryRunField, pageOf, UNTRUSTED } from './define.js';
import { Company, CompanyItem, Contact, ContactItem } from '../providers/types.js';
import { Cursor, CustomFieldsInput, Email, IdInput, Limit, listItems, ListSortInput, Phone, PlannedRequests, ShortText, Tags, WithCustomFields } from './common.js';

export const listContacts = defineTool({
  name: 'list_contacts',
  title: 'List contacts',
  description: `Lists contacts with phones and emails flattened and their lead ids, optionally filtered by a search text (name, phone, email); newest first unless \`sort\` says otherwise (Kommo orders contacts by id for creation order). Pages with an opaque cursor. To find a person by phone or email exactly, prefer search_lead_by_contact. ${UNTRUSTED}`,
  effect: 'read',
  providers: ['kommo', 'bitrix24'],
  input: z.object({ query: z.string().max(200).optional(), sort: ListSortInput, with_custom_fields: WithCustomFields, limit: Limit, cursor: Cursor }),
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
  providers: ['kommo', 'bitrix24'],
  input: z.object({ id: IdInput }),
  output: z.object({ contact: Contact }),
  async handler({ id }, { provider, ctx }) {
    return { contact: await provider.getContact(ctx, id) };
  },
});

export const listCompanies = defineTool({
  name: 'list_companies',
  title: 'List companies',
  description: `Lists companies with phones and emails flattened, optionally filtered by a search text; newest first unless \`sort\` says otherwise (Kommo orders companies by id for creation order). Pages with an opaque cursor. ${UNTRUSTED}`,
  effect: 'read',
  providers: ['kommo', 'bitrix24'],
  input: z.object({ query: z.string().max(200).optional(), sort: ListSortInput, with_custom_fields: WithCustomFields, limit: Limit, cursor: Cursor }),
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
  providers: ['kommo', 'bitrix24'],
  input: z.object({ id: IdInput }),
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
  providers: ['kommo', 'bitrix24'],
  input: z.object({
    first_name: ShortText.optional(),
    last_name: ShortText.optional(),
    name: ShortText.optional(),
    email: Email.optional(),
    phone: Phone.optional(),
    company_name: ShortText.optional(),
    tags: Tags.optional(),
    custom_fields: CustomFieldsInput.optional(),
    responsible_user_id: IdInput.optional(),
    dry_run: dryRunField,
  }),
  output: z.object({ created: z.boolean(), dry_run: z.boolean().optional(), contact: Contact.nullable(), reason: z.string().optional(), requests: PlannedRequests }),
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    return provider.createContact(ctx, input);
  },
});

export const updateContact = defineTool({
  name: 'update_contact',
  title: 'Update a contact',
  description:
    'Changes an existing contact. Phones and emails are edited incrementally (phones_to_add/phones_to_remove, emails_to_add/emails_to_remove): existing ones are kept unless explicitly removed. Tags likewise. Use dry_run to preview.',
  effect: 'update',
  providers: ['kommo', 'bitrix24'],
  input: z.object({
    id: IdInput,
    first_name: ShortText.optional(),
    last_name: ShortText.optional(),
    name: ShortText.optional(),
    responsible_user_id: IdInput.optional(),
    phones_to_add: z.array(Phone).max(10).optional(),
    phones_to_remove: z.array(Phone).max(10).optional(),
    emails_to_add: z.array(Email).max(10).optional(),
    emails_to_remove: z.array(Email).max(10).optional(),
    tags_to_add: Tags.optional(),
    tags_to_delete: Tags.optional(),
    custom_fields: CustomFieldsInput.optional(),
    dry_run: dryRunField,
  }),
  output: z.object({ dry_run: z.boolean().optional(), contact: Contact.nullable(), requests: PlannedRequests }),
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    const r = await provider.updateContact(ctx, input);
    return { ...(r.dry_run ? { dry_run: true } : {}), contact: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});
