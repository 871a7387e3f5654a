/**
 * The Bitrix24 provider: the class that wires the pieces and implements CrmProvider by delegating. api.ts
 * (calls, batch, operating budget, portal moves), schemas.ts (lenient payload schemas), metadata.ts (cached
 * mode, pipelines, stages, fields, users; checks), lists.ts (fast paging in one batch), records.ts (by id,
 * links, search by phone/email), leads.ts, contacts.ts, fields.ts, activity.ts; duplicates.ts, links.ts,
 * contact-search.ts, users.ts, readahead.ts, country.ts, relocation.ts as before. Reads are packed into
 * `batch` requests (§4.1), searches use `crm.duplicate.findbycomm` (§7.7), and creates are duplicate-safe
 * (services/create-lead.ts) and built as one batch with `$result` references.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { BitrixConnection } from './connection.js';
import { registerConnectionSecrets } from './connection.js';
import { HttpCore, type HttpEvent } from '../../http/client.js';
import { LeakyBucketLimiter, type RateLimiter } from '../../http/limiter.js';
import type { OperationKind } from '../../http/retry.js';
import type { PolicyFlags } from '../../policy/policy.js';
import type { Store } from '../../store/store.js';
import type {
  AccountInfo,
  CallContext,
  Company,
  CompanyItem,
  Contact,
  ContactItem,
  CreateContactInput,
  CreateContactResult,
  CreateLeadInput,
  CreateLeadResult,
  CrmProvider,
  CustomFieldDef,
  Id,
  Lead,
  LeadFilter,
  ListQuery,
  Note,
  NoteInput,
  Page,
  Pipeline,
  SearchResult,
  Task,
  TaskInput,
  UpdateContactInput,
  UpdateLeadInput,
  User,
  WriteResult,
} from '../types.js';
import * as activity from './activity.js';
import { makeBitrixAdapter } from './adapter.js';
import { BitrixApi, type BatchResult, type CallResult } from './api.js';
import { BitrixAuth } from './auth.js';
import * as contacts from './contacts.js';
import * as leads from './leads.js';
import { BitrixLists } from './lists.js';
import { BITRIX24_CAPABILITIES } from './module.js';
import * as meta from './metadata.js';
import { BITRIX_PLANS, BitrixMeta, type BitrixParts, type Entity } from './metadata.js';
import { searchLeadByContact } from './records.js';
import type { PortalMove } from './relocation.js';

export { BITRIX_PLANS };
export type { BatchResult, CallResult };
export { bxId } from './ids.js';

export interface BitrixProviderOptions {
  store: Store;
  timeoutMs: number;
  maxRetries: number;
  logger?: Logger;
  dispatcher?: Dispatcher;
  limiter?: RateLimiter;
  onEvent?: (e: HttpEvent) => void;
  backoffBaseMs?: number;
  /** Emulators the caller started: a portal move between two of these loopback origins may carry the credential (relocation.ts). */
  trustedOrigins?: readonly string[];
}

export class BitrixProvider implements CrmProvider {
  readonly kind = 'bitrix24' as const;
  readonly capabilities = BITRIX24_CAPABILITIES;
  readonly connection: string;
  readonly policy: PolicyFlags;
  readonly http: HttpCore;
  readonly auth: BitrixAuth;
  /** `/rest/{user}/{secret}/` for webhooks, `/rest/` for OAuth. */
  readonly basePath: string;
  private readonly b: BitrixParts;
  private readonly lists: BitrixLists;

