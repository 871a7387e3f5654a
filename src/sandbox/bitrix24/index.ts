/**
 * A stateful emulator of the Bitrix24 classic REST API (`/rest/...`) for tests and `--sandbox`, built on the
 * shared HTTP harness (request log, scripted faults). Every behaviour cites the fact sheet
 * (`shared/research/bitrix24-api.md`, "§n"); anything it does not model is refused loudly.
 */
import { randomBytes } from 'node:crypto';
import { EmulatorHarness, type EmuRequest, type EmuResponse, type RecordedRequest } from '../harness.js';
import { parsePhpQuery } from '../harness.js';
import { runBatch } from './batch.js';
import type { AuthInfo, CallCtx, MethodResult, Portal, Registry } from './context.js';
import { registerCrm } from './crm.js';
import { buildState } from './demo-data.js';
import { BxError, errors } from './errors.js';
import { registerEvents } from './event-methods.js';
import { EventBus, type Delivery } from './events.js';
import { LeakyBucket, OperatingBudget, PLANS } from './limits.js';
import { ALL_SCOPES, registerMethods } from './methods.js';
import { OAuthServer, token, type TokenResponse } from './oauth.js';
import { readParams, type Params } from './params.js';
import type { BitrixState } from './state.js';
import { observeStage, registerStageHistory, seedStageHistory } from './stage-history.js';
import { makeTime, nowMs, type BxTime } from './time.js';

export { DEMO, DEMO_NOW } from './demo-data.js';
export type { BitrixState, BOutgoingMail, BRecord, BMulti, BStatus, BCategory, BUser, BUserField, BTask } from './state.js';
export type { RecordedRequest } from '../harness.js';

export interface BitrixEmulatorOptions {
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (any free port). */
  port?: number;
  /** The webhook owner's user id; default 1. */
  userId?: number;
  /** The webhook code; default 16 random characters [a-z0-9]. */
  webhookSecret?: string;
  /** Leaky bucket: standard 50 burst / 2 per s, enterprise 250 / 5 per s (§5). */
  plan?: 'standard' | 'enterprise';
  /** Enforce the leaky bucket and the per-method operating-time budget; default true. */
  rateLimit?: boolean;
  /** `crm.settings.mode.get`: classic = leads enabled (default), simple = no leads. */
  mode?: 'classic' | 'simple';
  /** Load the demo portal (default true); false = directories, the default pipeline and one user only. */
  demo?: boolean;
  /** Seed of the demo data; default 42. */
  seed?: number;
  /** Enables the OAuth application (`/rest/{method}?auth=…`, `/oauth/authorize/`, `/oauth/token/`). */
  oauth?: { clientId: string; clientSecret: string; accessTokenTtlSec?: number; redirectUri?: string };
  /**
   * Scopes granted to the webhook and to issued tokens (§2.1); default all emulated scopes
   * (`crm`, `department`, `task`, `user`, `user_brief`, `user_basic`). Methods outside them answer insufficient_scope.
   */
  scopes?: string[];
  /**
   * How `crm.duplicate.findbycomm` compares phones (§7.7): `'core-normalized'` (default) as the CRM core does
   * (`DuplicateCommunicationCriterion::normalizePhone`, see phone.ts), or `'exact'`, the stored string as
   * typed — the stricter reading a client must also survive.
   */
  phoneMatch?: 'core-normalized' | 'exact';
  /** Users on the demo portal (default 75, so `user.get` takes more than one page of 50). */
  demoUsers?: number;
  /**
   * The portal's region: the prefix of `app.info` LICENSE ("the designation of the plan with the region
   * indicated as a prefix", b24restdocs app-info.md: `de_project`, `ru_basic`); default `ru`, the country of
   * everything else on the demo portal (roubles, Europe/Moscow, +7 numbers). `en` names no country.
   */
  region?: string;
  /**
   * Simulated processing seconds of one method call, charged to its operating budget, reported in `time`
   * (`processing`, `operating`) and counted towards the request time limit; undefined = the real (tiny)
   * time, or the `setOperatingCost` figure. Lets tests model a large portal without waiting.
   */
  costModel?: (method: string, params: Record<string, unknown>) => number | undefined;
  /**
   * §1 / [D-LIM] "Request Execution Time Limit": a request whose processing (real or simulated) passes this
   * many seconds is cut off — the commands already run stay done, the client gets HTTP 504. Default 60.
   */
  requestTimeLimitSec?: number;
}

