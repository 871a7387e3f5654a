/**
 * The capability interfaces (types only; CAPABILITY_MEMBERS in types.ts lists their members for the run-time
 * check). Each interface is one group of a provider's primitives, named functions a wing builds in the file of
 * its concern (e.g. `kommo/leads.ts` → `kommoLeads(parts)`); the provider object is the sum of its groups.
 */
import type { LinkContactToCompanyInput, UpdateCompanyInput } from '../domain/inputs.js';
import type {
  CompleteTaskInput,
  LeadFilter,
  ListNotesInput,
  ListQuery,
  ListTasksInput,
  NoteInput,
  TaskInput,
  UpdateContactInput,
  UpdateLeadInput,
} from '../domain/inputs.js';
import type { CompleteTaskResult, NoteItem, TaskItem } from '../domain/records.js';
import type {
  Company,
  CompanyItem,
  Contact,
  ContactItem,
  CustomFieldDef,
  Id,
  Lead,
  Note,
  Page,
  Pipeline,
  SearchResult,
  Tag,
  Task,
  User,
  WriteResult,
} from '../domain/records.js';
import type { CallContext } from './call-context.js';
import type { MoveLeadInput } from '../domain/inputs.js';
import type { AcceptIncomingInput, IncomingLead, IncomingOutcome, ListIncomingInput, LogCallInput, LoggedCall } from '../domain/calls.js';
import type { PlannedRequest, Ref } from '../domain/records.js';
import type { CompanyPrimitives, ContactPrimitives, LeadPrimitives } from './create-steps.js';
import type { RecordHistory, RecordHistoryQuery } from '../domain/history.js';

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
  updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>>;
  searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult>;
  /** The CRM's own steps of create_lead (create-steps.ts); services/create-lead.ts runs them, the tool calls it. */
  readonly createLeadSteps: LeadPrimitives;
  /** move_lead: a request that changes only the stage (the narrow update CRM_SAFE_UPDATES=stage admits). */
  moveLead(ctx: CallContext, input: MoveLeadInput): Promise<MoveLeadResult>;
}

/** Where a lead stands: its pipeline and stage, names beside ids. */
export interface StagePoint {
  pipeline: { id: Id; name: string | null } | null;
  stage: { id: Id; name: string | null } | null;
}

/** What move_lead answers: the stage before and after, in words too ("moved from Qualification to Proposal"). */
export interface MoveLeadResult {
  dry_run?: boolean;
  lead: Lead | null;
  from: StagePoint;
  to: StagePoint;
  moved: string;
  requests?: PlannedRequest[];
}

export interface ContactsApi {
  listContacts(ctx: CallContext, q: ListQuery): Promise<Page<ContactItem>>;
  getContact(ctx: CallContext, id: Id): Promise<Contact>;
  updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>>;
  /** The CRM's own steps of create_contact (create-steps.ts); services/create-contact.ts runs them, the tool calls it. */
  readonly createContactSteps: ContactPrimitives;
}

export interface CompaniesApi {
  listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<CompanyItem>>;
  getCompany(ctx: CallContext, id: Id): Promise<Company>;
  updateCompany(ctx: CallContext, input: UpdateCompanyInput): Promise<WriteResult<Company>>;
  linkContactToCompany(ctx: CallContext, input: LinkContactToCompanyInput): Promise<ContactCompanyLink>;
  /** The CRM's own steps of create_company (create-steps.ts); services/create-company.ts runs them, the tool calls it. */
  readonly createCompanySteps: CompanyPrimitives;
}

/** What link_contact_to_company did: the contact and company after it, and the link it replaced, if any. */
export interface ContactCompanyLink {
  dry_run?: boolean;
  /** False when the contact already was linked to that company (nothing was sent). */
  linked: boolean;
  contact: Contact | null;
  company: Company | null;
  /** The company this link replaced (Kommo keeps one company per contact); null when none was. */
  replaced: Ref | null;
  note?: string;
  requests?: PlannedRequest[];
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
  /** One record's notes, newest first, each naming the record. */
  listNotes(ctx: CallContext, q: ListNotesInput): Promise<Page<NoteItem>>;
}

