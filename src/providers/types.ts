/**
 * The provider-neutral domain: compact shapes an agent can use directly (names beside ids, phones and
 * emails flattened, ISO dates, no HAL noise), and the interface every CRM provider implements.
 * The zod schemas double as the tools' output schemas.
 */
import * as z from 'zod';
import type { HttpMethod, QueryValue } from '../http/client.js';
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

export const CustomFieldValue = z.object({
  id: Id,
  name: z.string(),
  code: z.string().nullable().optional(),
  values: z.array(z.union([z.string(), z.number(), z.boolean()])),
}).meta({ id: 'CustomFieldValue' });
export type CustomFieldValue = z.infer<typeof CustomFieldValue>;

export const Lead = z.object({
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
}).meta({ id: 'Lead' });
export type Lead = z.infer<typeof Lead>;

export const Contact = z.object({
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
}).meta({ id: 'Contact' });
export type Contact = z.infer<typeof Contact>;

export const Company = z.object({
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
}).meta({ id: 'Company' });
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

/*
 * Capabilities: what a provider can do, declared up front instead of discovered at call time. A tool lists the
 * capabilities it `require`s and is registered for a connection only when that connection's provider declares
 * all of them, so the agent never sees a tool its CRM cannot serve. Each capability brings the members of its
 * entry in CapabilityApi; a provider implements those of the capabilities it declares (the registry refuses one
 * that does not), and a tool's handler sees exactly the members its requirements guarantee (ProviderWith).
 */

export interface LeadsApi {
  listLeads(ctx: CallContext, f: LeadFilter): Promise<Page<Lead>>;
  getLead(ctx: CallContext, id: Id, entity?: 'lead' | 'deal'): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }>;
  createLead(ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult>;
  updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>>;
  searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult>;
}

export interface ContactsApi {
  listContacts(ctx: CallContext, q: ListQuery): Promise<Page<ContactItem>>;
  getContact(ctx: CallContext, id: Id): Promise<Contact>;
  createContact(ctx: CallContext, input: CreateContactInput): Promise<CreateContactResult>;
  updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>>;
}

export interface CompaniesApi {
  listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<CompanyItem>>;
  getCompany(ctx: CallContext, id: Id): Promise<Company>;
}

export interface PipelinesApi {
  pipelines(ctx: CallContext): Promise<Pipeline[]>;
}

export interface CustomFieldsApi {
  customFields(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]>;
}

export interface UsersApi {
  users(ctx: CallContext): Promise<User[]>;
}

export interface TagsApi {
  tags(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies', query?: string): Promise<Tag[]>;
}

export interface NotesApi {
  addNote(ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>>;
}

export interface TasksApi {
  createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>>;
}

export interface DeleteApi {
  deleteRecord(ctx: CallContext, entity: 'lead' | 'deal' | 'contact', id: Id): Promise<WriteResult<{ id: Id; entity: string }>>;
}

/** One Kommo API v4 request as-is; the tool has normalised and confined the path, the HTTP core checks it again. */
export interface KommoRawApi {
  raw(ctx: CallContext, method: HttpMethod, path: string, query: Record<string, QueryValue> | undefined, body: unknown): Promise<{ status: number; data: unknown }>;
}

/** One Bitrix24 REST method as-is; `http.origin` names the portal in a dry run's planned request. */
export interface BitrixRawApi {
  readonly http: { readonly origin: string };
  call(ctx: CallContext, method: string, params: Record<string, unknown>): Promise<{ result?: unknown; next?: number; total?: number }>;
}

/** A capability that only widens what the neutral members accept, and adds none. */
type NoMembers = Record<never, never>;

/** Every capability, and the members a provider declaring it implements. */
export interface CapabilityApi {
  /** Sales opportunities: list, get, create (duplicate-safe), update, and finding them by a contact's email or phone. */
  leads: LeadsApi;
  /** Deals besides leads (Bitrix24): `entity: "deal"` on the lead tools, notes and tasks, and deal custom fields. */
  deals: NoMembers;
  /** People: list, get, create (duplicate-safe), update. */
  contacts: ContactsApi;
  /** Companies: list and get. */
  companies: CompaniesApi;
  /** Pipelines and their stages. */
  pipelines: PipelinesApi;
  /** Custom field definitions (the values travel with the records). */
  custom_fields: CustomFieldsApi;
  /** The CRM's users. */
  users: UsersApi;
  /** A tag list (list_tags). Whether records carry tags is the provider's answer to the tags arguments. */
  tags: TagsApi;
  /** Text notes on records. */
  notes: NotesApi;
  /** Tasks with a deadline. */
  tasks: TasksApi;
  /** Permanent deletes of leads, deals and contacts. */
  delete: DeleteApi;
  /** The Kommo API v4 as-is (kommo_request). A dialect, not a neutral operation: only Kommo-compatible CRMs declare it. */
  raw_kommo: KommoRawApi;
  /** The Bitrix24 REST API as-is (bitrix_call). A dialect, not a neutral operation. */
  raw_bitrix24: BitrixRawApi;
}

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
  extends Partial<LeadsApi>,
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
export const LeadItem = Lead.extend({ custom_fields: z.array(CustomFieldValue).optional() }).meta({ id: 'LeadItem' });
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