export interface BitrixEmulatorStats {
  queryLimitExceeded: number;
  operationTimeLimit: number;
  refreshes: number;
  /** Every method executed, lower-cased, including `batch` itself and each command inside a batch. */
  methodCalls: Record<string, number>;
}

export interface BitrixEmulator {
  /** Origin, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  /** `${url}/rest/${userId}/${secret}/`. */
  readonly webhookUrl: string;
  readonly webhookSecret: string;
  readonly harness: EmulatorHarness;
  readonly requests: RecordedRequest[];
  /** Live data in Bitrix's own shapes. */
  readonly state: BitrixState;
  readonly stats: BitrixEmulatorStats;
  /** Outbound event deliveries attempted so far (§9). */
  readonly deliveries: readonly Delivery[];
  /** Tokens of the configured OAuth app for a user (default: the portal's owner, an administrator). */
  issueOAuthTokens(userId?: number): Promise<TokenResponse>;
  /**
   * The outgoing webhook set up in the portal's UI (§9): its events are POSTed to `url` once, with no retry,
   * carrying `auth[application_token]` (returned). `null` removes it.
   */
  setOutboundWebhook(url: string | null, events?: readonly string[]): string | undefined;
  /** Every access token issued so far answers `expired_token` from now on. */
  expireAccessTokens(): void;
  /** Every authorization code issued by `/oauth/authorize/` so far is now expired (§2.2: they live 30 s). */
  expireAuthorizationCodes(): void;
  /** While set, every /rest/ request answers 302 to the same path and query on that origin (§1.1). */
  setMovedTo(origin: string | null): void;
  setMode(mode: 'classic' | 'simple'): void;
  /**
   * Simulated processing cost (seconds) charged to a method's operating-time budget per call (§5), instead
   * of the real (tiny) processing time; `'*'` sets it for every method. `null` restores the real time.
   */
  setOperatingCost(method: string, seconds: number | null): void;
  /** The application token sent with event deliveries for the configured OAuth app (§9). */
  applicationToken(): string | undefined;
  /** Waits for outbound event deliveries in flight. */
  settleEvents(): Promise<void>;
  close(): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

class BitrixEmulatorImpl implements BitrixEmulator, Portal {
  readonly harness: EmulatorHarness;
  readonly state: BitrixState;
  readonly stats: BitrixEmulatorStats = { queryLimitExceeded: 0, operationTimeLimit: 0, refreshes: 0, methodCalls: {} };
  readonly webhookSecret: string;
  readonly memberId = randomBytes(16).toString('hex');
  private readonly userId: number;
  private readonly scopes: string[];
  private readonly rateLimit: boolean;
  private readonly registry: Registry = new Map();
  private readonly bucket: LeakyBucket;
  private readonly budget = new OperatingBudget(() => Date.now());
  private readonly costs = new Map<string, number>();
  private readonly oauth: OAuthServer;
  private readonly events: EventBus;
  private movedTo: string | null = null;
  /** `auth_connector` of the call running now (handlers run synchronously): its changes skip that offline queue. */
  private connector: string | undefined;

  constructor(private readonly o: BitrixEmulatorOptions) {
    this.userId = o.userId ?? 1;
    this.webhookSecret = o.webhookSecret ?? token(16);
    this.scopes = [...(o.scopes ?? ALL_SCOPES)];
    this.rateLimit = o.rateLimit ?? true;
    const plan = PLANS[o.plan ?? 'standard'];
    this.bucket = new LeakyBucket(plan.capacity, plan.drainPerSec, () => Date.now());
    this.state = buildState({ seed: o.seed ?? 42, userId: this.userId, demo: o.demo ?? true, mode: o.mode ?? 'classic', users: o.demoUsers ?? 75 });
    registerCrm(this.registry);
    registerMethods(this.registry);
    registerEvents(this.registry);
    registerStageHistory(this.registry);
    seedStageHistory(this.state);
    this.registry.set('batch', {
      scope: null,
      handler: (p, ctx) => runBatch(p, (method, params) => this.execute(method, params, ctx.auth, true, undefined, ctx.spent)),
    });
    this.oauth = new OAuthServer(o.oauth, { url: () => this.url, memberId: this.memberId, userId: this.userId, scopes: this.scopes, clock: () => Date.now() });
    this.events = new EventBus({
      state: this.state,
      url: () => this.url,
      memberId: this.memberId,
      scopes: this.scopes,
      now: () => Date.now(),
      accessFor: (uid) => (this.oauth.enabled ? this.oauth.accessFor(uid) : undefined),
    });
    this.harness = new EmulatorHarness((req) => this.handle(req), { host: o.host ?? '127.0.0.1', port: o.port ?? 0 });
  }