export interface TasksApi {
  createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>>;
  /** Tasks by record, responsible user, status and deadline, earliest deadline first. */
  listTasks(ctx: CallContext, q: ListTasksInput): Promise<Page<TaskItem>>;
  /** Marks a task done (a task already done is answered as such, nothing sent). */
  completeTask(ctx: CallContext, input: CompleteTaskInput): Promise<CompleteTaskResult>;
}

export interface DeleteApi {
  deleteRecord(ctx: CallContext, entity: 'lead' | 'deal' | 'contact', id: Id): Promise<WriteResult<{ id: Id; entity: string }>>;
}

export interface CallsApi {
  /** Looks the number up first (a CRM may drop a call for an unknown number), then logs the call once. */
  logCall(ctx: CallContext, input: LogCallInput): Promise<LoggedCall>;
}

export interface IncomingApi {
  listIncomingLeads(ctx: CallContext, q: ListIncomingInput): Promise<Page<IncomingLead>>;
  acceptIncomingLead(ctx: CallContext, input: AcceptIncomingInput): Promise<IncomingOutcome>;
  declineIncomingLead(ctx: CallContext, uid: string): Promise<IncomingOutcome>;
}

export interface BulkOptions {
  /** False: create without the CRM's automation rules and workflows (only where bulkCanSkipAutomations). */
  runAutomations?: boolean;
}

/** One lead's outcome in a batched create (BulkApi): made, or refused by the CRM with its reason. */
export type BulkOutcome = { ok: true; id: Id; contact_id: Id | null; company_id: Id | null } | { ok: false; message: string };

/**
 * Many leads at once (import_leads, src/services/import-leads.ts). The requests are the ones the CRM's own
 * createLeadSteps.build made (so every row is checked and shaped exactly as create_lead does it); the wing sends
 * them in as few requests as its API allows and records on each request the ids of what it already made, so a
 * resend after a failure never makes a contact or company twice.
 */
export interface BulkApi {
  /** At most this many leads in one batch. */
  readonly bulkBatchSize: number;
  /** Whether the CRM can create leads without running its automations (import_leads run_automations: false). */
  readonly bulkCanSkipAutomations: boolean;
  /** One outcome per request, in order; a lost answer throws a CrmError with `ambiguous` (the service looks first). */
  bulkCreateLeads(ctx: CallContext, requests: readonly unknown[], o?: BulkOptions): Promise<BulkOutcome[]>;
  /** The requests a dry run of one batch shows, in the order they would be sent. */
  bulkPlan(requests: readonly unknown[], o?: BulkOptions): PlannedRequest[];
  /**
   * Which of these people the CRM may already have, asked for many at once where the CRM batches its look-ups
   * (false: surely nobody holds the phone or email, so the full look-up is skipped; true: look them up).
   */
  bulkMayExist(ctx: CallContext, people: ReadonlyArray<{ e164?: string; email?: string }>): Promise<boolean[]>;
  /** A record's page in the CRM's web interface (the mapping's `url`), for the per-row results. */
  bulkUrl(entity: 'lead' | 'deal' | 'contact' | 'company', id: Id): string;
}

export interface HistoryApi {
  /** One record's history, newest first, names beside ids (domain/history.ts). */
  recordHistory(ctx: CallContext, q: RecordHistoryQuery): Promise<RecordHistory>;
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
  /** Companies: list, get, create (duplicate-safe), update, and linking a contact to a company. */
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
  /** Logging phone calls against the person who has the number. */
  calls: CallsApi;
  /** Incoming (unsorted) leads: list, accept, decline. */
  incoming: IncomingApi;
  /** A record's history: stage moves, responsible changes, field changes (get_record_history). */
  history: HistoryApi;
  /** Batched lead creates for a bulk import. */
  bulk: BulkApi;
}
