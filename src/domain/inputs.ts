/**
 * What the tools receive, as the CRM wings and the services take it: the one definition of each input. A tool
 * extends its input with tool-only switches (`dry_run`); the inferred types below are what a capability's
 * members receive. Pieces shared by several inputs come first.
 */
import * as z from 'zod';

/**
 * A record id. The schema is kept loose (number or short string, ~60 bytes instead of ~110 in every tool's
 * schema the model reads); the providers check that ids are whole numbers (Bitrix24 numbers deal categories
 * from 0, the General pipeline; its stage ids are strings such as "C1:NEW").
 */
export const IdInput = z.union([z.number(), z.string().min(1).max(64)]);
export const Limit = z.number().int().min(1).max(250).default(50).describe('Page size (1–250, default 50).');
export const ListSortInput = z
  .enum(['created_desc', 'created_asc', 'updated_desc'])
  .default('created_desc')
  .describe('Order: newest created first (default), oldest created first, or last updated first.');
export const Cursor = z.string().max(4096).optional().describe('Cursor from a previous call; omit for the first page.');
export const ShortText = z.string().max(255);
export const RecordId = IdInput.describe('Record id.');
export const ResponsibleId = IdInput.describe('Responsible user id (list_users).');
export const Price = z.number().min(0).max(1e12).describe('Amount in the account currency.');
export const FirstName = ShortText.describe('First name.');
export const LastName = ShortText.describe('Last name.');
export const FullName = ShortText.describe('Full name, when first/last are not given (split at the last space).');
export const Phone = z
  .string()
  .min(3)
  .max(40)
  .refine((v) => (v.match(/\d/g)?.length ?? 0) >= 5, 'a phone number needs at least 5 digits')
  .describe('Phone number in any format; include the country code where you can (e.g. +7 912 345-67-89).');
export const Email = z.string().min(3).max(254).describe('Email address (matched case-insensitively).');
export const Tags = z.array(z.string().min(1).max(100)).max(50).describe('Tag names (Kommo).');

export const CustomFieldsInput = z
  .array(
    z
      .object({
        field_id: IdInput.optional().describe('Field id.'),
        field_code: z.string().max(100).optional().describe('Field code, e.g. PHONE.'),
        field_name: z.string().max(255).optional().describe('Field label as shown in the CRM.'),
        value: z
          .union([z.string().max(10_000), z.number(), z.boolean(), z.array(z.union([z.string().max(10_000), z.number(), z.boolean()])).max(50)])
          .describe('Value(s); select options by label or id.'),
      })
      .strict(),
  )
  .max(40)
  .describe('Custom field values, each addressed by field_id, field_code or field_name.');

export const PlannedRequests = z
  .array(z.object({ method: z.string(), url: z.string(), body: z.unknown().optional() }))
  .optional()
  .describe('With dry_run: the exact requests that would be sent.');

export const WithCustomFields = z.boolean().optional().describe('Include custom fields (default false; get_* tools always include them).');

export const DateInput = z.string().max(40).describe('ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T09:00:00Z.');

export const ContactInput = z
  .object({
    first_name: FirstName.optional(),
    last_name: LastName.optional(),
    name: FullName.optional(),
    email: Email.optional(),
    phone: Phone.optional(),
  })
  .strict();

/** create_lead's input (the tool adds dry_run). */
export const CreateLeadArgs = z.object({
  name: ShortText.optional().describe('Lead title; defaults to the contact name.'),
  price: Price.optional(),
  pipeline_id: IdInput.optional().describe('Pipeline (get_pipelines); default: the main pipeline.'),
  status_id: IdInput.optional().describe(
    'Stage id (get_pipelines); default: the pipeline\'s first working stage by sort (on Kommo the one after "Incoming leads", which only incoming leads enter; on Bitrix24 the first lead status, or the first stage of the deal pipeline).',
  ),
  entity: z.enum(['lead', 'deal']).optional().describe('Bitrix24 only: create a lead or a deal (default: lead where the portal has leads, else deal).'),
  contact: ContactInput.optional().describe('The person; found by email/phone first.'),
  company: z
    .object({ name: ShortText.min(1).describe('Company name; an existing one is linked.') })
    .strict()
    .optional()
    .describe('The company.'),
  tags: Tags.optional(),
  custom_fields: CustomFieldsInput.optional(),
  responsible_user_id: ResponsibleId.optional(),
  if_open_lead_exists: z
    .enum(['return', 'create'])
    .default('return')
    .describe('When the contact already has an open lead: return it (default) or create another one anyway.'),
});

/**
 * list_leads' page size: up to what one read of the CRM returns, Bitrix24's `batch` of 50 list commands × 50
 * rows; Kommo's pages hold 250 (its provider reads a larger limit as 250, and the cursor goes on from there).
 */
