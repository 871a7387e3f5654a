import * as z from 'zod';
import { isOpen } from '../domain/dedupe.js';
import { defineTool, dryRunField, pageOf, UNTRUSTED } from './define.js';
import { Company, Contact, ContactItem, Id, Lead, LeadItem } from '../domain/records.js';
import { validationError } from '../domain/errors.js';
import { CreateLeadArgs, Email, ListLeadsArgs, Phone, PlannedRequests, RecordId, UpdateLeadArgs, WithCustomFields } from '../domain/inputs.js';
import { createLead as createLeadFlow } from '../services/create-lead.js';
import { listItems, updateEffect } from './common.js';
import { leadPrior } from './prior.js';

/** Whether a create looked for a duplicate first (it cannot without a phone or an email). */
export const DuplicateCheckField = z.string().describe('"done", or why no duplicate check was possible.');

export const searchLeadByContact = defineTool({
  name: 'search_lead_by_contact',
  title: 'Find leads by email or phone',
  description: `Answers "is this person already a lead?": finds contacts by email and/or phone (any format; normalised to E.164) and returns them with their leads, open ones first. Use it before creating a lead. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['leads', 'contacts'],
  input: z.object({ email: Email.optional(), phone: Phone.optional(), with_custom_fields: WithCustomFields }),
  output: z.object({
    query: z.object({ email: z.string().optional(), phone: z.string().optional(), phone_e164: z.string().nullable().optional() }),
    found: z.boolean().describe('True when at least one contact matched (with or without leads).'),
    lead_count: z.number().int().describe('Leads of the matched contacts.'),
    open_lead_count: z.number().int().describe('Of those, the ones not won or lost.'),
    contacts: z.array(ContactItem),
    leads: z.array(LeadItem),
  }),
  async handler({ email, phone, with_custom_fields }, { provider, ctx }) {
    if (!email && !phone) throw validationError('Give `email` and/or `phone`.');
    const r = await provider.searchLeadByContact(ctx, { email, phone });
    return {
      ...r,
      found: r.contacts.length > 0,
      lead_count: r.leads.length,
      open_lead_count: r.leads.filter(isOpen).length,
      contacts: listItems({ items: r.contacts }, with_custom_fields).items,
      leads: listItems({ items: r.leads }, with_custom_fields).items,
    };
  },
});

export const createLead = defineTool({
  name: 'create_lead',
  title: 'Create a lead (duplicate-safe)',
  description:
    'Creates a lead with its contact (and company); the title defaults to the contact name. It first looks the contact up by email/phone: when that contact has an open lead it returns it with `created: false` instead of a duplicate (unless if_open_lead_exists is "create"); a returning customer whose leads are closed gets a new lead linked to the existing contact, never a second contact. Use dry_run to preview the request.',
  effect: 'create',
  toolset: 'core',
  requires: ['leads', 'contacts'],
  input: CreateLeadArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    created: z.boolean(),
    dry_run: z.boolean().optional(),
    lead: Lead.nullable(),
    contact_id: Id.nullable(),
    company_id: Id.nullable(),
    reason: z.string().optional(),
    duplicate_check: DuplicateCheckField,
    requests: PlannedRequests,
  }),
  async handler(args, { provider, ctx, identityLock }) {
    const { dry_run: _d, ...input } = args;
    // The workflow (services/create-lead.ts) over this CRM's own steps; it checks the name before any request.
    return createLeadFlow(provider.createLeadSteps, ctx, input, identityLock);
  },
});

export const listLeads = defineTool({
  name: 'list_leads',
  title: 'List leads',
  description: `Lists leads (Bitrix24: leads or deals) with filters by pipeline, stages, responsible user, search text and created/updated dates; newest created first unless \`sort\` says otherwise. Won/lost stage ids (Kommo 142/143) without a pipeline cover every pipeline. Pages with an opaque cursor that keeps the filters and order; \`has_more\` is exact. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['leads'],
  input: ListLeadsArgs,
  output: pageOf(LeadItem),
  async handler({ with_custom_fields, ...args }, { provider, ctx }) {
    return listItems(await provider.listLeads(ctx, args), with_custom_fields);
  },
});

export const getLead = defineTool({
  name: 'get_lead',
  title: 'Get a lead',
  description: `Gets one lead by id with its stage, pipeline, responsible user, tags, custom fields, and its contacts (phones, emails) and companies. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'core',
  requires: ['leads'],
  input: z.object({
    id: RecordId,
    entity: z
      .enum(['lead', 'deal'])
      .optional()
      .describe('Bitrix24 only: whether the id is a lead or a deal (default: lead where the portal has leads, else deal).'),
  }),
  output: z.object({ lead: Lead, contacts: z.array(Contact), companies: z.array(Company) }),
  async handler({ id, entity }, { provider, ctx }) {
    return provider.getLead(ctx, id, entity);
  },
});

export const updateLead = defineTool({
  name: 'update_lead',
  title: 'Update a lead',
  description:
    'Changes fields of an existing lead: name, price, stage/pipeline, responsible user, custom fields, and tags (tags_to_add/tags_to_delete change them incrementally; other tags are kept); removing tags or clearing a field is a delete. Returns the updated lead. Use dry_run to preview.',
  effect: 'update',
  maxEffect: 'delete',
  effectOf: (args) => updateEffect(args, ['tags_to_delete']),
  toolset: 'core',
  requires: ['leads'],
  input: UpdateLeadArgs.extend({ dry_run: dryRunField }),
  output: z.object({ dry_run: z.boolean().optional(), lead: Lead.nullable(), requests: PlannedRequests }),
  audit: {
    prior: async (args, provider, ctx) => leadPrior((await provider.getLead(ctx, args.id, args.entity)).lead, args),
  },
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    const r = await provider.updateLead(ctx, input);
    return { ...(r.dry_run ? { dry_run: true } : {}), lead: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});
