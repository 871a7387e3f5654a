/**
 * The emulator's live data, kept in Bitrix24's own shapes (UPPER_CASE fields, numeric strings, `Y`/`N`
 * flags, multi-fields as `[{ID, VALUE_TYPE, VALUE, TYPE_ID}]`), so what tests inspect is what the API returns.
 */
import type { EntityKind, MultiType } from './schema.js';

/** One CRM record (lead, deal, contact, company, activity, comment) as the API shows it. */
export type BRecord = Record<string, unknown>;

/** A multi-field value (§7.4). */
export interface BMulti {
  ID: string;
  VALUE_TYPE: string;
  VALUE: string;
  TYPE_ID: MultiType;
}

/** A pipeline as `crm.category.list` returns it (fixture crm.category.list.json). */
export interface BCategory {
  id: number;
  name: string;
  sort: number;
  entityTypeId: number;
  isDefault: 'Y' | 'N';
  originId?: string;
  originatorId?: string;
}

/** A directory row as `crm.status.list` returns it (fixture crm.status.list.json). */
export interface BStatus {
  ID: string;
  ENTITY_ID: string;
  STATUS_ID: string;
  NAME: string;
  NAME_INIT: string;
  SORT: string;
  SYSTEM: 'Y' | 'N';
  CATEGORY_ID: string | null;
  COLOR: string | null;
  SEMANTICS: 'S' | 'F' | null;
  EXTRA?: { SEMANTICS: 'process' | 'success' | 'failure' | 'apology'; COLOR: string };
}

/** A user as `user.get`/`user.current` return it: exactly the keys of fixture batch.json. */
export interface BUser {
  ID: string;
  ACTIVE: boolean;
  NAME: string;
  LAST_NAME: string;
  EMAIL: string;
  LAST_LOGIN: string;
  DATE_REGISTER: string;
  IS_ONLINE: 'Y' | 'N';
  TIMESTAMP_X: string;
  LAST_ACTIVITY_DATE: string;
  PERSONAL_GENDER: string;
  PERSONAL_BIRTHDAY: string;
  UF_EMPLOYMENT_DATE: string;
  UF_DEPARTMENT: number[];
}

export interface BDepartment {
  ID: string;
  NAME: string;
  SORT: number;
  PARENT?: string;
  UF_HEAD?: string;
}

/** A CRM user field as `crm.*.userfield.list` returns it (§7.5). Labels are per language. */
export interface BUserField {
  ID: string;
  ENTITY_ID: string;
  FIELD_NAME: string;
  USER_TYPE_ID: 'string' | 'enumeration' | 'boolean' | 'double' | 'integer' | 'date' | 'datetime';
  XML_ID: string | null;
  SORT: string;
  MULTIPLE: 'Y' | 'N';
  MANDATORY: 'Y' | 'N';
  SHOW_FILTER: string;
  SHOW_IN_LIST: 'Y' | 'N';
  EDIT_IN_LIST: 'Y' | 'N';
  IS_SEARCHABLE: 'Y' | 'N';
  SETTINGS: Record<string, unknown>;
  EDIT_FORM_LABEL: Record<string, string>;
  LIST_COLUMN_LABEL: Record<string, string>;
  LIST_FILTER_LABEL: Record<string, string>;
  LIST?: Array<{ ID: string; SORT: string; VALUE: string; DEF: 'Y' | 'N'; XML_ID: string }>;
}

/** A task in the camelCase shape of `tasks.task.*` (§7.8). */
export interface BTask {
  id: string;
  title: string;
  description: string;
  responsibleId: string;
  createdBy: string;
  createdDate: string;
  changedDate: string;
  deadline: string | null;
  status: string;
  priority: string;
  groupId: string;
  closedDate: string | null;
  ufCrmTask: string[];
}

export interface BEventBinding {
  id: number;
  event: string;
  handler: string;
  auth_type: string;
  offline: 0 | 1;
  /** The OAuth application that bound it. */
  clientId: string;
  /** `auth_connector` of an offline binding: its own queue, without the changes made with it (events.ts). */
  connector?: string;
  /** `options` as bound (`minTimeout` for ONOFFLINEEVENT). */
  options?: Record<string, unknown>;
}

/** One queued offline event (§8, §9: `event.offline.get` returns and deletes them). */
export interface BOfflineEvent {
  ID: string;
  TIMESTAMP_X: string;
  EVENT_NAME: string;
  EVENT_DATA: Record<string, unknown>;
  EVENT_ADDITIONAL: Record<string, unknown>;
  MESSAGE_ID: string;
  /** The reservation (`event.offline.get` with clear=0), '' when none. */
  PROCESS_ID: string;
  ERROR: '0' | '1';
  clientId: string;
  connector: string;
  /** One record per queue, event and item (the queue keeps the latest state only). */
  key: string;
  /** Epoch ms of the latest change, and of the reservation (kept up to 30 days). */
  at: number;
  reservedAt?: number;
}

/** One stage move (`crm.stagehistory.list`): TYPE_ID 1 created, 2 intermediate stage, 3 final stage, 5 pipeline changed. */
export interface BStageHistory {
  ID: number;
  TYPE_ID: 1 | 2 | 3 | 5;
  OWNER_ID: number;
  CREATED_TIME: string;
  /** Who moved it (not part of the API's answer; the emulator's own record). */
  byUserId: number;
  entityTypeId: 1 | 2;
  /** Deals. */
  CATEGORY_ID?: number;
  STAGE_SEMANTIC_ID?: 'P' | 'S' | 'F';
  STAGE_ID?: string;
  /** Leads. */
  STATUS_ID?: string;
  STATUS_SEMANTIC_ID?: 'P' | 'S' | 'F';
}