export const LeadsLimit = z
  .number()
  .int()
  .min(1)
  .max(2500)
  .default(50)
  .describe('Page size (default 50): up to 2500 on Bitrix24, up to 250 on Kommo (a larger limit gives 250 and a cursor).');

/** list_leads' input; LeadFilter is this without the tool-only with_custom_fields. */
export const ListLeadsArgs = z.object({
  pipeline_id: IdInput.optional().describe('Pipeline (get_pipelines).'),
  status_ids: z.array(IdInput).max(20).optional().describe('Stage ids (get_pipelines).'),
  query: z.string().max(200).optional().describe('Search text in the title; a phone (any format) or an email lists the leads of the contacts holding it.'),
  responsible_user_id: ResponsibleId.optional(),
  created_from: DateInput.optional(),
  created_to: DateInput.optional(),
  updated_from: DateInput.optional(),
  updated_to: DateInput.optional(),
  entity: z
    .enum(['lead', 'deal'])
    .optional()
    .describe('Bitrix24 only: leads or deals (default: lead where the portal has leads, else deal; a deal pipeline_id means deals).'),
  sort: ListSortInput,
  with_custom_fields: WithCustomFields,
  limit: LeadsLimit,
  cursor: Cursor,
});

/** update_lead's input (the tool adds dry_run). */
export const UpdateLeadArgs = z.object({
  id: RecordId,
  entity: z.enum(['lead', 'deal']).optional().describe('Bitrix24 only: lead or deal (default: lead where the portal has leads, else deal).'),
  name: ShortText.optional().describe('New title.'),
  price: Price.optional(),
  status_id: IdInput.optional().describe('New stage id (get_pipelines).'),
  pipeline_id: IdInput.optional().describe('Pipeline of the new stage.'),
  responsible_user_id: ResponsibleId.optional(),
  tags_to_add: Tags.optional(),
  tags_to_delete: Tags.optional(),
  custom_fields: CustomFieldsInput.optional(),
});

/** list_contacts' and list_companies' input; ListQuery is this without with_custom_fields. */
export const ListQueryArgs = z.object({
  query: z.string().max(200).optional().describe('Search text (name, phone, email).'),
  sort: ListSortInput,
  with_custom_fields: WithCustomFields,
  limit: Limit,
  cursor: Cursor,
});

/** create_contact's input (the tool adds dry_run). */
export const CreateContactArgs = z.object({
  first_name: FirstName.optional(),
  last_name: LastName.optional(),
  name: FullName.optional(),
  email: Email.optional(),
  phone: Phone.optional(),
  company_name: ShortText.optional().describe('Company; an existing one is linked.'),
  tags: Tags.optional(),
  custom_fields: CustomFieldsInput.optional(),
  responsible_user_id: ResponsibleId.optional(),
});

/** update_contact's input (the tool adds dry_run). */
export const UpdateContactArgs = z.object({
  id: RecordId,
  first_name: FirstName.optional(),
  last_name: LastName.optional(),
  name: FullName.optional(),
  responsible_user_id: ResponsibleId.optional(),
  phones_to_add: z.array(Phone).max(10).optional().describe('Phones to add.'),
  phones_to_remove: z.array(Phone).max(10).optional().describe('Phones to remove.'),
  emails_to_add: z.array(Email).max(10).optional().describe('Emails to add.'),
  emails_to_remove: z.array(Email).max(10).optional().describe('Emails to remove.'),
  tags_to_add: Tags.optional(),
  tags_to_delete: Tags.optional(),
  custom_fields: CustomFieldsInput.optional(),
});

export const Entity = z.enum(['lead', 'contact', 'company', 'deal']).describe('What the record is attached to ("deal" on Bitrix24 only).');

/** add_note's input (the tool adds dry_run). */
export const AddNoteArgs = z.object({
  entity: Entity,
  entity_id: IdInput.describe('Id of that record.'),
  text: z.string().min(1).max(20_000).describe('Note text.'),
});

/** create_task's input (the tool adds dry_run). */
export const CreateTaskArgs = z.object({
  text: z.string().min(1).max(5_000).describe('What to do.'),
  complete_till: z.string().max(40).describe('Deadline, ISO 8601 (e.g. 2026-12-01T15:00:00Z).'),
  entity: Entity.optional(),
  entity_id: IdInput.optional().describe('Id of that record.'),
  responsible_user_id: IdInput.optional().describe("Responsible user id (default: the token's user)."),
  task_type_id: z.number().int().positive().optional().describe('Kommo: 1 = follow-up (default), 2 = meeting.'),
});

/*
 * The inferred inputs a capability's members receive: the parsed arguments (defaults applied), without the
 * tool-only switches (`dry_run` travels in the call context, `with_custom_fields` is applied by the tool).
 */
