/**
 * The provider-neutral domain: compact shapes an agent can use directly (names beside ids, phones and
 * emails flattened, ISO dates, no HAL noise), and the interface every CRM provider implements.
 * The zod schemas double as the tools' output schemas.
 */
import * as z from 'zod';
import type {
  CapabilityApi,
  CompaniesApi,
  ContactsApi,
  CustomFieldsApi,
  DeleteApi,
  LeadsApi,
  NotesApi,
  PipelinesApi,
  TagsApi,
  TasksApi,
  UsersApi,
} from './capabilities.js';
import type { Grant, PolicyFlags } from '../policy/policy.js';
// Types only: the tools' input schemas are the one definition of what a provider method receives.
import type { AddNoteArgs, CreateTaskArgs } from '../tools/activity.js';
import type { CustomFieldsInput } from '../tools/common.js';
import type { CreateContactArgs, ListQueryArgs, UpdateContactArgs } from '../tools/contacts.js';
import type { CreateLeadArgs, ListLeadsArgs, UpdateLeadArgs } from '../tools/leads.js';

export const Id = z.union([z.number().int(), z.string()]).meta({ id: 'Id' });
export type Id = z.infer<typeof Id>;

export const Ref = z.object({ id: Id, name: z.string().nullable() }).meta({ id: 'Ref' });
export type Ref = z.infer<typeof Ref>;

export const StageType = z.enum(['incoming', 'open', 'won', 'lost']);

export const CustomFieldValue = z
  .object({
    id: Id,
    name: z.string(),
    code: z.string().nullable().optional(),
    values: z.array(z.union([z.string(), z.number(), z.boolean()])),
  })
  .meta({ id: 'CustomFieldValue' });
export type CustomFieldValue = z.infer<typeof CustomFieldValue>;

export const Lead = z
  .object({
    id: Id,
    entity: z.enum(['lead', 'deal']),
    name: z.string(),
    price: z.number().nullable(),
    pipeline: Ref.nullable(),
    stage: z.object({ id: Id, name: z.string().nullable(), type: StageType.nullable() }).nullable(),
    responsible: Ref.nullable(),
    tags: z.array(z.string()),
    contact_ids: z.array(Id),
    company: Ref.nullable(),
    custom_fields: z.array(CustomFieldValue),
    created_at: z.string().nullable(),
    updated_at: z.string().nullable(),
    /** Present on closed (won/lost) records only. */
    closed_at: z.string().nullable().optional(),
  })
  .meta({ id: 'Lead' });
export type Lead = z.infer<typeof Lead>;

export const Contact = z
  .object({
    id: Id,
    name: z.string(),
    first_name: z.string().nullable(),
    last_name: z.string().nullable(),
    phones: z.array(z.string()),
    emails: z.array(z.string()),
    company: Ref.nullable(),
    responsible: Ref.nullable(),
    tags: z.array(z.string()),
    lead_ids: z.array(Id),
    custom_fields: z.array(CustomFieldValue),
    created_at: z.string().nullable(),
    updated_at: z.string().nullable(),
  })
  .meta({ id: 'Contact' });
export type Contact = z.infer<typeof Contact>;

export const Company = z
  .object({
    id: Id,
    name: z.string(),
    phones: z.array(z.string()),
    emails: z.array(z.string()),
    responsible: Ref.nullable(),
    tags: z.array(z.string()),
    contact_ids: z.array(Id),
    lead_ids: z.array(Id),
    custom_fields: z.array(CustomFieldValue),
    created_at: z.string().nullable(),
    updated_at: z.string().nullable(),
  })
  .meta({ id: 'Company' });
export type Company = z.infer<typeof Company>;

export const Stage = z.object({
  id: Id,
  name: z.string(),
  sort: z.number(),
  type: StageType,
  color: z.string().nullable(),
});

export const Pipeline = z.object({
  id: Id,
  entity: z.enum(['lead', 'deal']),
  name: z.string(),
  is_main: z.boolean(),
  sort: z.number(),
  stages: z.array(Stage),
});
export type Pipeline = z.infer<typeof Pipeline>;