  // ---------------------------------------------------------------- public API

  get url(): string {
    return this.harness.url;
  }

  get webhookUrl(): string {
    return `${this.url}/rest/${this.userId}/${this.webhookSecret}/`;
  }

  get requests(): RecordedRequest[] {
    return this.harness.requests;
  }

  get deliveries(): readonly Delivery[] {
    return this.events.deliveries;
  }

  async issueOAuthTokens(userId?: number): Promise<TokenResponse> {
    return this.oauth.issue(userId);
  }

  setOutboundWebhook(url: string | null, events: readonly string[] = []): string | undefined {
    return this.events.setOutbound(url, events);
  }

  expireAccessTokens(): void {
    this.oauth.expireAll();
  }

  expireAuthorizationCodes(): void {
    this.oauth.expireCodes();
  }

  setMovedTo(origin: string | null): void {
    this.movedTo = origin ? new URL(origin).origin : null;
  }

  setMode(mode: 'classic' | 'simple'): void {
    this.state.mode = mode;
  }

  setOperatingCost(method: string, seconds: number | null): void {
    const key = method.trim().toLowerCase();
    if (seconds === null) this.costs.delete(key);
    else this.costs.set(key, seconds);
  }

  applicationToken(): string | undefined {
    return this.oauth.clientId ? this.events.applicationToken(this.oauth.clientId) : undefined;
  }

  settleEvents(): Promise<void> {
    return this.events.settle();
  }

  async start(): Promise<void> {
    await this.harness.start();
  }

  async close(): Promise<void> {
    await this.harness.close();
  }

  // ---------------------------------------------------------------- Portal (what methods see)

  now(): number {
    return Date.now();
  }

  emit(event: string, data: Record<string, unknown>, userId: number): void {
    // Every stage move leaves its crm.stagehistory.list row (stage-history.ts).
    const m = /^ONCRM(LEAD|DEAL)(ADD|UPDATE)$/.exec(event);
    if (m) {
      const kind = m[1] === 'LEAD' ? 'lead' : 'deal';
      const id = Number((data.FIELDS as { ID?: unknown } | undefined)?.ID);
      observeStage(this.state, kind, id, (kind === 'lead' ? this.state.leads : this.state.deals).get(id), userId, this.now());
    }
    this.events.emit(event, data, userId, this.connector);
  }

  methodNames(scope?: string): string[] {
    return [...this.registry.entries()]
      .filter(([, d]) => scope === undefined || d.scope === scope)
      .map(([n]) => n)
      .sort();
  }

  allScopes(): string[] {
    return [...ALL_SCOPES];
  }

  phoneMatch(): 'core-normalized' | 'exact' {
    return this.o.phoneMatch ?? 'core-normalized';
  }

