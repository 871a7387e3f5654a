/**
 * The provider-neutral domain: compact shapes an agent can use directly (names beside ids, phones and
 * emails flattened, ISO dates, no HAL noise), and the interface every CRM provider implements.
 * The zod schemas double as the tools' output schemas.
 */
import type {
  CapabilityApi,
  CompaniesApi,
  ContactsApi,
  CustomFieldsApi,
  DeleteApi,
  CallsApi,
  IncomingApi,
  HistoryApi,
  BulkApi,
  LeadsApi,
  NotesApi,
  PipelinesApi,
  TagsApi,
  TasksApi,
  UsersApi,
} from './capabilities.js';
import type { PolicyFlags } from '../policy/policy.js';
import type { AccountInfo } from '../domain/records.js';
import type { CallContext } from './call-context.js';

// The records and inputs moved to src/domain/; re-exported while the wings still import them from here.
export * from '../domain/records.js';
export type * from '../domain/inputs.js';
export type { CallContext } from './call-context.js';
export type * from './create-steps.js';

export type Capability = keyof CapabilityApi;

/** The members each capability promises, checked on every provider the registry builds. */
export const CAPABILITY_MEMBERS = {
  leads: ['listLeads', 'getLead', 'updateLead', 'searchLeadByContact', 'createLeadSteps', 'moveLead'],
  deals: [],
  contacts: ['listContacts', 'getContact', 'updateContact', 'createContactSteps'],
  companies: ['listCompanies', 'getCompany', 'updateCompany', 'linkContactToCompany', 'createCompanySteps'],
  pipelines: ['pipelines'],
  custom_fields: ['customFields'],
  users: ['users'],
  tags: ['tags'],
  notes: ['addNote', 'listNotes'],
  tasks: ['createTask', 'listTasks', 'completeTask'],
  delete: ['deleteRecord'],
  calls: ['logCall'],
  incoming: ['listIncomingLeads', 'acceptIncomingLead', 'declineIncomingLead'],
  history: ['recordHistory'],
  bulk: ['bulkBatchSize', 'bulkCreateLeads', 'bulkPlan', 'bulkMayExist', 'bulkUrl', 'bulkCanSkipAutomations'],
} as const satisfies { readonly [C in Capability]: ReadonlyArray<keyof CapabilityApi[C]> };

// Compile-time: the table above names every member of every capability (a member left out would go unchecked).
type Unlisted = { [C in Capability]: Exclude<keyof CapabilityApi[C], (typeof CAPABILITY_MEMBERS)[C][number]> }[Capability];
const _everyMemberListed: [Unlisted] extends [never] ? true : never = true;

export const CAPABILITIES = Object.keys(CAPABILITY_MEMBERS) as Capability[];

/**
 * The interface every CRM provider implements: who it is, what it can do, and the account. Everything else
 * comes with a capability. What is one CRM's own (its raw API) is not here: its module's own tools reach it
 * (contract.ts `tools`), and they are registered for that CRM's connections only.
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
    Partial<DeleteApi>,
    Partial<CallsApi>,
    Partial<IncomingApi>,
    Partial<HistoryApi>,
    Partial<BulkApi> {
  /** The CRM: the kind of the module that built it (registry.ts). */
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

export type * from './capabilities.js';
