/**
 * The capability interfaces (types only; CAPABILITY_MEMBERS in types.ts lists their members for the run-time
 * check). Each interface is one group of a provider's primitives, named functions a wing builds in the file of
 * its concern (e.g. `kommo/leads.ts` → `kommoLeads(parts)`); the provider object is the sum of its groups.
 */
import type { LeadFilter, ListQuery, NoteInput, TaskInput, UpdateContactInput, UpdateLeadInput } from '../domain/inputs.js';
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
import type { ContactPrimitives, LeadPrimitives } from './create-steps.js';

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
}
