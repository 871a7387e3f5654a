/**
 * The provider-neutral domain: compact shapes an agent can use directly (names beside ids, phones and
 * emails flattened, ISO dates, no HAL noise), and the interface every CRM provider implements.
 * The zod schemas double as the tools' output schemas.
 */
import * as z from 'zod';
import type { Grant, PolicyFlags } from '../policy/policy.js';

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

export interface CustomFieldInput {
  field_id?: number | string;
  field_code?: string;
  field_name?: string;
  /** One value or several; enum options may be given by their label. */
  value: string | number | boolean | Array<string | number | boolean>;
}

export interface LeadFilter {
  pipeline_id?: Id;
  status_ids?: Id[];
  query?: string;
  responsible_user_id?: Id;
  created_from?: string;
  created_to?: string;
  updated_from?: string;
  updated_to?: string;
  entity?: 'lead' | 'deal';
  /** Default `created_desc` (newest first). */
  sort?: ListSort;
  limit: number;
  cursor?: string;
}

/** The order of a list tool's pages; each provider maps it to its CRM's `order` parameter. */
export type ListSort = 'created_desc' | 'created_asc' | 'updated_desc';

export interface ContactInput {
  first_name?: string;
  last_name?: string;
  name?: string;
  email?: string;
  phone?: string;
}

export interface CreateLeadInput {
  name?: string;
  price?: number;
  pipeline_id?: Id;
  status_id?: Id;
  entity?: 'lead' | 'deal';
  contact?: ContactInput;
  company?: { name: string };
  tags?: string[];
  custom_fields?: CustomFieldInput[];
  responsible_user_id?: Id;
  /** When the contact already has an open lead: return it (default) or create another. */
  if_open_lead_exists?: 'return' | 'create';
}

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

export interface CreateContactInput extends ContactInput {
  company_name?: string;
  tags?: string[];
  custom_fields?: CustomFieldInput[];
  responsible_user_id?: Id;
}

export interface CreateContactResult {
  created: boolean;
  dry_run?: boolean;
  contact: Contact | null;
  reason?: string;
  requests?: PlannedRequest[];
}

export interface UpdateLeadInput {
  id: Id;
  entity?: 'lead' | 'deal';
  name?: string;
  price?: number;
  status_id?: Id;
  pipeline_id?: Id;
  responsible_user_id?: Id;
  tags_to_add?: string[];
  tags_to_delete?: string[];
  custom_fields?: CustomFieldInput[];
}

export interface UpdateContactInput {
  id: Id;
  first_name?: string;
  last_name?: string;
  name?: string;
  responsible_user_id?: Id;
  phones_to_add?: string[];
  phones_to_remove?: string[];
  emails_to_add?: string[];
  emails_to_remove?: string[];
  tags_to_add?: string[];
  tags_to_delete?: string[];
  custom_fields?: CustomFieldInput[];
}

export interface WriteResult<T> {
  dry_run?: boolean;
  item: T | null;
  requests?: PlannedRequest[];
}

export interface NoteInput {
  entity: 'lead' | 'contact' | 'company' | 'deal';
  entity_id: Id;
  text: string;
}

export interface TaskInput {
  text: string;
  complete_till: string;
  entity?: 'lead' | 'contact' | 'company' | 'deal';
  entity_id?: Id;
  responsible_user_id?: Id;
  task_type_id?: number;
}

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
  provider: 'kommo' | 'bitrix24';
  id: Id | null;
  name: string | null;
  address: string;
  current_user: Ref | null;
  country?: string | null;
  currency?: string | null;
  auth: { type: string; expires_at: string | null; scopes: string[] | null };
  details?: Record<string, unknown>;
}

export interface ListQuery {
  query?: string;
  /** Default `created_desc` (newest first). */
  sort?: ListSort;
  limit: number;
  cursor?: string;
}

/** The interface every CRM provider implements (Kommo, Bitrix24). */
export interface CrmProvider {
  readonly kind: 'kommo' | 'bitrix24';
  readonly connection: string;
  readonly policy: PolicyFlags;
  account(ctx: CallContext): Promise<AccountInfo>;
  pipelines(ctx: CallContext): Promise<Pipeline[]>;
  searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult>;
  createLead(ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult>;
  listLeads(ctx: CallContext, f: LeadFilter): Promise<Page<Lead>>;
  getLead(ctx: CallContext, id: Id, entity?: 'lead' | 'deal'): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }>;
  listContacts(ctx: CallContext, q: ListQuery): Promise<Page<Contact>>;
  getContact(ctx: CallContext, id: Id): Promise<Contact>;
  listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<Company>>;
  getCompany(ctx: CallContext, id: Id): Promise<Company>;
  customFields(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]>;
  users(ctx: CallContext): Promise<User[]>;
  tags?(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies', query?: string): Promise<Tag[]>;
  createContact(ctx: CallContext, input: CreateContactInput): Promise<CreateContactResult>;
  addNote(ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>>;
  createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>>;
  updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>>;
  updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>>;
  close?(): Promise<void>;
}

/** List items: the same shapes, with custom fields only when asked for (get_* always has them). */
export const LeadItem = Lead.extend({ custom_fields: z.array(CustomFieldValue).optional() }).meta({ id: 'LeadItem' });
export const ContactItem = Contact.extend({ custom_fields: z.array(CustomFieldValue).optional() }).meta({ id: 'ContactItem' });
export const CompanyItem = Company.extend({ custom_fields: z.array(CustomFieldValue).optional() }).meta({ id: 'CompanyItem' });
