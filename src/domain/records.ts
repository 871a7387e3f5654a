/**
 * The CRM-neutral records: compact shapes an agent can use directly (names beside ids, phones and emails
 * flattened, ISO dates, no HAL noise). The zod schemas double as the tools' output schemas. Every layer may
 * import this file; it imports nothing of the project.
 */
import * as z from 'zod';

export const Id = z.union([z.number().int(), z.string()]).meta({ id: 'Id' });
export type Id = z.infer<typeof Id>;

export const Ref = z.object({ id: Id, name: z.string().nullable() }).meta({ id: 'Ref' });
export type Ref = z.infer<typeof Ref>;

/** A lead, contact or company named in a result by id and name, with its page in the CRM. */
export const LinkRef = z.object({ id: Id, name: z.string().nullable(), url: z.string() }).meta({ id: 'LinkRef' });
export type LinkRef = z.infer<typeof LinkRef>;

export const StageType = z.enum(['incoming', 'open', 'won', 'lost']);

/**
 * A record's page in the CRM's web interface, for a person to click through: built by the wing on the
 * connection's configured account address (its origin only, so never a credential such as a webhook's path).
 */
export const WebUrl = z.string().describe("The record's page in the CRM's web interface.");

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
    url: WebUrl,
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
    url: WebUrl,
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
    url: WebUrl,
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
  /** Every record the listing matches, where the CRM counts them in the same answer (Bitrix24 `total`); null where it does not (Kommo). */
  total: number | null;
}

export const PlannedRequest = z.object({ method: z.string(), url: z.string(), body: z.unknown().optional() });
export type PlannedRequest = z.infer<typeof PlannedRequest>;

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

export interface CreateContactResult {
  created: boolean;
  dry_run?: boolean;
  contact: Contact | null;
  reason?: string;
  requests?: PlannedRequest[];
}

export interface WriteResult<T> {
  dry_run?: boolean;
  item: T | null;
  requests?: PlannedRequest[];
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

/** The record a note or task belongs to, by kind, id and name, and its page (null for a kind without one). */
export const RecordRef = z.object({ entity: z.string(), id: Id, name: z.string().nullable(), url: z.string().nullable() });
export type RecordRef = z.infer<typeof RecordRef>;

/** A note (Bitrix24: a timeline comment) as list_notes shows it. */
export const NoteItem = z.object({
  id: Id,
  type: z.string(),
  text: z.string().nullable(),
  record: RecordRef,
  author: Ref.nullable(),
  created_at: z.string().nullable(),
});
export type NoteItem = z.infer<typeof NoteItem>;

/** A task as list_tasks and complete_task show it. */
export const TaskItem = z.object({
  id: Id,
  text: z.string(),
  complete_till: z.string().nullable(),
  is_completed: z.boolean(),
  overdue: z.boolean(),
  result: z.string().nullable(),
  record: RecordRef.nullable(),
  responsible: Ref.nullable(),
  created_at: z.string().nullable(),
  url: z.string().nullable().describe("The task's page in the CRM; where the CRM has no page per task (Kommo), its record's page, null without a record."),
});
export type TaskItem = z.infer<typeof TaskItem>;

export interface CompleteTaskResult {
  /** True when this call completed the task; false for a dry run or a task that was already done. */
  completed: boolean;
  dry_run?: boolean;
  task: TaskItem | null;
  reason?: string;
  requests?: PlannedRequest[];
}