export type CustomFieldInput = z.output<typeof CustomFieldsInput>[number];
export type LeadFilter = Omit<z.output<typeof ListLeadsArgs>, 'with_custom_fields'>;
/** The order of a list tool's pages; each CRM maps it to its own `order` parameter. */
export type ListSort = LeadFilter['sort'];
export type CreateLeadInput = z.output<typeof CreateLeadArgs>;
/** The person a new lead is for. */
export type ContactInput = NonNullable<CreateLeadInput['contact']>;
export type CreateContactInput = z.output<typeof CreateContactArgs>;
export type UpdateLeadInput = z.output<typeof UpdateLeadArgs>;
export type UpdateContactInput = z.output<typeof UpdateContactArgs>;
export type NoteInput = z.output<typeof AddNoteArgs>;
export type TaskInput = z.output<typeof CreateTaskArgs>;
export type ListQuery = Omit<z.output<typeof ListQueryArgs>, 'with_custom_fields'>;

// ---------------------------------------------------------------- companies (toolset `companies`)

/** create_company's input (the tool adds dry_run). */
export const CreateCompanyArgs = z.object({
  name: ShortText.min(1).describe('Company name.'),
  phone: Phone.optional(),
  email: Email.optional(),
  tags: Tags.optional(),
  custom_fields: CustomFieldsInput.optional(),
  responsible_user_id: ResponsibleId.optional(),
});

/** update_company's input (the tool adds dry_run). */
export const UpdateCompanyArgs = z.object({
  id: RecordId,
  name: ShortText.min(1).optional().describe('New name.'),
  responsible_user_id: ResponsibleId.optional(),
  phones_to_add: z.array(Phone).max(10).optional().describe('Phones to add.'),
  phones_to_remove: z.array(Phone).max(10).optional().describe('Phones to remove.'),
  emails_to_add: z.array(Email).max(10).optional().describe('Emails to add.'),
  emails_to_remove: z.array(Email).max(10).optional().describe('Emails to remove.'),
  tags_to_add: Tags.optional(),
  tags_to_delete: Tags.optional(),
  custom_fields: CustomFieldsInput.optional(),
});

/** link_contact_to_company's input (the tool adds dry_run). */
export const LinkContactToCompanyArgs = z.object({
  contact_id: IdInput.describe('Contact id.'),
  company_id: IdInput.describe('Company id.'),
  replace_existing: z
    .boolean()
    .optional()
    .describe("Kommo keeps one company per contact: true replaces the contact's current company (a removal, so a delete)."),
});

export type CreateCompanyInput = z.output<typeof CreateCompanyArgs>;
export type UpdateCompanyInput = z.output<typeof UpdateCompanyArgs>;
export type LinkContactToCompanyInput = z.output<typeof LinkContactToCompanyArgs>;

/** list_notes' input. */
export const ListNotesArgs = z.object({
  entity: Entity,
  entity_id: IdInput.describe('Id of that record.'),
  limit: Limit,
  cursor: Cursor,
});

/** list_tasks' input. */
export const ListTasksArgs = z.object({
  entity: Entity.optional(),
  entity_id: IdInput.optional().describe('Id of that record (with entity).'),
  responsible_user_id: ResponsibleId.optional(),
  status: z.enum(['open', 'done', 'overdue']).optional().describe('open, done, or overdue (open past its deadline); default: all.'),
  due_from: DateInput.optional().describe('Deadline on or after (ISO 8601).'),
  due_to: DateInput.optional().describe('Deadline on or before (ISO 8601).'),
  limit: Limit,
  cursor: Cursor,
});

/** complete_task's input (the tool adds dry_run). */
export const CompleteTaskArgs = z.object({
  id: IdInput.describe('Task id (list_tasks).'),
  result_text: z.string().min(1).max(5_000).optional().describe('The outcome (Kommo: required, stored as the task result).'),
});

export type ListNotesInput = z.output<typeof ListNotesArgs>;
export type ListTasksInput = z.output<typeof ListTasksArgs>;
export type CompleteTaskInput = z.output<typeof CompleteTaskArgs>;

/** move_lead's input (the tool adds dry_run): exactly one of stage_id, won, lost. */
export const MoveLeadArgs = z.object({
  id: RecordId,
  entity: z.enum(['lead', 'deal']).optional().describe('Bitrix24 only: lead or deal (default: lead where the portal has leads, else deal).'),
  stage_id: IdInput.optional().describe('Target stage id (get_pipelines).'),
  won: z.literal(true).optional().describe('Close as won.'),
  lost: z.literal(true).optional().describe('Close as lost.'),
  loss_reason_id: IdInput.optional().describe('Kommo: why it was lost (with lost).'),
  pipeline_id: IdInput.optional().describe("Pipeline of the stage (default: the lead's own)."),
});
export type MoveLeadInput = z.output<typeof MoveLeadArgs>;