/** A letter the portal sent from its mailbox (an outgoing e-mail activity, §7.8): what tests check was not sent. */
export interface BOutgoingMail {
  activityId: number;
  from: string;
  to: string[];
  subject: string;
  body: string;
  sentAt: string;
}

export interface BitrixState {
  leads: Map<number, BRecord>;
  deals: Map<number, BRecord>;
  contacts: Map<number, BRecord>;
  companies: Map<number, BRecord>;
  categories: BCategory[];
  statuses: BStatus[];
  users: BUser[];
  /** Users with portal admin rights (shown by `profile` as ADMIN). */
  adminIds: number[];
  departments: BDepartment[];
  userFields: BUserField[];
  activities: Map<number, BRecord>;
  timelineComments: Map<number, BRecord>;
  tasks: Map<number, BTask>;
  eventBindings: BEventBinding[];
  offlineEvents: BOfflineEvent[];
  /** `crm.stagehistory.list` rows, oldest first (stage-history.ts records one on every stage move). */
  stageHistory: BStageHistory[];
  /** Letters sent by outgoing e-mail activities (§7.8), oldest first. */
  outbox: BOutgoingMail[];
  /** Last id handed out per sequence (leads, deals, …, multi-field values). */
  seq: Record<'lead' | 'deal' | 'contact' | 'company' | 'fm' | 'activity' | 'comment' | 'task' | 'status' | 'event' | 'offline' | 'stagehistory', number>;
  /** `crm.settings.mode.get`: 1 classic (with leads), 2 simple (no leads). */
  mode: 'classic' | 'simple';
}

export function emptyState(): BitrixState {
  return {
    leads: new Map(),
    deals: new Map(),
    contacts: new Map(),
    companies: new Map(),
    categories: [],
    statuses: [],
    users: [],
    adminIds: [],
    departments: [],
    userFields: [],
    activities: new Map(),
    timelineComments: new Map(),
    tasks: new Map(),
    eventBindings: [],
    offlineEvents: [],
    stageHistory: [],
    outbox: [],
    seq: { lead: 0, deal: 0, contact: 0, company: 0, fm: 0, activity: 0, comment: 0, task: 0, status: 0, event: 0, offline: 0, stagehistory: 0 },
    mode: 'classic',
  };
}

export function table(state: BitrixState, kind: EntityKind): Map<number, BRecord> {
  return kind === 'lead' ? state.leads : kind === 'deal' ? state.deals : kind === 'contact' ? state.contacts : state.companies;
}

export function nextId(state: BitrixState, seq: keyof BitrixState['seq']): number {
  state.seq[seq] += 1;
  return state.seq[seq];
}

/** `ENTITY_ID` of the stage directory of a deal pipeline (§7.6). */
export function stageEntityId(categoryId: number): string {
  return categoryId === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${categoryId}`;
}

/** Stages of one deal pipeline in SORT order. */
export function dealStages(state: BitrixState, categoryId: number): BStatus[] {
  const e = stageEntityId(categoryId);
  return state.statuses.filter((s) => s.ENTITY_ID === e).sort((a, b) => Number(a.SORT) - Number(b.SORT));
}

export function findStatus(state: BitrixState, entityId: string, statusId: string): BStatus | undefined {
  return state.statuses.find((s) => s.ENTITY_ID === entityId && s.STATUS_ID === statusId);
}

/** The pipeline a deal stage id belongs to (`C3:NEW` → 3, `NEW` → 0), if the stage exists. */
export function categoryOfStage(state: BitrixState, stageId: string): number | undefined {
  const s = state.statuses.find((x) => x.STATUS_ID === stageId && x.ENTITY_ID.startsWith('DEAL_STAGE'));
  if (!s) return undefined;
  return s.ENTITY_ID === 'DEAL_STAGE' ? 0 : Number(s.ENTITY_ID.slice('DEAL_STAGE_'.length));
}

/** `P` in progress, `S` success, `F` failure (§7.2 STATUS_SEMANTIC_ID / STAGE_SEMANTIC_ID). */
export function semanticOf(s: BStatus | undefined): 'P' | 'S' | 'F' {
  return s?.SEMANTICS === 'S' ? 'S' : s?.SEMANTICS === 'F' ? 'F' : 'P';
}

/** A status row with the shape of fixture crm.status.list.json. */
export function makeStatus(
  state: BitrixState,
  entityId: string,
  statusId: string,
  name: string,
  sort: number,
  o: {
    system?: boolean;
    categoryId?: number | null;
    color?: string | null;
    semantics?: 'S' | 'F' | null;
    extra?: 'process' | 'success' | 'failure' | 'apology';
  } = {},
): BStatus {
  const id = nextId(state, 'status');
  const row: BStatus = {
    ID: String(id),
    ENTITY_ID: entityId,
    STATUS_ID: statusId,
    NAME: name,
    NAME_INIT: o.system ? name : '',
    SORT: String(sort),
    SYSTEM: o.system ? 'Y' : 'N',
    CATEGORY_ID: o.categoryId === undefined || o.categoryId === null ? null : String(o.categoryId),
    COLOR: o.color ?? null,
    SEMANTICS: o.semantics ?? null,
  };
  if (o.extra) row.EXTRA = { SEMANTICS: o.extra, COLOR: o.color ?? '#39A8EF' };
  return row;
}