  constructor(
    readonly conn: BitrixConnection,
    o: BitrixProviderOptions,
  ) {
    // Whoever builds a provider, its credentials are known to the redactor before the first request.
    registerConnectionSecrets(conn);
    this.connection = conn.name;
    this.policy = conn.policy;
    const origin = conn.webhookUrl ? new URL(conn.webhookUrl).origin : conn.oauth!.portal;
    this.basePath = conn.webhookUrl ? new URL(conn.webhookUrl).pathname : '/rest/';
    this.auth = new BitrixAuth(conn, o.store, { timeoutMs: o.timeoutMs, logger: o.logger, dispatcher: o.dispatcher });
    const plan = BITRIX_PLANS[conn.plan];
    this.http = new HttpCore({
      origin,
      adapter: makeBitrixAdapter(this.basePath),
      auth: this.auth,
      // Mirror the server's bucket with a little headroom so a burst never earns QUERY_LIMIT_EXCEEDED.
      limiter: o.limiter ?? new LeakyBucketLimiter(plan.capacity - 2, plan.drain * 0.95),
      timeoutMs: o.timeoutMs,
      maxRetries: o.maxRetries,
      logger: o.logger,
      dispatcher: o.dispatcher,
      onEvent: o.onEvent,
      backoffBaseMs: o.backoffBaseMs,
    });
    const api = new BitrixApi(this.http, this.basePath, conn, o.store, o.logger, o.trustedOrigins);
    this.b = { conn, auth: this.auth, api, meta: new BitrixMeta(api) };
    this.lists = new BitrixLists(api);
  }

  async init(): Promise<void> {
    await this.auth.init();
  }

  /** Calls one REST method (POST JSON, the way the official SDK does), following a portal move once. */
  call<T = unknown>(ctx: CallContext, method: string, params: Record<string, unknown> = {}, op?: OperationKind): Promise<CallResult<T>> {
    return this.b.api.call<T>(ctx, method, params, op);
  }

  /** One `batch` request (≤ 50 commands). Per-command errors are returned, not thrown. */
  batch(ctx: CallContext, cmd: Record<string, string>, halt = false, opOverride?: OperationKind): Promise<BatchResult> {
    return this.b.api.batch(ctx, cmd, halt, opOverride);
  }

  /** The operating budget (§5) as the portal reported it so far (`doctor --deep`; see api.ts). */
  operatingBudget(): ReturnType<BitrixApi['operatingBudget']> {
    return this.b.api.operatingBudget();
  }

  /** The move this provider last followed (doctor shows it), recorded in the store for `crm-mcp doctor` too. */
  get pendingMove(): PortalMove | undefined {
    return this.b.api.pendingMove;
  }

  // Each operation lives with its concern (metadata, lists, leads, contacts, records, activity); the class wires them.

  account(ctx: CallContext): Promise<AccountInfo> {
    return meta.account(this.b, ctx);
  }

  pipelines(ctx: CallContext): Promise<Pipeline[]> {
    return meta.pipelines(this.b, ctx);
  }

  users(ctx: CallContext): Promise<User[]> {
    return meta.users(this.b, ctx);
  }

  customFields(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]> {
    return meta.customFields(this.b, ctx, entity);
  }

  listLeads(ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
    return leads.listLeads(this.b, this.lists, ctx, f);
  }

  getLead(ctx: CallContext, id: Id, entity?: 'lead' | 'deal'): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }> {
    return leads.getLead(this.b, ctx, id, entity);
  }

  createLead(ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult> {
    return leads.createLead(this.b, ctx, input);
  }

  updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>> {
    return leads.updateLead(this.b, ctx, input);
  }

  searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult> {
    return searchLeadByContact(this.b, ctx, q);
  }

  listContacts(ctx: CallContext, q: ListQuery): Promise<Page<ContactItem>> {
    return contacts.listContacts(this.b, this.lists, ctx, q);
  }

  getContact(ctx: CallContext, id: Id): Promise<Contact> {
    return contacts.getContact(this.b, ctx, id);
  }

  createContact(ctx: CallContext, input: CreateContactInput): Promise<CreateContactResult> {
    return contacts.createContact(this.b, ctx, input);
  }

  updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>> {
    return contacts.updateContact(this.b, ctx, input);
  }

  listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<CompanyItem>> {
    return contacts.listCompanies(this.b, this.lists, ctx, q);
  }

  getCompany(ctx: CallContext, id: Id): Promise<Company> {
    return contacts.getCompany(this.b, ctx, id);
  }

  addNote(ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>> {
    return activity.addNote(this.b, ctx, input);
  }

  createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>> {
    return activity.createTask(this.b, ctx, input);
  }

  deleteRecord(ctx: CallContext, entity: Entity, id: Id): Promise<WriteResult<{ id: Id; entity: string }>> {
    return activity.deleteRecord(this.b, ctx, entity, id);
  }
}
