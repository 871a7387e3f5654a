/**
 * The emulator's live data, kept in Kommo's own JSON shapes (fact sheet §5–§9) so tests can assert on it
 * directly. Stored records carry no `_links` (those depend on the origin and are added when rendering), and
 * relations are stored on one side only: a lead holds its contacts and companies, a contact its company;
 * the reverse views (`with=leads`, `with=contacts`) are derived.
 */

export type EntityType = 'leads' | 'contacts' | 'companies';
export const ENTITY_TYPES: readonly EntityType[] = ['leads', 'contacts', 'companies'];

export interface KTagRef {
  id: number;
  name: string;
  color: string | null;
}

export interface KTag extends KTagRef {
  entity: EntityType;
}

export interface KCustomFieldValueItem {
  value: string | number | boolean;
  enum_id?: number;
  /** Enum code, as in the read shape of multitext fields (`enum: "WORK"`, fixture GET_contacts_id). */
  enum?: string;
}

export interface KCustomFieldValue {
  field_id: number;
  field_name: string;
  field_code: string | null;
  field_type: string;
  values: KCustomFieldValueItem[];
}

export interface KEnum {
  id: number;
  value: string;
  sort: number;
}

export interface KCustomField {
  id: number;
  name: string;
  type: string;
  account_id: number;
  code: string | null;
  sort: number;
  is_api_only: boolean;
  enums: KEnum[] | null;
  group_id: string | null;
  required_statuses: Array<{ status_id: number; pipeline_id: number }>;
  is_deletable: boolean;
  is_predefined: boolean;
  entity_type: EntityType;
  tracking_callback: string | null;
  remind: string | null;
  triggers: unknown[];
  currency: string | null;
  hidden_statuses: unknown[];
  chained_lists: unknown[] | null;
}

export interface KLead {
  id: number;
  name: string;
  price: number;
  responsible_user_id: number;
  group_id: number;
  status_id: number;
  pipeline_id: number;
  loss_reason_id: number | null;
  source_id: number | null;
  created_by: number;
  updated_by: number;
  created_at: number;
  updated_at: number;
  closed_at: number | null;
  closest_task_at: number | null;
  is_deleted: boolean;
  custom_fields_values: KCustomFieldValue[] | null;
  score: number | null;
  account_id: number;
  is_price_modified_by_robot: boolean;
  _embedded: {
    tags: KTagRef[];
    contacts: Array<{ id: number; is_main: boolean }>;
    companies: Array<{ id: number }>;
  };
}

export interface KContact {
  id: number;
  name: string;
  first_name: string;
  last_name: string;
  responsible_user_id: number;
  group_id: number;
  created_by: number;
  updated_by: number;
  created_at: number;
  updated_at: number;
  closest_task_at: number | null;
  custom_fields_values: KCustomFieldValue[] | null;
  account_id: number;
  _embedded: { tags: KTagRef[]; companies: Array<{ id: number }> };
}

export interface KCompany {
  id: number;
  name: string;
  responsible_user_id: number;
  group_id: number;
  created_by: number;
  updated_by: number;
  created_at: number;
  updated_at: number;
  closest_task_at: number | null;
  custom_fields_values: KCustomFieldValue[] | null;
  account_id: number;
  _embedded: { tags: KTagRef[] };
}

export interface KStatus {
  id: number;
  name: string;
  sort: number;
  is_editable: boolean;
  pipeline_id: number;
  color: string;
  /** 1 = incoming leads, 0 = regular (§7). */
  type: 0 | 1;
  account_id: number;
}

export interface KPipeline {
  id: number;
  name: string;
  sort: number;
  is_main: boolean;
  is_unsorted_on: boolean;
  is_archive: boolean;
  account_id: number;
  _embedded: { statuses: KStatus[] };
}

export interface KRightsSet {
  view: string;
  edit: string;
  add: string;
  delete: string;
  export: string;
}