export const User = z.object({
  id: Id,
  name: z.string(),
  email: z.string().nullable(),
  is_admin: z.boolean().nullable(),
  is_active: z.boolean().nullable(),
});
export type User = z.infer<typeof User>;

export const CustomFieldDef = z.object({
  id: Id,
  name: z.string(),
  code: z.string().nullable(),
  type: z.string(),
  entity: z.string(),
  is_required: z.boolean().nullable().optional(),
  is_api_only: z.boolean().nullable().optional(),
  options: z.array(z.object({ id: Id, value: z.string() })).optional(),
});
export type CustomFieldDef = z.infer<typeof CustomFieldDef>;

export const Tag = z.object({ id: Id, name: z.string(), color: z.string().nullable().optional() });
export type Tag = z.infer<typeof Tag>;

export interface Page<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
}

export const PlannedRequest = z.object({ method: z.string(), url: z.string(), body: z.unknown().optional() });
export type PlannedRequest = z.infer<typeof PlannedRequest>;

/** Per-call context every provider method receives. */
export interface CallContext {
  grant: Grant;
  signal?: AbortSignal;
  /** Write methods return the requests they would send instead of sending them. */
  dryRun?: boolean;
}

/*
 * What the provider methods receive: the tools' arguments as zod parsed them (defaults applied), without the
 * tool-only switches (`dry_run` travels in CallContext, `with_custom_fields` is applied by the tool).
 */

/** One custom field value, addressed by id, code or name; enum options may be given by their label. */
export type CustomFieldInput = z.output<typeof CustomFieldsInput>[number];

export type LeadFilter = Omit<z.output<typeof ListLeadsArgs>, 'with_custom_fields'>;

/** The order of a list tool's pages; each provider maps it to its CRM's `order` parameter. */
export type ListSort = LeadFilter['sort'];

export type CreateLeadInput = Omit<z.output<typeof CreateLeadArgs>, 'dry_run'>;

/** The person a new lead is for. */
export type ContactInput = NonNullable<CreateLeadInput['contact']>;

export interface CreateLeadResult {
  created: boolean;
  dry_run?: boolean;
  lead: Lead | null;
  contact_id: Id | null;
  company_id: Id | null;
  /** Why nothing was created (duplicate found), or how the new lead was linked to an existing contact. */
  reason?: string;
  requests?: PlannedRequest[];
}

export type CreateContactInput = Omit<z.output<typeof CreateContactArgs>, 'dry_run'>;

export interface CreateContactResult {
  created: boolean;
  dry_run?: boolean;
  contact: Contact | null;
  reason?: string;
  requests?: PlannedRequest[];
}

export type UpdateLeadInput = Omit<z.output<typeof UpdateLeadArgs>, 'dry_run'>;

export type UpdateContactInput = Omit<z.output<typeof UpdateContactArgs>, 'dry_run'>;

export interface WriteResult<T> {
  dry_run?: boolean;
  item: T | null;
  requests?: PlannedRequest[];
}

export type NoteInput = Omit<z.output<typeof AddNoteArgs>, 'dry_run'>;

export type TaskInput = Omit<z.output<typeof CreateTaskArgs>, 'dry_run'>;

export interface Note {
  id: Id;
  entity: string;
  entity_id: Id;
  text: string;
  created_at: string | null;
}

export interface Task {
  id: Id;
  text: string;
  complete_till: string | null;
  entity: string | null;
  entity_id: Id | null;
  responsible: Ref | null;
  is_completed: boolean;
}

export interface SearchResult {
  query: { email?: string; phone?: string; phone_e164?: string | null };
  contacts: Contact[];
  leads: Lead[];
}

export interface AccountInfo {
  /** The provider's `kind`. */
  provider: string;
  id: Id | null;
  name: string | null;
  address: string;
  current_user: Ref | null;
  country?: string | null;
  currency?: string | null;
  auth: { type: string; expires_at: string | null; scopes: string[] | null };
  details?: Record<string, unknown>;
}

export type ListQuery = Omit<z.output<typeof ListQueryArgs>, 'with_custom_fields'>;

