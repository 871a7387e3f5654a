/**
 * The Kommo (amoCRM) provider: one object built from its parts. The HTTP core, the auth and the typed calls
 * (api.ts) are wired here once; each capability group is built in the file of its concern (leads.ts,
 * contacts.ts, metadata.ts, activity.ts) and the provider is their sum, plus what only this wing's own tools
 * and doctor use (`call`, `raw`, `http`, `auth`). The workflows over these primitives (dedupe-then-create)
 * are in src/services/, called by the tools.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { KommoConnection } from './connection.js';
import { registerConnectionSecrets } from './connection.js';
import { HttpCore, type HttpEvent, type HttpMethod, type QueryValue } from '../../http/client.js';
import { SlidingWindowLimiter, type RateLimiter } from '../../http/limiter.js';
import type { OperationKind } from '../../http/retry.js';
import type { Store } from '../../store/store.js';
import type { CallContext, ProviderWith } from '../types.js';
import * as activity from './activity.js';
import { kommoAdapter } from './adapter.js';
import { KommoApi } from './api.js';
import { KommoAuth } from './auth.js';
import { KOMMO_CAPABILITIES, KOMMO_KIND } from './capabilities.js';
import { kommoCompanyWrites } from './companies.js';
import { kommoCompanies, kommoContacts } from './contacts.js';
import { kommoLeads } from './leads.js';
import { kommoBulk } from './bulk.js';
import * as meta from './metadata.js';
import { KOMMO_RPS, KommoMeta, type KommoParts } from './metadata.js';
import { PhoneStyle } from './phone-style.js';
import { raw } from './raw.js';
import { logCall } from './calls.js';
import { acceptIncomingLead, declineIncomingLead, listIncomingLeads } from './incoming.js';
import { listNotes } from './notes.js';
import { recordHistory } from './history.js';
import { completeTask, listTasks } from './tasks.js';

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

/** A Kommo provider: the neutral groups of the capabilities it declares, and its own parts. */
export type KommoProvider = ProviderWith<
  'leads' | 'contacts' | 'companies' | 'pipelines' | 'custom_fields' | 'users' | 'tags' | 'notes' | 'tasks' | 'calls' | 'incoming' | 'history'
> &
  KommoOwn;

/** What only this wing's own tools and doctor reach besides the neutral groups. */
interface KommoOwn {
  readonly kind: typeof KOMMO_KIND;
  readonly conn: KommoConnection;
  readonly http: HttpCore;
  readonly auth: KommoAuth;
  /** What the account's `query` is known to do with phones; `doctor --deep` records what it proves. */
  readonly phoneStyle: PhoneStyle;
  /** Loads the stored tokens (OAuth); a provider is ready once this resolved (module.ts `build` awaits it). */
  init(): Promise<void>;
  /** One request through the HTTP core, answered as sent (doctor reads the account with it). */
  call<T>(
    ctx: CallContext,
    method: HttpMethod,
    path: string,
    opts?: { query?: Record<string, QueryValue> | URLSearchParams; body?: unknown; op?: OperationKind },
  ): Promise<T | undefined>;
  /** One Kommo API v4 request as-is, for kommo_request: the tool has normalised and confined the path, the HTTP core checks it again. */
  raw(
    ctx: CallContext,
    method: HttpMethod,
    path: string,
    query: Record<string, QueryValue> | undefined,
    body: unknown,
  ): Promise<{ status: number; data: unknown }>;
}

/** Builds a Kommo provider for one connection; `init()` loads its credentials (the module's `build` does both). */
export function buildKommoProvider(conn: KommoConnection, o: KommoProviderOptions): KommoProvider {
  // Whoever builds a provider, its credentials are known to the redactor before the first request.
  registerConnectionSecrets(conn);
  const auth = new KommoAuth(conn, o.store, { timeoutMs: o.timeoutMs, logger: o.logger, dispatcher: o.dispatcher });
  const http = new HttpCore({
    origin: conn.baseUrl,
    adapter: kommoAdapter,
    auth,
    // A 25 ms margin on the 1 s window absorbs jitter between our send time and Kommo's arrival time.
    limiter: o.limiter ?? new SlidingWindowLimiter(KOMMO_RPS, 1010),
    timeoutMs: o.timeoutMs,
    maxRetries: o.maxRetries,
    logger: o.logger,
    dispatcher: o.dispatcher,
    onEvent: o.onEvent,
    backoffBaseMs: o.backoffBaseMs,
  });
  const api = new KommoApi(http, conn.baseUrl, conn.name);
  const k: KommoParts = { conn, auth, api, meta: new KommoMeta(api), phoneStyle: new PhoneStyle(o.store, conn.baseUrl) };
  return {
    kind: KOMMO_KIND,
    capabilities: KOMMO_CAPABILITIES,
    connection: conn.name,
    policy: conn.policy,
    conn,
    http,
    auth,
    phoneStyle: k.phoneStyle,
    init: () => auth.init(),
    account: (ctx) => meta.account(k, ctx),
    call: (ctx, method, path, opts = {}) => api.call(ctx, method, path, opts),
    raw: (ctx, method, path, query, body) => raw(k, ctx, method, path, query, body),
    ...kommoLeads(k),
    ...kommoBulk(k),
    ...kommoContacts(k),
    ...kommoCompanies(k),
    ...kommoCompanyWrites(k),
    pipelines: (ctx) => meta.pipelines(k, ctx),
    users: (ctx) => meta.users(k, ctx),
    customFields: (ctx, entity) => meta.customFields(k, ctx, entity),
    tags: (ctx, entity, query) => meta.tags(k, ctx, entity, query),
    addNote: (ctx, input) => activity.addNote(k, ctx, input),
    createTask: (ctx, input) => activity.createTask(k, ctx, input),
    logCall: (ctx, input) => logCall(k, ctx, input),
    listIncomingLeads: (ctx, q) => listIncomingLeads(k, ctx, q),
    acceptIncomingLead: (ctx, input) => acceptIncomingLead(k, ctx, input),
    declineIncomingLead: (ctx, uid) => declineIncomingLead(k, ctx, uid),
    listNotes: (ctx, q) => listNotes(k, ctx, q),
    recordHistory: (ctx, q) => recordHistory(k, ctx, q),
    listTasks: (ctx, q) => listTasks(k, ctx, q),
    completeTask: (ctx, input) => completeTask(k, ctx, input),
  };
}