  license(): string {
    const region = this.o.region ?? 'ru';
    return (this.o.plan ?? 'standard') === 'enterprise' ? `${region}_ent250` : `${region}_basic`;
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: EmuRequest): Promise<EmuResponse> {
    const path = req.path;
    if (/^\/oauth\/token\/?$/.test(path)) return this.tokenEndpoint(req);
    if (/^\/oauth\/authorize\/?$/.test(path)) {
      const out = this.oauth.authorize(req.url.searchParams);
      req.record.tag = out.tag;
      return out.location ? { status: out.status, headers: { location: out.location } } : { status: out.status, headers: JSON_HEADERS, body: out.body };
    }
    if (!path.startsWith('/rest/')) {
      req.record.processed = false;
      return {
        status: 404,
        headers: JSON_HEADERS,
        body: { error: 'NOT_FOUND', error_description: `The emulator serves /rest/, /oauth/authorize/ and /oauth/token/, not ${path}` },
      };
    }
    // §1.1: a moved portal answers every call with 302 to the same path and query on the new address.
    if (this.movedTo) {
      req.record.processed = false;
      req.record.tag = 'moved';
      return { status: 302, headers: { location: `${this.movedTo}${req.url.pathname}${req.url.search}` } };
    }
    const started = nowMs();
    try {
      if (req.method !== 'GET' && req.method !== 'POST')
        throw errors.unsupported(`HTTP ${req.method} is not emulated; Bitrix24 REST takes GET or POST (§1.2).`, 405);
      const { method, auth, params } = this.resolve(req);
      // §5: the leaky bucket counts every request (a batch once) and refuses before anything runs.
      if (this.rateLimit && !this.bucket.tryTake()) {
        this.stats.queryLimitExceeded += 1;
        req.record.tag = 'QUERY_LIMIT_EXCEEDED';
        req.record.processed = false;
        throw errors.queryLimit();
      }
      const spent = { sec: 0 };
      const out = this.execute(method, params, auth, false, req.record, spent);
      const body: Record<string, unknown> = { result: out.res.result };
      if (out.res.next !== undefined) body.next = out.res.next;
      if (out.res.total !== undefined) body.total = out.res.total;
      body.time = this.finishTime(method, auth, started, (method === 'batch' ? spent.sec : out.time.processing) * 1000);
      const headers: Record<string, string> = { ...JSON_HEADERS, 'x-bitrix-rest-time': String(out.time.processing) };
      if (auth.kind === 'oauth' && auth.clientId) headers['x-bitrix-rest-application'] = auth.clientId;
      return { status: 200, headers, body };
    } catch (e) {
      if (e instanceof RequestTimeout) {
        // [D-LIM] "Request Execution Time Limit": the request is interrupted; what already ran stays done.
        req.record.tag = 'REQUEST_TIMEOUT';
        return { status: 504, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<html><body><h1>504 Gateway Time-out</h1></body></html>' };
      }
      if (!(e instanceof BxError)) throw e;
      if (!req.record.tag && e.code) req.record.tag = e.code;
      return { status: e.status, headers: JSON_HEADERS, body: e.body() };
    }
  }

  /** §1.1, §2: the URL shape decides the auth (webhook path or `auth` parameter); the method is lower-cased. */
  private resolve(req: EmuRequest): { method: string; auth: AuthInfo; params: Params } {
    const rest = req.path.slice('/rest/'.length).replace(/\/+$/, '');
    let segs: string[];
    try {
      segs = rest.split('/').map((s) => decodeURIComponent(s));
    } catch {
      throw errors.methodNotFound();
    }
    let rawMethod: string;
    let webhook: { uid: string; secret: string } | undefined;
    if (segs.length === 3) webhook = { uid: segs[0]!, secret: segs[1]! };
    if (segs.length === 3) rawMethod = segs[2]!;
    else if (segs.length === 1) rawMethod = segs[0]!;
    else throw errors.methodNotFound();
    if (/\.xml$/i.test(rawMethod)) throw errors.unsupported('The XML transport (.xml) is not emulated; use .json or no suffix (§1.1).', 501);
    const method = rawMethod.replace(/\.json$/i, '').toLowerCase();
    if (!method) throw errors.methodNotFound();
    const params = readParams(req);
    let auth: AuthInfo;
    if (webhook) {
      if (webhook.uid !== String(this.userId) || webhook.secret !== this.webhookSecret) {
        req.record.processed = false;
        throw errors.noAuth();
      }
      auth = { kind: 'webhook', userId: this.userId, scopes: this.scopes };
    } else {
      if (!this.oauth.enabled) {
        req.record.processed = false;
        throw errors.noAuth();
      }
      try {
        const t = this.oauth.check(params.auth);
        auth = { kind: 'oauth', userId: t.userId, clientId: t.clientId, scopes: t.scopes };
      } catch (e) {
        req.record.processed = false;
        throw e;
      }
    }
    // The auth parameter is the credential, never a method argument (ignored with webhooks).
    delete params.auth;
    return { method, auth, params };
  }

  /**
   * Runs one method: existence (§1.1), batch nesting (§4.2), scope (§2.1), app context (§2.1), operating
   * budget (§5), then the handler. Used for top-level calls and for each batch command.
   */
  private execute(
    method: string,
    params: Params,
    auth: AuthInfo,
    inBatch: boolean,
    record?: RecordedRequest,
    spent: { sec: number } = { sec: 0 },
  ): { res: MethodResult; time: BxTime } {
    const def = this.registry.get(method);
    if (!def) throw errors.methodNotFound();
    if (inBatch && method === 'batch') throw errors.batchMethodNotAllowed();
    if (def.scope && !auth.scopes.includes(def.scope)) throw errors.insufficientScope(inBatch);
    if (def.appOnly && auth.kind !== 'oauth') throw errors.wrongAuthType();
    const key = this.budgetKey(auth, method);
    // §5: the outer batch is not counted in `operating`; each command is, against its own method.
    if (method !== 'batch' && this.rateLimit && this.budget.blocked(key)) {
      this.stats.operationTimeLimit += 1;
      if (record) {
        record.tag = 'OPERATION_TIME_LIMIT';
        record.processed = false;
      }
      throw errors.operationTimeLimit();
    }
    this.stats.methodCalls[method] = (this.stats.methodCalls[method] ?? 0) + 1;
    const ctx: CallCtx = { portal: this, auth, inBatch, spent };
    const t0 = nowMs();
    let res: MethodResult;
    let cost = 0;
    const outer = this.connector;
    // A write made with `auth_connector` (a call's own, or its batch's) is not queued for that connector.
    if (typeof params.auth_connector === 'string' && params.auth_connector && !method.startsWith('event.')) {
      this.connector = params.auth_connector;
      delete params.auth_connector;
    }
    try {
      res = def.handler(params, ctx);
    } finally {
      this.connector = outer;
      const t1 = nowMs();
      if (method !== 'batch') {
        const modelled = this.o.costModel?.(method, params);
        cost = modelled ?? (t1 - t0) / 1000;
        // setOperatingCost only charges the budget (the request time limit follows real or modelled time).
        this.budget.add(key, modelled ?? this.costs.get(method) ?? this.costs.get('*') ?? cost);
        spent.sec += cost;
      }
    }
    const t1 = nowMs();
    if (method !== 'batch' && spent.sec > (this.o.requestTimeLimitSec ?? 60)) throw new RequestTimeout();
    if (method === 'batch') return { res, time: makeTime(t0, t1, t1 - t0) };
    // Each command's `time` carries its method's budget, in batches too (result_time entries show
    // `operating` and `operating_reset_at`, as seen in portal answers quoted in fast_bitrix24 issue #256).
    return { res, time: makeTime(t0, t1, cost * 1000, { operating: round(this.budget.operating(key)), resetAt: this.budget.resetAt(key) }) };
  }

  private budgetKey(auth: AuthInfo, method: string): string {
    return `${auth.kind === 'oauth' ? `app:${auth.clientId}` : `hook:${auth.userId}`}|${method}`;
  }

  /** §3: the response `time`; `operating`/`operating_reset_at` describe this method's budget (not for batch). */
  private finishTime(method: string, auth: AuthInfo, startedMs: number, processingMs: number): BxTime {
    const finished = nowMs();
    if (method === 'batch') return makeTime(startedMs, finished, processingMs);
    const key = this.budgetKey(auth, method);
    return makeTime(startedMs, finished, processingMs, { operating: round(this.budget.operating(key)), resetAt: this.budget.resetAt(key) });
  }

  /** §2.2: the token endpoint (GET query or POST form, like oauth.bitrix.info/oauth/token/). */
  private tokenEndpoint(req: EmuRequest): EmuResponse {
    let params: Record<string, unknown>;
    try {
      params = req.method === 'POST' && req.rawBody ? readParams(req) : parsePhpQuery(req.url.searchParams.entries());
    } catch (e) {
      if (e instanceof BxError) return { status: e.status, headers: JSON_HEADERS, body: e.body() };
      throw e;
    }
    const out = this.oauth.tokenEndpoint(params);
    this.stats.refreshes = this.oauth.refreshes;
    req.record.tag = out.status === 200 ? 'oauth' : String((out.body as { error?: string }).error);
    return { status: out.status, headers: JSON_HEADERS, body: out.body };
  }
}

/** The request ran past the portal's request time limit. */
class RequestTimeout extends Error {}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/** Starts an emulator on 127.0.0.1 (port 0 by default). */
export async function startBitrixEmulator(options: BitrixEmulatorOptions = {}): Promise<BitrixEmulator> {
  const emu = new BitrixEmulatorImpl(options);
  await emu.start();
  return emu;
}