export interface KUser {
  id: number;
  name: string;
  email: string;
  lang: string;
  rights: {
    leads: KRightsSet;
    contacts: KRightsSet;
    companies: KRightsSet;
    tasks: { edit: string; delete: string };
    mail_access: boolean;
    catalog_access: boolean;
    status_rights: Array<{ entity_type: string; pipeline_id: number; status_id: number; rights: Record<string, string> }>;
    is_admin: boolean;
    is_free: boolean;
    is_active: boolean;
    group_id: number | null;
    role_id: number | null;
  };
}

export interface KNote {
  id: number;
  entity_id: number;
  created_by: number;
  updated_by: number;
  created_at: number;
  updated_at: number;
  responsible_user_id: number;
  group_id: number;
  note_type: string;
  params: Record<string, unknown>;
  account_id: number;
}

export interface KTask {
  id: number;
  created_by: number;
  updated_by: number;
  created_at: number;
  updated_at: number;
  responsible_user_id: number;
  group_id: number;
  entity_id: number | null;
  entity_type: EntityType | null;
  duration: number;
  is_completed: boolean;
  task_type_id: number;
  text: string;
  result?: { text: string };
  complete_till: number;
  account_id: number;
}

export interface KEvent {
  id: string;
  type: string;
  entity_id: number;
  entity_type: 'lead' | 'contact' | 'company' | 'task';
  created_by: number;
  created_at: number;
  value_after: unknown[];
  value_before: unknown[];
  account_id: number;
}

export interface KWebhook {
  id: number;
  destination: string;
  created_at: number;
  updated_at: number;
  account_id: number;
  created_by: number;
  sort: number;
  disabled: boolean;
  settings: string[];
}

/** §12: a customer (the periodic-purchases entity) with its loyalty bonus points. */
export interface KCustomer {
  id: number;
  name: string;
  responsible_user_id: number;
  created_by: number;
  updated_by: number;
  created_at: number;
  updated_at: number;
  is_deleted: boolean;
  ltv: number;
  purchases_count: number;
  bonus_points: number;
  account_id: number;
}

export interface KTransaction {
  id: number;
  customer_id: number;
  price: number;
  comment: string | null;
  completed_at: number;
  created_by: number;
  created_at: number;
  updated_at: number;
  /** Bonus points this transaction credited (only with `accrue_bonus`). */
  accrued_bonus: number;
  account_id: number;
}

export interface KAccount {
  id: number;
  name: string;
  subdomain: string;
  created_at: number;
  created_by: number;
  updated_at: number;
  updated_by: number;
  country: string;
  currency: string;
  currency_symbol: string;
  customers_mode: string;
  is_unsorted_on: boolean;
  is_loss_reason_enabled: boolean;
  is_helpbot_enabled: boolean;
  is_technical_account: boolean;
  contact_name_display_order: 1 | 2;
  amojo_id: string;
  version: number;
  users_groups: Array<{ id: number; name: string; uuid: string | null }>;
  task_types: Array<{ id: number; name: string; color: string | null; icon_id: number | null; code: string | null }>;
}

export interface KommoState {
  account: KAccount;
  users: Map<number, KUser>;
  pipelines: Map<number, KPipeline>;
  leads: Map<number, KLead>;
  contacts: Map<number, KContact>;
  companies: Map<number, KCompany>;
  customFields: Record<EntityType, Map<number, KCustomField>>;
  tags: Record<EntityType, Map<number, KTag>>;
  notes: Record<EntityType, Map<number, KNote>>;
  tasks: Map<number, KTask>;
  events: KEvent[];
  webhooks: Map<number, KWebhook>;
  customers: Map<number, KCustomer>;
  transactions: Map<number, KTransaction>;
  /** Next id per kind; ids only grow, as on the real API. */
  nextId: {
    lead: number;
    contact: number;
    company: number;
    tag: number;
    note: number;
    task: number;
    webhook: number;
    event: number;
    customer: number;
    transaction: number;
    field: number;
    enum: number;
  };
}

export type KEntity = KLead | KContact | KCompany;

export function entityMap(state: KommoState, entity: EntityType): Map<number, KEntity> {
  return entity === 'leads' ? state.leads : entity === 'contacts' ? state.contacts : state.companies;
}
