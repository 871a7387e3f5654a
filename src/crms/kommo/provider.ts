/**
 * The Kommo (amoCRM) provider: the class that wires the pieces and implements CrmProvider by delegating.
 * api.ts (typed calls + paging over the HTTP core), schemas.ts (lenient payload schemas), metadata.ts (cached
 * pipelines, users, fields, account; stage and user checks), records.ts, search.ts, leads.ts, contacts.ts,
 * fields.ts, activity.ts, raw.ts; the shared workflows (dedupe-then-create, validation) are in src/services/.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { KommoConnection } from './connection.js';
import { registerConnectionSecrets } from './connection.js';
import { HttpCore, type HttpEvent, type HttpMethod, type QueryValue } from '../../http/client.js';
import { SlidingWindowLimiter, type RateLimiter } from '../../http/limiter.js';
import type { OperationKind } from '../../http/retry.js';
import type { PolicyFlags } from '../../policy/policy.js';
import type { Store } from '../../store/store.js';
import type {
  AccountInfo,
  CallContext,
  Company,
  Contact,
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
  Tag,
  Task,
  TaskInput,
  UpdateContactInput,
  UpdateLeadInput,
  User,
  WriteResult,
} from '../types.js';
import * as activity from './activity.js';
import { kommoAdapter } from './adapter.js';
import { KommoApi } from './api.js';
import { KommoAuth } from './auth.js';
import * as contacts from './contacts.js';
import * as leads from './leads.js';
import * as meta from './metadata.js';
import { KOMMO_RPS, KommoMeta, type KommoParts } from './metadata.js';
import { KOMMO_CAPABILITIES } from './module.js';
import { raw } from './raw.js';
import { searchLeadByContact } from './search.js';

export { KOMMO_RPS };
export { toId, toUnix } from './ids.js';
export { phoneQueries } from './search.js';

export interface KommoProviderOptions {
  store: Store;
  timeoutMs: number;
  maxRetries: number;
  logger?: Logger;
  dispatcher?: Dispatcher;
  limiter?: RateLimiter;
  onEvent?: (e: HttpEvent) => void;
  backoffBaseMs?: number;
}

export class KommoProvider implements CrmProvider {
  readonly kind = 'kommo' as const;
  readonly capabilities = KOMMO_CAPABILITIES;
  readonly connection: string;
  readonly policy: PolicyFlags;
  readonly http: HttpCore;
  readonly auth: KommoAuth;
  private readonly k: KommoParts;

  constructor(
    readonly conn: KommoConnection,
    o: KommoProviderOptions,
  ) {
    // Whoever builds a provider, its credentials are known to the redactor before the first request.
    registerConnectionSecrets(conn);
    this.connection = conn.name;
    this.policy = conn.policy;
    this.auth = new KommoAuth(conn, o.store, { timeoutMs: o.timeoutMs, logger: o.logger, dispatcher: o.dispatcher });
    this.http = new HttpCore({
      origin: conn.baseUrl,
      adapter: kommoAdapter,
      auth: this.auth,
      // A 25 ms margin on the 1 s window absorbs jitter between our send time and Kommo's arrival time.
      limiter: o.limiter ?? new SlidingWindowLimiter(KOMMO_RPS, 1010),
      timeoutMs: o.timeoutMs,
      maxRetries: o.maxRetries,
      logger: o.logger,
      dispatcher: o.dispatcher,
      onEvent: o.onEvent,
      backoffBaseMs: o.backoffBaseMs,
    });
    const api = new KommoApi(this.http, conn.baseUrl, conn.name);
    this.k = { conn, auth: this.auth, api, meta: new KommoMeta(api) };
  }

  async init(): Promise<void> {
    await this.auth.init();
  }

  /** One request through the HTTP core, answered as sent (doctor reads the account with it). */
  call<T>(
    ctx: CallContext,
    method: HttpMethod,
    path: string,
    opts: { query?: Record<string, QueryValue> | URLSearchParams; body?: unknown; op?: OperationKind } = {},
  ): Promise<T | undefined> {
    return this.k.api.call<T>(ctx, method, path, opts);
  }

  // Each operation lives with its concern (metadata, leads, contacts, search, activity, raw); the class wires them.

  account(ctx: CallContext): Promise<AccountInfo> {
    return meta.account(this.k, ctx);
  }

  pipelines(ctx: CallContext): Promise<Pipeline[]> {
    return meta.pipelines(this.k, ctx);
  }

  users(ctx: CallContext): Promise<User[]> {
    return meta.users(this.k, ctx);
  }

  customFields(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]> {
    return meta.customFields(this.k, ctx, entity);
  }

  tags(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies', query?: string): Promise<Tag[]> {
    return meta.tags(this.k, ctx, entity, query);
  }

  listLeads(ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
    return leads.listLeads(this.k, ctx, f);
  }

  getLead(ctx: CallContext, id: Id): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }> {
    return leads.getLead(this.k, ctx, id);
  }

  createLead(ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult> {
    return leads.createLead(this.k, ctx, input);
  }

  updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>> {
    return leads.updateLead(this.k, ctx, input);
  }

  searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult> {
    return searchLeadByContact(this.k, ctx, q);
  }

  listContacts(ctx: CallContext, q: ListQuery): Promise<Page<Contact>> {
    return contacts.listContacts(this.k, ctx, q);
  }

  getContact(ctx: CallContext, id: Id): Promise<Contact> {
    return contacts.getContact(this.k, ctx, id);
  }

  createContact(ctx: CallContext, input: CreateContactInput): Promise<CreateContactResult> {
    return contacts.createContact(this.k, ctx, input);
  }

  updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>> {
    return contacts.updateContact(this.k, ctx, input);
  }

  listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<Company>> {
    return contacts.listCompanies(this.k, ctx, q);
  }

  getCompany(ctx: CallContext, id: Id): Promise<Company> {
    return contacts.getCompany(this.k, ctx, id);
  }

  addNote(ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>> {
    return activity.addNote(this.k, ctx, input);
  }

  createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>> {
    return activity.createTask(this.k, ctx, input);
  }

  /** Raw request for kommo_request: the path was validated by the tool and is checked again by the core. */
  raw(
    ctx: CallContext,
    method: HttpMethod,
    path: string,
    query: Record<string, QueryValue> | undefined,
    body: unknown,
  ): Promise<{ status: number; data: unknown }> {
    return raw(this.k, ctx, method, path, query, body);
  }
}