/** The CRMs crm-mcp ships with. `CrmProvider.kind` is open: a third CRM brings its own (providers/registry.ts). */
export const PROVIDER_KINDS = { kommo: 'kommo', bitrix24: 'bitrix24' } as const;

export type Capability = keyof CapabilityApi;

/** The members each capability promises, checked on every provider the registry builds. */
export const CAPABILITY_MEMBERS = {
  leads: ['listLeads', 'getLead', 'createLead', 'updateLead', 'searchLeadByContact'],
  deals: [],
  contacts: ['listContacts', 'getContact', 'createContact', 'updateContact'],
  companies: ['listCompanies', 'getCompany'],
  pipelines: ['pipelines'],
  custom_fields: ['customFields'],
  users: ['users'],
  tags: ['tags'],
  notes: ['addNote'],
  tasks: ['createTask'],
  delete: ['deleteRecord'],
  raw_kommo: ['raw'],
  raw_bitrix24: ['http', 'call'],
} as const satisfies { readonly [C in Capability]: ReadonlyArray<keyof CapabilityApi[C]> };

// Compile-time: the table above names every member of every capability (a member left out would go unchecked).
type Unlisted = { [C in Capability]: Exclude<keyof CapabilityApi[C], (typeof CAPABILITY_MEMBERS)[C][number]> }[Capability];
const _everyMemberListed: [Unlisted] extends [never] ? true : never = true;

export const CAPABILITIES = Object.keys(CAPABILITY_MEMBERS) as Capability[];

/**
 * The interface every CRM provider implements: who it is, what it can do, and the account. Everything else
 * comes with a capability; the raw dialects are reached through ProviderWith only, since they are not neutral.
 */
export interface CrmProvider
  extends
    Partial<LeadsApi>,
    Partial<ContactsApi>,
    Partial<CompaniesApi>,
    Partial<PipelinesApi>,
    Partial<CustomFieldsApi>,
    Partial<UsersApi>,
    Partial<TagsApi>,
    Partial<NotesApi>,
    Partial<TasksApi>,
    Partial<DeleteApi> {
  /** The CRM: one of PROVIDER_KINDS or a registered third one. */
  readonly kind: string;
  readonly connection: string;
  readonly policy: PolicyFlags;
  readonly capabilities: ReadonlySet<Capability>;
  account(ctx: CallContext): Promise<AccountInfo>;
  close?(): Promise<void>;
}

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** A provider seen through capabilities it declares: their members are present. */
export type ProviderWith<C extends Capability> = CrmProvider & UnionToIntersection<CapabilityApi[C]>;

/**
 * List items: the same shapes, with custom fields only when asked for (get_* always has them). A link list a
 * CRM does not return with its list pages (Bitrix24: a contact's leads, a company's contacts and leads) is left
 * out rather than shown empty, since `[]` would say "none"; get_contact/get_company always carry them.
 */
export const LeadItem = Lead.extend({
  custom_fields: z.array(CustomFieldValue).optional(),
  contact_ids: z.array(Id).optional().describe('Every contact of the lead; left out of Bitrix24 list pages (get_lead has them).'),
}).meta({ id: 'LeadItem' });
export const ContactItem = Contact.extend({
  custom_fields: z.array(CustomFieldValue).optional(),
  lead_ids: z.array(Id).optional().describe('Linked lead/deal ids; absent when the list did not read them (Bitrix24 lists): call get_contact.'),
}).meta({ id: 'ContactItem' });
export type ContactItem = z.infer<typeof ContactItem>;
export const CompanyItem = Company.extend({
  custom_fields: z.array(CustomFieldValue).optional(),
  contact_ids: z.array(Id).optional().describe('Linked contact ids; absent when the list did not read them (Bitrix24 lists): call get_company.'),
  lead_ids: z.array(Id).optional().describe('Linked lead/deal ids; absent when the list did not read them (Bitrix24 lists): call get_company.'),
}).meta({ id: 'CompanyItem' });
export type CompanyItem = z.infer<typeof CompanyItem>;

export type * from './capabilities.js';
