/**
 * The Bitrix24 provider: one object built from its parts. The HTTP core, the auth, the typed calls (api.ts:
 * calls, batch, operating budget, portal moves) and the fast lists (lists.ts) are wired here once; each
 * capability group is built in the file of its concern (leads.ts, contacts.ts, metadata.ts, activity.ts) and
 * the provider is their sum, plus what only this wing's own tools and doctor use (`call`, `batch`, `http`,
 * `auth`, the operating budget, a followed portal move). Reads are packed into `batch` requests (§4.1),
 * searches use `crm.duplicate.findbycomm` (§7.7), and creates are built as one batch with `$result`
 * references; the duplicate-safe workflow over them is services/create-lead.ts, called by the tools.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { BitrixConnection } from './connection.js';
import { registerConnectionSecrets } from './connection.js';
import { HttpCore, type HttpEvent } from '../../http/client.js';
import { LeakyBucketLimiter, type RateLimiter } from '../../http/limiter.js';
import type { OperationKind } from '../../http/retry.js';
import type { Store } from '../../store/store.js';
import type { CallContext, ProviderWith } from '../types.js';
import * as activity from './activity.js';
import { logCall } from './calls.js';
import { listNotes } from './notes.js';
import { completeTask, listTasks } from './tasks.js';
import { makeBitrixAdapter } from './adapter.js';
import { BitrixApi, type BatchResult, type CallResult } from './api.js';
import { BitrixAuth } from './auth.js';
import { BITRIX24_CAPABILITIES, BITRIX24_KIND } from './capabilities.js';
import { bitrixCompanyWrites } from './companies.js';
import { bitrixCompanies, bitrixContacts } from './contacts.js';
import { bitrixLeads } from './leads.js';
import { bitrixBulk } from './bulk.js';
import { BitrixLists } from './lists.js';
import * as meta from './metadata.js';
import { BITRIX_PLANS, BitrixMeta, type BitrixParts } from './metadata.js';
import type { PortalMove } from './relocation.js';
import { loadAuthConnector } from './events-offline.js';
import { bitrixHistory } from './history.js';

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

/** A Bitrix24 provider: the neutral groups of the capabilities it declares, and its own parts. */
export type BitrixProvider = ProviderWith<
  'leads' | 'deals' | 'contacts' | 'companies' | 'pipelines' | 'custom_fields' | 'users' | 'notes' | 'tasks' | 'delete' | 'calls' | 'history'
> &
  BitrixOwn;

/** What only this wing's own tools and doctor reach besides the neutral groups. */
interface BitrixOwn {
  readonly kind: typeof BITRIX24_KIND;
  readonly conn: BitrixConnection;
  readonly http: HttpCore;
  readonly auth: BitrixAuth;
  /** `/rest/{user}/{secret}/` for webhooks, `/rest/` for OAuth. */
  readonly basePath: string;
  /** The move this provider last followed (doctor shows it), recorded in the store for `crm-mcp doctor` too. */
  readonly pendingMove: PortalMove | undefined;
  /** Loads the stored tokens (OAuth); a provider is ready once this resolved (module.ts `build` awaits it). */
  init(): Promise<void>;
  /** Calls one REST method (POST JSON, the way the official SDK does), following a portal move once; bitrix_call sends through it. */
  call<T = unknown>(ctx: CallContext, method: string, params?: Record<string, unknown>, op?: OperationKind): Promise<CallResult<T>>;
  /** One `batch` request (≤ 50 commands). Per-command errors are returned, not thrown. */
  batch(ctx: CallContext, cmd: Record<string, string>, halt?: boolean, opOverride?: OperationKind): Promise<BatchResult>;
  /** The operating budget (§5) as the portal reported it so far (`doctor --deep`; see api.ts). */
  operatingBudget(): ReturnType<BitrixApi['operatingBudget']>;
  /** The token store: events-offline.ts keeps the offline binding and a reserved batch's process_id there. */
  readonly store: Store;
  /** The typed calls (events-offline.ts sets `authConnector` on bind and unbind). */
  readonly api: BitrixApi;
}

/** Builds a Bitrix24 provider for one connection; `init()` loads its credentials (the module's `build` does both). */
export function buildBitrixProvider(conn: BitrixConnection, o: BitrixProviderOptions): BitrixProvider {
  // Whoever builds a provider, its credentials are known to the redactor before the first request.
  registerConnectionSecrets(conn);
  const origin = conn.webhookUrl ? new URL(conn.webhookUrl).origin : conn.oauth!.portal;
  const basePath = conn.webhookUrl ? new URL(conn.webhookUrl).pathname : '/rest/';
  const auth = new BitrixAuth(conn, o.store, { timeoutMs: o.timeoutMs, logger: o.logger, dispatcher: o.dispatcher });
  const plan = BITRIX_PLANS[conn.plan];
  const http = new HttpCore({
    origin,
    adapter: makeBitrixAdapter(basePath),
    auth,
    // Mirror the server's bucket with a little headroom so a burst never earns QUERY_LIMIT_EXCEEDED.
    limiter: o.limiter ?? new LeakyBucketLimiter(plan.capacity - 2, plan.drain * 0.95),
    timeoutMs: o.timeoutMs,
    maxRetries: o.maxRetries,
    logger: o.logger,
    dispatcher: o.dispatcher,
    onEvent: o.onEvent,
    backoffBaseMs: o.backoffBaseMs,
  });
  const api = new BitrixApi(http, basePath, conn, o.store, o.logger, o.trustedOrigins);
  const b: BitrixParts = { conn, auth, api, meta: new BitrixMeta(api) };
  const lists = new BitrixLists(api);
  return {
    kind: BITRIX24_KIND,
    capabilities: BITRIX24_CAPABILITIES,
    connection: conn.name,
    policy: conn.policy,
    conn,
    http,
    auth,
    basePath,
    get pendingMove() {
      return api.pendingMove;
    },
    store: o.store,
    api,
    init: async () => {
      await auth.init();
      await loadAuthConnector(conn, o.store, api);
    },
    account: (ctx) => meta.account(b, ctx),
    call: (ctx, method, params = {}, op) => api.call(ctx, method, params, op),
    batch: (ctx, cmd, halt = false, opOverride) => api.batch(ctx, cmd, halt, opOverride),
    operatingBudget: () => api.operatingBudget(),
    ...bitrixLeads(b, lists),
    ...bitrixBulk(b),
    ...bitrixContacts(b, lists),
    ...bitrixCompanies(b, lists),
    ...bitrixCompanyWrites(b),
    pipelines: (ctx) => meta.pipelines(b, ctx),
    users: (ctx) => meta.users(b, ctx),
    customFields: (ctx, entity) => meta.customFields(b, ctx, entity),
    addNote: (ctx, input) => activity.addNote(b, ctx, input),
    createTask: (ctx, input) => activity.createTask(b, ctx, input),
    listNotes: (ctx, q) => listNotes(b, ctx, q),
    listTasks: (ctx, q) => listTasks(b, ctx, q),
    completeTask: (ctx, input) => completeTask(b, ctx, input),
    deleteRecord: (ctx, entity, id) => activity.deleteRecord(b, ctx, entity, id),
    logCall: (ctx, input) => logCall(b, ctx, input),
    ...bitrixHistory(b),
  };
}
