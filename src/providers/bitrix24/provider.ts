/**
 * The Bitrix24 provider: every call goes through the HTTP core with the method classified; reads are
 * packed into `batch` requests (fast paging with `order ID`, `filter <ID`, `start=-1`, §4.1), searches use
 * `crm.duplicate.findbycomm` (§7.7), and creates are duplicate-safe and built as one batch with `$result`
 * references.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { BitrixConnection } from '../../config/config.js';
import { registerConnectionSecrets } from '../../config/secrets.js';
import { parseDateInput, parseDeadline } from '../../services/dates.js';
import { decideLeadDuplicate } from '../../services/dedupe.js';
import { splitName } from '../../services/names.js';
import { HttpCore, type HttpEvent } from '../../http/client.js';
import { CrmError, notFound, validationError } from '../../http/errors.js';
import { LeakyBucketLimiter, type RateLimiter } from '../../http/limiter.js';
import type { OperationKind } from '../../http/retry.js';
import type { PolicyFlags } from '../../policy/policy.js';
import type { Store } from '../../store/store.js';
import { looksLikeEmail, normalizePhone, sameEmail, samePhone } from '../../util/phone.js';
import { TtlCache } from '../cache.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
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
  CustomFieldInput,
  Id,
  Lead,
  LeadFilter,
  ListQuery,
  ListSort,
  Note,
  NoteInput,
  Page,
  Pipeline,
  PlannedRequest,
  SearchResult,
  Task,
  TaskInput,
  UpdateContactInput,
  UpdateLeadInput,
  User,
  WriteResult,
} from '../types.js';
import { bitrixError, makeBitrixAdapter } from './adapter.js';
import { boundIds, boundItemCommands, findByComm } from './duplicates.js';
import { collectUsers, firstUserPage, moreUserPages } from './users.js';
import { LoadTracker, MAX_PAGES, pagesPerRequest, readAheadPages } from './readahead.js';
import { BitrixAuth } from './auth.js';
import {
  LEAD_PIPELINE,
  iso,
  mapCompany,
  mapContact,
  mapDeal,
  mapFieldDefs,
  mapLeadRow,
  mapPipelines,
  mapUser,
  num,
  phpQuery,
  str,
  type BCategory,
  type BField,
  type BLookups,
  type BMulti,
  type BStatus,
  type Row,
} from './map.js';
import { classifyBatch, classifyCall, classifyMethod, normalizeMethod } from './methods.js';
import { decidePortalMove, isRedirect, portalMoveKey, redirectTarget, withoutLocation, type PortalMove } from './relocation.js';

/** Leaky bucket per plan (§5). */
export const BITRIX_PLANS = { standard: { capacity: 50, drain: 2 }, enterprise: { capacity: 250, drain: 5 } } as const;
const PAGE = 50;
const META_TTL_MS = 5 * 60 * 1000;

export interface BitrixProviderOptions {
  store: Store;
  timeoutMs: number;
  maxRetries: number;
  logger?: Logger;
  dispatcher?: Dispatcher;
  limiter?: RateLimiter;
  onEvent?: (e: HttpEvent) => void;
  backoffBaseMs?: number;
}

export interface CallResult<T = unknown> {
  result: T;
  next?: number;
  total?: number;
}

export interface BatchResult {
  result: Record<string, unknown>;
  errors: Record<string, { error: string; error_description: string }>;
  total: Record<string, number>;
  next: Record<string, number>;
}

type Entity = 'lead' | 'deal' | 'contact' | 'company';

export class BitrixProvider implements CrmProvider {
  readonly kind = 'bitrix24' as const;
  readonly connection: string;
  readonly policy: PolicyFlags;
  readonly http: HttpCore;
  readonly auth: BitrixAuth;
  /** `/rest/{user}/{secret}/` for webhooks, `/rest/` for OAuth. */
  readonly basePath: string;
  private readonly meta = new TtlCache<unknown>(META_TTL_MS);
  /** Rows fetched ahead for listings being scanned with a cursor (see fastList). */
  private readonly readAhead = new TtlCache<{ rows: Row[]; exhausted: boolean }>(60_000, 20);
  private readonly log?: Logger;
  /** What each method's calls cost on this portal (`time.processing`/`operating`), to size read-ahead. */
  private readonly load = new LoadTracker();
  /** Per-method operating budget (§5): the last `time.operating_reset_at` seen, and blocks after OPERATION_TIME_LIMIT. */
  private readonly operating = new Map<string, { resetAt?: number; blockedUntil?: number }>();
  private readonly moveStore: Store;

  constructor(
    readonly conn: BitrixConnection,
    o: BitrixProviderOptions,
  ) {
    // Whoever builds a provider, its credentials are known to the redactor before the first request.
    registerConnectionSecrets(conn);
    this.connection = conn.name;
    this.policy = conn.policy;
    this.log = o.logger;
    const origin = conn.webhookUrl ? new URL(conn.webhookUrl).origin : conn.oauth!.portal;
    this.basePath = conn.webhookUrl ? new URL(conn.webhookUrl).pathname : '/rest/';
    this.auth = new BitrixAuth(conn, o.store, { timeoutMs: o.timeoutMs, logger: o.logger, dispatcher: o.dispatcher });
    this.moveStore = o.store;
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
  }

  async init(): Promise<void> {
    await this.auth.init();
  }

  // ---------------------------------------------------------------- calls

  /** Calls one REST method (POST JSON, the way the official SDK does), following a portal move once. */
  async call<T = unknown>(ctx: CallContext, method: string, params: Record<string, unknown> = {}, op?: OperationKind): Promise<CallResult<T>> {
    const effect = method === 'batch' ? classifyBatch(params.cmd).effect : classifyCall(method, params);
    // A batch of writes is never retried as if it were a read (a create inside could run twice).
    const kind: OperationKind = op ?? (effect === 'read' ? 'read' : effect === 'create' || method === 'batch' ? 'create' : 'idempotent');
    const spec = { method: 'POST' as const, path: `${this.basePath}${method}.json`, body: params, op: kind, grant: ctx.grant, signal: ctx.signal };
    // A batch is not refused for a paused command inside: Bitrix24 answers that command alone with an error.
    if (method !== 'batch') this.checkOperating(method);
    let res;
    try {
      try {
        res = await this.http.request<{ result: T; next?: number; total?: number; time?: unknown }>(spec);
      } catch (e) {
        const move = this.portalMove(e);
        if (!move) throw e;
        // §1.1: the portal's address changed; repeat the same call (body intact) on the new host, for this
        // request only: the move lasts once the user changes the configured address (doctor says so).
        this.log?.warn({ provider: 'bitrix24', from: this.http.origin, to: move }, 'portal moved: following it for this request; update the configured address');
        await this.notePendingMove(move);
        try {
          res = await this.http.relocated(move).request<{ result: T; next?: number; total?: number; time?: unknown }>(spec);
        } catch (e2) {
          throw withoutLocation(e2);
        }
      }
    } catch (e) {
      throw this.onOperatingLimit(e, method);
    }
    const data = res.data;
    if (!data || typeof data !== 'object' || !('result' in data)) {
      throw new CrmError({ code: 'upstream', message: `Bitrix24 answered ${method} without a result envelope.`, retryable: kind === 'read' });
    }
    if (method === 'batch') {
      const times = (data.result as { result_time?: unknown } | undefined)?.result_time;
      const cmd = (params.cmd ?? {}) as Record<string, string>;
      if (times && typeof times === 'object') for (const [k, t] of Object.entries(times)) if (cmd[k]) this.noteTime(normalizeMethod(cmd[k].split('?')[0]!) ?? '', t);
    } else this.noteTime(method, data.time);
    return { result: data.result, next: data.next, total: data.total };
  }

  /** Remembers when a method's operating budget resets (from the last successful response's `time`). */
  private noteTime(method: string, time: unknown): void {
    this.load.note(method, time);
    const at = (time as { operating_reset_at?: unknown } | undefined)?.operating_reset_at;
    if (typeof at !== 'number' || !Number.isFinite(at)) return;
    const entry = this.operating.get(method) ?? {};
    entry.resetAt = at * 1000;
    this.operating.set(method, entry);
  }

  /** A method blocked by OPERATION_TIME_LIMIT is not called again before its reset: nothing is sent. */
  private checkOperating(method: string): void {
    const until = this.operating.get(method)?.blockedUntil;
    if (until !== undefined && until > Date.now()) throw pausedError(method, until);
  }

  /** On OPERATION_TIME_LIMIT (§5) pause that method until `operating_reset_at` (at least 10 s, as the official SDK does). */
  private onOperatingLimit(e: unknown, method: string): unknown {
    if (!(e instanceof CrmError) || String((e.details as { bitrix_error?: unknown } | undefined)?.bitrix_error ?? '').toUpperCase() !== 'OPERATION_TIME_LIMIT') return e;
    // `batch` itself is not metered (§5; its commands are, and report per command): never pause it whole.
    if (method === 'batch') return e;
    const entry = this.operating.get(method) ?? {};
    const now = Date.now();
    entry.blockedUntil = Math.max(now + 10_000, entry.resetAt && entry.resetAt > now ? entry.resetAt : now + 60_000);
    this.operating.set(method, entry);
    return pausedError(method, entry.blockedUntil);
  }

  /**
   * The origin a "moved" answer may be followed to, undefined when `e` is no redirect; throws (without the
   * Location, which carries the secret) when the move may not carry the credential (see relocation.ts).
   */
  private portalMove(e: unknown): string | undefined {
    if (!isRedirect(e)) return undefined;
    const decision = decidePortalMove(this.http.origin, redirectTarget(e), this.basePath);
    if (decision.follow) return decision.origin;
    this.log?.warn({ provider: 'bitrix24', status: e.status, reason: decision.reason }, 'portal redirect refused: nothing was sent to the new address');
    throw new CrmError({
      code: 'config',
      status: e.status,
      message: `Bitrix24 answered ${e.status} (moved) and the redirect was not followed: ${decision.reason}. Nothing was sent there. If your portal's address really changed, open the portal in a browser and update ${this.conn.webhookUrl ? 'BITRIX_WEBHOOK_BASE' : 'BITRIX_PORTAL'}.`,
    });
  }

  /** The move this provider last followed (doctor shows it), recorded in the store for `crm-mcp doctor` too. */
  pendingMove: PortalMove | undefined;

  private async notePendingMove(to: string): Promise<void> {
    if (this.pendingMove?.to === to) return;
    this.pendingMove = { from: this.http.origin, to, seen_at: new Date().toISOString() };
    await this.moveStore.set(portalMoveKey(this.http.origin), this.pendingMove).catch(() => undefined);
  }

  /** One `batch` request (≤ 50 commands). Per-command errors are returned, not thrown. */
  async batch(ctx: CallContext, cmd: Record<string, string>, halt = false, opOverride?: OperationKind): Promise<BatchResult> {
    const keys = Object.keys(cmd);
    if (keys.length === 0) return { result: {}, errors: {}, total: {}, next: {} };
    if (keys.length > 50) throw new Error('internal: batch over 50 commands');
    const effects = batchMethods(cmd).map((m) => classifyMethod(m));
    const op: OperationKind = effects.every((e) => e === 'read') ? 'read' : effects.some((e) => e === 'create') ? 'create' : 'idempotent';
    const r = await this.call<{ result?: unknown; result_error?: unknown; result_total?: unknown; result_next?: unknown }>(ctx, 'batch', { halt: halt ? 1 : 0, cmd }, opOverride ?? op);
    // PHP serialises empty maps as [] (§3).
    const obj = <T>(v: unknown): Record<string, T> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, T>) : {});
    return {
      result: obj(r.result.result),
      errors: obj(r.result.result_error),
      total: obj(r.result.result_total),
      next: obj(r.result.result_next),
    };
  }

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.meta.get(key, load as () => Promise<unknown>) as Promise<T>;
  }

  // ---------------------------------------------------------------- metadata

  /** Mode, categories, stages, lead statuses and field definitions, in two batch requests, cached. */
  private lookupsRaw(ctx: CallContext): Promise<{ leadsEnabled: boolean; categories: BCategory[]; stages: BStatus[]; leadStatuses: BStatus[]; dealFields: Record<string, BField>; leadFields: Record<string, BField>; users: Row[] }> {
    return this.cached('lookups', async () => {
      const first = await this.batch(ctx, {
        mode: 'crm.settings.mode.get',
        categories: `crm.category.list?${phpQuery({ entityTypeId: 2 })}`,
        stages0: `crm.status.list?${phpQuery({ filter: { ENTITY_ID: 'DEAL_STAGE' } })}`,
        statuses: `crm.status.list?${phpQuery({ filter: { ENTITY_ID: 'STATUS' } })}`,
        dealFields: 'crm.deal.fields',
        leadFields: 'crm.lead.fields',
        users: firstUserPage(),
      });
      const mode = first.result.mode;
      // crm.settings.mode.get: 1 = classic (leads enabled), 2 = simple (no leads).
      const leadsEnabled = !(mode === 2 || mode === '2' || (typeof mode === 'string' && /simple/i.test(mode)));
      const catsRaw = first.result.categories as { categories?: BCategory[] } | undefined;
      const categories = (catsRaw?.categories ?? []).map((c) => ({ ...c, id: Number(c.id), sort: Number(c.sort) }));
      if (!categories.some((c) => c.id === 0)) categories.unshift({ id: 0, name: 'General', sort: 0, isDefault: 'Y' });
      const stageCmds: Record<string, string> = {};
      for (const c of categories) if (c.id !== 0) stageCmds[`s${c.id}`] = `crm.status.list?${phpQuery({ filter: { ENTITY_ID: `DEAL_STAGE_${c.id}` } })}`;
      // Users beyond the first page of 50 come in the same second batch as the pipelines' stages (users.ts).
      const firstUsers = Array.isArray(first.result.users) ? first.result.users.length : 0;
      const more = await this.batch(ctx, { ...stageCmds, ...moreUserPages(first.total.users, firstUsers) });
      const stages = [first.result.stages0, ...Object.entries(more.result).filter(([k]) => /^s\d+$/.test(k)).map(([, v]) => v)].flatMap((x) => (Array.isArray(x) ? (x as BStatus[]) : []));
      const leadStatuses = Array.isArray(first.result.statuses) ? (first.result.statuses as BStatus[]) : [];
      return {
        leadsEnabled,
        categories,
        stages,
        leadStatuses,
        dealFields: (first.result.dealFields ?? {}) as Record<string, BField>,
        leadFields: (first.result.leadFields ?? {}) as Record<string, BField>,
        users: collectUsers(first.result.users, more.result),
      };
    });
  }

  private async lookups(ctx: CallContext): Promise<BLookups & { leadsEnabled: boolean; raw: Awaited<ReturnType<BitrixProvider['lookupsRaw']>> }> {
    const raw = await this.lookupsRaw(ctx);
    const stages = new Map<string, BStatus>();
    for (const s of raw.stages) stages.set(s.STATUS_ID, s);
    for (const s of raw.leadStatuses) stages.set(`STATUS:${s.STATUS_ID}`, s);
    return {
      leadsEnabled: raw.leadsEnabled,
      categories: new Map(raw.categories.map((c) => [c.id, c])),
      stages,
      users: new Map(raw.users.map((u) => [String(u.ID), mapUser(u)])),
      dealFields: raw.dealFields,
      leadFields: raw.leadFields,
      raw,
    };
  }

  private async defaultEntity(ctx: CallContext, asked: 'lead' | 'deal' | undefined): Promise<'lead' | 'deal'> {
    const l = await this.lookups(ctx);
    if (asked === 'lead' && !l.leadsEnabled) throw validationError('This Bitrix24 portal runs in simple CRM mode (no leads): use entity "deal".');
    return asked ?? 'deal';
  }

  async account(ctx: CallContext): Promise<AccountInfo> {
    const b = await this.batch(ctx, { profile: 'profile', app: 'app.info', scope: 'scope' });
    const l = await this.lookups(ctx);
    const p = (b.result.profile ?? {}) as Row;
    const name = [str(p.NAME), str(p.LAST_NAME)].filter(Boolean).join(' ') || null;
    const scopes = Array.isArray(b.result.scope) ? (b.result.scope as string[]) : null;
    const tok = this.auth.tokens?.peek();
    const app = (b.result.app ?? {}) as Row;
    return {
      provider: 'bitrix24',
      id: null,
      name: new URL(this.http.origin).hostname,
      address: this.http.origin,
      current_user: p.ID !== undefined ? { id: num(p.ID)!, name } : null,
      auth: { type: this.conn.webhookUrl ? 'webhook' : 'oauth', expires_at: tok ? new Date(tok.expires_at).toISOString() : null, scopes },
      details: {
        plan: this.conn.plan,
        rate_limit: `leaky bucket ${BITRIX_PLANS[this.conn.plan].capacity} burst, ${BITRIX_PLANS[this.conn.plan].drain}/s`,
        crm_mode: l.leadsEnabled ? 'classic (leads enabled)' : 'simple (deals only)',
        license: app.LICENSE ?? null,
        pipelines: l.categories.size,
      },
    };
  }

  async pipelines(ctx: CallContext): Promise<Pipeline[]> {
    const raw = (await this.lookups(ctx)).raw;
    return mapPipelines(raw.categories, raw.stages, raw.leadsEnabled ? raw.leadStatuses : null);
  }

  async users(ctx: CallContext): Promise<User[]> {
    // Every page of user.get, read with the other metadata and cached with it (users.ts).
    return (await this.lookupsRaw(ctx)).users.map(mapUser);
  }

  async customFields(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]> {
    const m = { leads: 'lead', contacts: 'contact', companies: 'company', deals: 'deal' }[entity];
    const r = await this.cached(`fields:${m}`, async () => (await this.call<Record<string, BField>>(ctx, `crm.${m}.fields`)).result ?? {});
    return mapFieldDefs(r, entity);
  }

  // ---------------------------------------------------------------- lists (fast paging in one batch)

  /**
   * Reads `limit` rows after the cursor, newest first, with the fast method (§4.1): `order ID DESC`,
   * `filter <ID`, `start=-1`, pages chained inside one batch by `$result[pN][49][ID]`. One more row than
   * asked is read so `has_more` is exact.
   */
  /**
   * Fast paging (§7: `order ID`, `filter <ID`, `start=-1`, no COUNT): up to 50 pages ride in one `batch`,
   * each page's bound taken from the previous one with `$result[...]`. The first page of a listing fetches
   * only what it returns (plus one row to know `has_more`); once the caller follows a cursor it is scanning,
   * so the read goes ahead by a full batch (50 × 50 rows) and later pages are served from that, a minute at
   * most: a long scan then costs one request per 2,500 rows, the ceiling the portal's limit allows.
   */
  private async fastList(ctx: CallContext, method: string, filter: Record<string, unknown>, select: string[], limit: number, afterId?: number, sort: ListSort = 'created_desc'): Promise<{ rows: Row[]; hasMore: boolean }> {
    // Creation order is ID order: DATE_CREATE is read-only (crm.lead.fields: isReadOnly, fixture), set by the
    // portal on insert, so `order ID` with the ID bound keeps the fast method for both directions.
    const asc = sort === 'created_asc';
    const bound = asc ? '>ID' : '<ID';
    const scan = `${method}|${JSON.stringify(filter)}|${select.join(',')}|${sort}`;
    if (afterId !== undefined) {
      const ahead = this.readAhead.take(`${scan}|${afterId}`);
      if (ahead && (ahead.rows.length > limit || ahead.exhausted)) return this.serve(scan, ahead.rows, ahead.exhausted, limit);
    }
    const base = { order: { ID: asc ? 'ASC' : 'DESC' }, select, start: -1 };
    const needed = Math.ceil((limit + 1) / PAGE);
    const norm = normalizeMethod(method) ?? method;
    // How far to read ahead comes from the portal's own time figures (readahead.ts), not a fixed 50 pages.
    const pages = Math.min(MAX_PAGES, afterId !== undefined ? readAheadPages(this.load.get(norm), needed) : needed);
    if (pages === 1) {
      const f = afterId ? { ...filter, [bound]: afterId } : filter;
      const r = await this.call<Row[]>(ctx, method, { ...base, filter: f });
      const rows = Array.isArray(r.result) ? r.result : [];
      return this.serve(scan, rows, rows.length < PAGE, limit);
    }
    const rows: Row[] = [];
    let exhausted = false;
    let after = afterId;
    let read = 0;
    // Pages per request within the 60 s request limit and the operating budget (readahead.ts).
    let per = pagesPerRequest(this.load.get(norm));
    let failures = 0;
    while (read < pages && !exhausted) {
      const n = Math.min(per, pages - read);
      const cmd: Record<string, string> = {};
      for (let i = 0; i < n; i++) {
        const prev = i === 0 ? after : `$result[p${i - 1}][${PAGE - 1}][ID]`;
        const f = prev !== undefined ? { ...filter, [bound]: prev } : filter;
        cmd[`p${i}`] = `${method}?${phpQuery({ ...base, filter: f })}`;
      }
      let b: BatchResult;
      try {
        // Not re-sent whole by the HTTP core: a batch cut off by the request time limit (504) would only be
        // cut off again; it is re-read here in smaller pieces instead.
        b = await this.batch(ctx, cmd, false, 'create');
      } catch (e) {
        if (!(e instanceof CrmError) || !e.retryable || ++failures > 3) throw e;
        if (n > 1) this.load.timedOut(norm, n);
        per = Math.max(1, Math.floor(n / 2));
        continue;
      }
      for (let i = 0; i < n; i++) {
        const err = b.errors[`p${i}`];
        if (err) throw bitrixError(err.error, err.error_description, 400);
        const page = b.result[`p${i}`];
        const list = Array.isArray(page) ? (page as Row[]) : [];
        rows.push(...list);
        if (list.length < PAGE) {
          exhausted = true;
          break;
        }
      }
      read += n;
      after = rows.length ? Number(rows.at(-1)!.ID) : after;
      per = pagesPerRequest(this.load.get(norm));
    }
    return this.serve(scan, rows, exhausted, limit);
  }

  /**
   * Most recently updated first: DATE_MODIFY changes under a scan, so no ID bound can page it; classic `start`
   * paging (50 a page, §7.3 `order: {FIELD: "ASC"|"DESC"}`) with ID as the tie-break, one batch per call.
   */
  private async updatedList(ctx: CallContext, method: string, filter: Record<string, unknown>, select: string[], limit: number, offset: number): Promise<{ rows: Row[]; hasMore: boolean }> {
    const first = Math.floor(offset / PAGE) * PAGE;
    const pages = Math.ceil((offset - first + limit + 1) / PAGE);
    const params = (start: number) => ({ order: { DATE_MODIFY: 'DESC', ID: 'DESC' }, filter, select, start });
    const rows: Row[] = [];
    if (pages === 1) {
      const r = await this.call<Row[]>(ctx, method, params(first));
      rows.push(...(Array.isArray(r.result) ? r.result : []));
    } else {
      const cmd: Record<string, string> = {};
      for (let i = 0; i < pages; i++) cmd[`p${i}`] = `${method}?${phpQuery(params(first + i * PAGE))}`;
      const b = await this.batch(ctx, cmd);
      for (let i = 0; i < pages; i++) {
        const err = b.errors[`p${i}`];
        if (err) throw bitrixError(err.error, err.error_description, 400);
        const list = Array.isArray(b.result[`p${i}`]) ? (b.result[`p${i}`] as Row[]) : [];
        rows.push(...list);
        if (list.length < PAGE) break;
      }
    }
    const rest = rows.slice(offset - first);
    return { rows: rest.slice(0, limit), hasMore: rest.length > limit };
  }

  /** Fast (ID-bound) or offset paging, per sort. */
  private listRows(ctx: CallContext, method: string, filter: Record<string, unknown>, select: string[], limit: number, sort: ListSort, c: { after?: number; off?: number }): Promise<{ rows: Row[]; hasMore: boolean }> {
    return sort === 'updated_desc' ? this.updatedList(ctx, method, filter, select, limit, c.off ?? 0) : this.fastList(ctx, method, filter, select, limit, c.after, sort);
  }

  /** Returns `limit` rows and keeps the rest (read ahead) for the cursor that continues after them. */
  private serve(scan: string, rows: Row[], exhausted: boolean, limit: number): { rows: Row[]; hasMore: boolean } {
    const out = rows.slice(0, limit);
    const rest = rows.slice(limit);
    const last = out.at(-1);
    if (last && (rest.length > 0 || !exhausted)) this.readAhead.put(`${scan}|${Number(last.ID)}`, { rows: rest, exhausted });
    return { rows: out, hasMore: rest.length > 0 };
  }

  private page<T>(rows: Row[], hasMore: boolean, map: (r: Row) => T, cursorState: Record<string, unknown>): Page<T> {
    const last = rows.at(-1);
    return {
      items: rows.map(map),
      has_more: hasMore,
      cursor: hasMore && last ? encodeCursor({ ...cursorState, after: Number(last.ID) }) : null,
    };
  }

  private readCursor(cursor: string | undefined, kind: string): { after?: number; off?: number; s?: ListSort; f?: Record<string, unknown>; l?: number } {
    if (!cursor) return {};
    return decodeCursor(cursor, (v): v is { k: string; after: number; f: Record<string, unknown>; l: number } => v.k === kind && typeof v.after === 'number');
  }

  async listLeads(ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
    const entity = await this.defaultEntity(ctx, f.entity);
    const kind = `leads:${entity}`;
    const c = this.readCursor(f.cursor, kind);
    let filter: Record<string, unknown> = c.f ?? {};
    const limit = c.l ?? f.limit;
    if (!f.cursor) {
      if (f.pipeline_id !== undefined) {
        if (entity === 'lead') throw validationError('pipeline_id: Bitrix24 leads have no pipelines (use entity "deal" for deal pipelines).');
        filter.CATEGORY_ID = bxId(f.pipeline_id, 'pipeline_id', true);
      }
      if (f.status_ids?.length) filter[entity === 'deal' ? '@STAGE_ID' : '@STATUS_ID'] = f.status_ids.map(String);
      if (f.responsible_user_id !== undefined) filter.ASSIGNED_BY_ID = bxId(f.responsible_user_id, 'responsible_user_id');
      if (f.query) filter['%TITLE'] = f.query;
      if (f.created_from) filter['>=DATE_CREATE'] = bxDate(f.created_from, 'created_from');
      if (f.created_to) filter['<=DATE_CREATE'] = bxDate(f.created_to, 'created_to');
      if (f.updated_from) filter['>=DATE_MODIFY'] = bxDate(f.updated_from, 'updated_from');
      if (f.updated_to) filter['<=DATE_MODIFY'] = bxDate(f.updated_to, 'updated_to');
    }
    filter = { ...filter };
    const sort = c.s ?? f.sort ?? 'created_desc';
    const { rows, hasMore } = await this.listRows(ctx, `crm.${entity}.list`, filter, ['*', 'UF_*'], limit, sort, c);
    const l = await this.lookups(ctx);
    return this.page(rows, hasMore, (r) => (entity === 'deal' ? mapDeal(r, l) : mapLeadRow(r, l)), { k: kind, f: filter, l: limit, s: sort, off: (c.off ?? 0) + rows.length });
  }

  async listContacts(ctx: CallContext, q: ListQuery): Promise<Page<Contact>> {
    const c = this.readCursor(q.cursor, 'contacts');
    const filter = c.f ?? contactQueryFilter(q.query);
    const limit = c.l ?? q.limit;
    const sort = c.s ?? q.sort ?? 'created_desc';
    const { rows, hasMore } = await this.listRows(ctx, 'crm.contact.list', filter, ['*', 'UF_*', 'PHONE', 'EMAIL'], limit, sort, c);
    const l = await this.lookups(ctx);
    return this.page(rows, hasMore, (r) => mapContact(r, l), { k: 'contacts', f: filter, l: limit, s: sort, off: (c.off ?? 0) + rows.length });
  }

  async listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<Company>> {
    const c = this.readCursor(q.cursor, 'companies');
    const filter = c.f ?? (q.query ? { '%TITLE': q.query } : {});
    const limit = c.l ?? q.limit;
    const sort = c.s ?? q.sort ?? 'created_desc';
    const { rows, hasMore } = await this.listRows(ctx, 'crm.company.list', filter, ['*', 'UF_*', 'PHONE', 'EMAIL'], limit, sort, c);
    const l = await this.lookups(ctx);
    return this.page(rows, hasMore, (r) => mapCompany(r, l), { k: 'companies', f: filter, l: limit, s: sort, off: (c.off ?? 0) + rows.length });
  }

  // ---------------------------------------------------------------- single records

  private async getRow(ctx: CallContext, entity: Entity, id: Id): Promise<Row> {
    const n = bxId(id);
    try {
      const r = await this.call<Row>(ctx, `crm.${entity}.get`, { id: n });
      if (!r.result || typeof r.result !== 'object') throw notFound(`${cap(entity)} ${n}`);
      return r.result;
    } catch (e) {
      if (e instanceof CrmError && e.code === 'not_found') throw notFound(`${cap(entity)} ${n}`);
      throw e;
    }
  }

  async getLead(ctx: CallContext, id: Id, entityIn?: 'lead' | 'deal'): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }> {
    const entity = entityIn ?? 'deal';
    const n = bxId(id);
    const cmd: Record<string, string> = { item: `crm.${entity}.get?${phpQuery({ id: n })}` };
    if (entity === 'deal') cmd.links = `crm.deal.contact.items.get?${phpQuery({ id: n })}`;
    const b = await this.batch(ctx, cmd);
    const item = b.result.item as Row | undefined;
    if (!item || typeof item !== 'object') {
      const err = b.errors.item;
      if (!err || /not found/i.test(err.error_description) || /not found/i.test(err.error)) throw notFound(`${cap(entity)} ${n}`);
      throw bitrixError(err.error, err.error_description, 400);
    }
    const l = await this.lookups(ctx);
    const lead = entity === 'deal' ? mapDeal(item, l) : mapLeadRow(item, l);
    const linkIds = Array.isArray(b.result.links) ? (b.result.links as Row[]).map((x) => num(x.CONTACT_ID)).filter((x): x is Id => x !== null) : [];
    const contactIds = [...new Set([...linkIds, ...lead.contact_ids])].slice(0, 20);
    lead.contact_ids = contactIds;
    const more: Record<string, string> = {};
    contactIds.forEach((cid, i) => (more[`c${i}`] = `crm.contact.get?${phpQuery({ id: cid })}`));
    if (lead.company) more.company = `crm.company.get?${phpQuery({ id: lead.company.id })}`;
    const m = await this.batch(ctx, more);
    const contacts = contactIds.map((_, i) => m.result[`c${i}`]).filter((x): x is Row => !!x && typeof x === 'object').map((r) => mapContact(r, l));
    const companies = m.result.company && typeof m.result.company === 'object' ? [mapCompany(m.result.company as Row, l)] : [];
    if (lead.company && companies[0]) lead.company = { id: companies[0].id, name: companies[0].name };
    return { lead, contacts, companies };
  }

  async getContact(ctx: CallContext, id: Id): Promise<Contact> {
    const n = bxId(id);
    const l = await this.lookups(ctx);
    // Deals and leads through any binding: CONTACT_ID in crm.deal.list is the primary contact only (duplicates.ts).
    const cmd: Record<string, string> = { c: `crm.contact.get?${phpQuery({ id: n })}`, ...boundItemCommands([n], l.leadsEnabled) };
    const b = await this.batch(ctx, cmd);
    const row = b.result.c as Row | undefined;
    if (!row || typeof row !== 'object') throw notFound(`Contact ${n}`);
    const bound = boundIds(b);
    const contact = mapContact(row, l, [...bound.deals, ...bound.leads]);
    if (contact.company) {
      try {
        const co = await this.getRow(ctx, 'company', contact.company.id);
        contact.company = { id: contact.company.id, name: str(co.TITLE) };
      } catch {
        // keep the id without a name
      }
    }
    return contact;
  }

  async getCompany(ctx: CallContext, id: Id): Promise<Company> {
    return mapCompany(await this.getRow(ctx, 'company', id), await this.lookups(ctx));
  }

  // ---------------------------------------------------------------- search

  /** Finds contacts, leads and deals by email/phone (duplicates.ts: per-type findbycomm, every binding). */
  private async findByComm(ctx: CallContext, q: { email?: string; phone?: string }): Promise<{ contacts: Row[]; leads: Row[]; deals: Row[]; e164: string | null }> {
    if (!q.email && !q.phone) throw validationError('Give `email` and/or `phone` to search by.');
    const l = await this.lookups(ctx);
    return findByComm({ batch: (c, cmd) => this.batch(c, cmd), leadsEnabled: l.leadsEnabled }, ctx, q);
  }

  async searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult> {
    const r = await this.findByComm(ctx, q);
    const l = await this.lookups(ctx);
    const leads = [...r.deals.map((d) => mapDeal(d, l)), ...r.leads.map((x) => mapLeadRow(x, l))].sort(byOpenThenRecent);
    return {
      query: { ...(q.email ? { email: q.email } : {}), ...(q.phone ? { phone: q.phone, phone_e164: r.e164 } : {}) },
      contacts: r.contacts.map((c) => mapContact(c, l)),
      leads,
    };
  }

  // ---------------------------------------------------------------- writes

  private plan(method: string, params: unknown): PlannedRequest {
    return { method: 'POST', url: `${this.http.origin}${this.basePath.replace(/\/rest\/(\d+)\/[^/]+\//, '/rest/$1/***/')}${method}.json`, body: params };
  }

  private async resolveFields(ctx: CallContext, entity: Entity, inputs: CustomFieldInput[] | undefined): Promise<Record<string, unknown>> {
    if (!inputs?.length) return {};
    const plural = { lead: 'leads', deal: 'deals', contact: 'contacts', company: 'companies' } as const;
    const defs = await this.customFields(ctx, plural[entity]);
    const out: Record<string, unknown> = {};
    inputs.forEach((input, i) => {
      const where = `custom_fields[${i}]`;
      const key = String(input.field_id ?? input.field_code ?? '').toUpperCase();
      const def = key ? defs.find((d) => String(d.id).toUpperCase() === key) : input.field_name ? defs.find((d) => d.name.toLowerCase() === input.field_name!.trim().toLowerCase()) : undefined;
      if (!key && !input.field_name) throw validationError(`${where}: give field_id (UF_CRM_…), field_code or field_name.`);
      if (!def) throw validationError(`${where}: no ${entity} user field ${JSON.stringify(input.field_id ?? input.field_code ?? input.field_name)}. Known: ${defs.map((d) => `${d.name} (${d.id})`).join(', ') || 'none'}.`);
      const values = Array.isArray(input.value) ? input.value : [input.value];
      const conv = values.map((v) => {
        if (def.options?.length) {
          const opt = def.options.find((o) => String(o.id) === String(v) || o.value.toLowerCase() === String(v).trim().toLowerCase());
          if (!opt) throw validationError(`${where}: "${String(v)}" is not an option of "${def.name}". Options: ${def.options.map((o) => o.value).join(', ')}.`);
          return opt.id;
        }
        if (def.type === 'double' || def.type === 'integer') {
          const n = Number(v);
          if (!Number.isFinite(n)) throw validationError(`${where}: "${def.name}" takes a number, got ${JSON.stringify(v)}.`);
          return n;
        }
        if (def.type === 'boolean') return v === true || v === 'true' || v === 1 || v === 'Y' ? 'Y' : 'N';
        return String(v);
      });
      out[String(def.id)] = conv.length === 1 ? conv[0] : conv;
    });
    return out;
  }

  private async checkStage(ctx: CallContext, entity: 'lead' | 'deal', pipelineId: Id | undefined, statusId: Id | undefined): Promise<Record<string, unknown>> {
    const l = await this.lookups(ctx);
    const out: Record<string, unknown> = {};
    if (entity === 'lead') {
      if (pipelineId !== undefined && String(pipelineId) !== LEAD_PIPELINE.id) throw validationError('pipeline_id: Bitrix24 leads have no pipelines; omit it or use entity "deal".');
      if (statusId !== undefined) {
        if (!l.stages.has(`STATUS:${statusId}`)) throw validationError(`status_id: "${statusId}" is not a lead status. Statuses: ${l.raw.leadStatuses.map((s) => `${s.NAME} (${s.STATUS_ID})`).join(', ')}.`);
        out.STATUS_ID = String(statusId);
      }
      return out;
    }
    let cat: number | undefined;
    if (pipelineId !== undefined) {
      cat = Number(pipelineId);
      if (!l.categories.has(cat)) throw validationError(`pipeline_id: no deal pipeline ${pipelineId}. Pipelines: ${[...l.categories.values()].map((c) => `${c.name} (${c.id})`).join(', ')}.`);
      out.CATEGORY_ID = cat;
    }
    if (statusId !== undefined) {
      const s = l.stages.get(String(statusId));
      if (!s || !s.ENTITY_ID.startsWith('DEAL_STAGE')) throw validationError(`status_id: "${statusId}" is not a deal stage. Call get_pipelines for stage ids.`);
      const sCat = s.ENTITY_ID === 'DEAL_STAGE' ? 0 : Number(s.ENTITY_ID.slice('DEAL_STAGE_'.length));
      if (cat !== undefined && sCat !== cat) throw validationError(`status_id: stage "${statusId}" belongs to pipeline ${sCat}, not ${cat}.`);
      out.CATEGORY_ID = sCat;
      out.STAGE_ID = String(statusId);
    }
    return out;
  }

  private async checkUser(ctx: CallContext, id: Id | undefined): Promise<number | undefined> {
    if (id === undefined) return undefined;
    const n = bxId(id);
    const l = await this.lookups(ctx);
    if (l.users.size && !l.users.has(String(n))) throw validationError(`responsible_user_id: no user ${n}. Call list_users for valid ids.`);
    return n;
  }

  async createLead(ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult> {
    const l = await this.lookups(ctx);
    const entity = input.entity ?? (l.leadsEnabled ? 'lead' : 'deal');
    if (entity === 'lead' && !l.leadsEnabled) throw validationError('This portal runs in simple CRM mode (no leads): use entity "deal".');
    if (input.tags?.length) throw validationError('tags: Bitrix24 deals and leads have no tags; use a custom field or a note instead.');
    const contact = input.contact;
    const stage = await this.checkStage(ctx, entity, input.pipeline_id, input.status_id);
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const uf = await this.resolveFields(ctx, entity, input.custom_fields);
    const phone = contact?.phone ? normalizePhone(contact.phone) : undefined;
    if (contact?.phone && !phone) throw validationError(`contact.phone: "${contact.phone}" is not a phone number (include the country code).`);
    if (contact?.email && !looksLikeEmail(contact.email)) throw validationError(`contact.email: "${contact.email}" is not an email address.`);

    let contactId: number | undefined;
    let linkNote: string | undefined;
    if (contact?.email || contact?.phone) {
      const found = await this.searchLeadByContact(ctx, { email: contact.email, phone: contact.phone });
      // Only an open record of the kind asked for counts: a deal is never "already" a lead, nor the reverse.
      const d = decideLeadDuplicate(found, { entity, ifOpenLeadExists: input.if_open_lead_exists, matchedBy: contact.email ? 'email' : 'phone' });
      if (d.kind === 'return') return { created: false, lead: d.lead, contact_id: d.contactId, company_id: d.lead.company?.id ?? null, reason: d.reason };
      if (d.contactId !== undefined) contactId = Number(d.contactId);
      linkNote = d.note;
    }
    const person = splitName(contact);
    const contactName = person.full || contact?.email || contact?.phone;
    // The description promises the contact's name as the default title.
    const title = input.name?.trim() || contactName || undefined;
    if (!title) throw validationError('name: give the lead a name (or a contact to name it after).');

    const cmd: Record<string, string> = {};
    if (input.company?.name) {
      const r = await this.call<Row[]>(ctx, 'crm.company.list', { filter: { TITLE: input.company.name.trim() }, select: ['ID', 'TITLE'], start: -1 });
      const co = (Array.isArray(r.result) ? r.result : []).find((c) => String(c.TITLE).toLowerCase() === input.company!.name.trim().toLowerCase());
      if (!co) cmd.company = `crm.company.add?${phpQuery({ fields: { TITLE: input.company.name.trim() } })}`;
      else stage.COMPANY_ID = Number(co.ID);
    }
    const companyRef = cmd.company ? '$result[company]' : stage.COMPANY_ID;
    if (contact && contactId === undefined) {
      const fields: Record<string, unknown> = {
        ...(person.first ? { NAME: person.first } : {}),
        ...(person.last ? { LAST_NAME: person.last } : {}),
        ...(phone ? { PHONE: [{ VALUE: phone.e164, VALUE_TYPE: 'WORK' }] } : {}),
        ...(contact.email ? { EMAIL: [{ VALUE: contact.email.trim(), VALUE_TYPE: 'WORK' }] } : {}),
        ...(companyRef !== undefined ? { COMPANY_ID: companyRef } : {}),
        ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
      };
      cmd.contact = `crm.contact.add?${phpQuery({ fields })}`;
    }
    const contactRef = cmd.contact ? '$result[contact]' : contactId;
    const fields: Record<string, unknown> = {
      TITLE: title,
      ...(input.price !== undefined ? { OPPORTUNITY: input.price } : {}),
      ...stage,
      ...(companyRef !== undefined ? { COMPANY_ID: companyRef } : {}),
      ...(contactRef !== undefined ? { CONTACT_ID: contactRef } : {}),
      ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
      ...uf,
    };
    if (entity === 'lead' && contact) {
      if (person.first) fields.NAME = person.first;
      if (person.last) fields.LAST_NAME = person.last;
    }
    cmd.item = `crm.${entity}.add?${phpQuery({ fields })}`;
    const batchBody = { halt: 1, cmd };
    if (ctx.dryRun) return { created: false, dry_run: true, lead: null, contact_id: contactId ?? null, company_id: (stage.COMPANY_ID as number | undefined) ?? null, requests: [this.plan('batch', batchBody)] };

    const since = Date.now() - 5000;
    let b: BatchResult;
    try {
      b = await this.batch(ctx, cmd, true);
    } catch (e) {
      if (!(e instanceof CrmError && e.ambiguous)) throw e;
      // A batch is never blindly re-sent (it may have run): look first, then create once more.
      const landed = await this.findJustCreated(ctx, entity, title, contact, since);
      if (landed) return { created: true, lead: landed, contact_id: landed.contact_ids[0] ?? null, company_id: landed.company?.id ?? null, ...(linkNote ? { reason: linkNote } : {}) };
      b = await this.batch(ctx, cmd, true);
    }
    const errKey = Object.keys(b.errors)[0];
    if (errKey) {
      const err = b.errors[errKey]!;
      const made = Object.entries(b.result).map(([k, v]) => `${k} ${String(v)}`).join(', ');
      const e = bitrixError(err.error, err.error_description, 400);
      throw new CrmError({ code: e.code, status: e.status, message: `Bitrix24 refused ${errKey === 'item' ? `the ${entity}` : `the ${errKey}`}: ${e.message}${made ? ` (already created: ${made})` : ''}` });
    }
    const id = Number(b.result.item);
    const { lead } = await this.getLead(ctx, id, entity);
    return {
      created: true,
      lead,
      contact_id: num(b.result.contact) ?? contactId ?? null,
      company_id: num(b.result.company) ?? (stage.COMPANY_ID as number | undefined) ?? null,
      ...(linkNote ? { reason: linkNote } : {}),
    };
  }

  private async findJustCreated(ctx: CallContext, entity: 'lead' | 'deal', title: string, contact: CreateLeadInput['contact'], since: number): Promise<Lead | undefined> {
    const fresh = (x: Lead) => x.name === title && !!x.created_at && Date.parse(x.created_at) >= since - 60_000;
    if (contact?.email || contact?.phone) {
      const r = await this.searchLeadByContact(ctx, { email: contact.email, phone: contact.phone });
      const hit = r.leads.find(fresh);
      if (hit) return hit;
    }
    const r = await this.call<Row[]>(ctx, `crm.${entity}.list`, { filter: { TITLE: title }, order: { ID: 'DESC' }, select: ['*', 'UF_*'], start: -1 });
    const l = await this.lookups(ctx);
    return (Array.isArray(r.result) ? r.result : []).map((x) => (entity === 'deal' ? mapDeal(x, l) : mapLeadRow(x, l))).find(fresh);
  }

  async createContact(ctx: CallContext, input: CreateContactInput): Promise<CreateContactResult> {
    const phone = input.phone ? normalizePhone(input.phone) : undefined;
    if (input.phone && !phone) throw validationError(`phone: "${input.phone}" is not a phone number (include the country code).`);
    if (input.email && !looksLikeEmail(input.email)) throw validationError(`email: "${input.email}" is not an email address.`);
    if (input.tags?.length) throw validationError('tags: Bitrix24 contacts have no tags.');
    const person = splitName(input);
    const name = person.first;
    if (!person.full) throw validationError('Give first_name/last_name or name.');
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const uf = await this.resolveFields(ctx, 'contact', input.custom_fields);
    const l = await this.lookups(ctx);
    if (input.email || input.phone) {
      const found = await this.findByComm(ctx, { email: input.email, phone: input.phone });
      if (found.contacts[0]) return { created: false, contact: mapContact(found.contacts[0], l), reason: 'A contact with this email/phone already exists: returning it instead of creating a duplicate.' };
    }
    let companyId: number | undefined;
    if (input.company_name) {
      const r = await this.call<Row[]>(ctx, 'crm.company.list', { filter: { TITLE: input.company_name.trim() }, select: ['ID', 'TITLE'], start: -1 });
      const co = (Array.isArray(r.result) ? r.result : []).find((c) => String(c.TITLE).toLowerCase() === input.company_name!.trim().toLowerCase());
      if (!co) throw validationError(`company_name: no company named "${input.company_name}".`);
      companyId = Number(co.ID);
    }
    const fields = {
      ...(name ? { NAME: name } : {}),
      ...(person.last ? { LAST_NAME: person.last } : {}),
      ...(phone ? { PHONE: [{ VALUE: phone.e164, VALUE_TYPE: 'WORK' }] } : {}),
      ...(input.email ? { EMAIL: [{ VALUE: input.email.trim(), VALUE_TYPE: 'WORK' }] } : {}),
      ...(companyId ? { COMPANY_ID: companyId } : {}),
      ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
      ...uf,
    };
    if (ctx.dryRun) return { created: false, dry_run: true, contact: null, requests: [this.plan('crm.contact.add', { fields })] };
    let r: CallResult<number>;
    try {
      r = await this.call<number>(ctx, 'crm.contact.add', { fields });
    } catch (e) {
      // The response was lost: look before creating again (by email/phone; without them we cannot tell).
      if (!(e instanceof CrmError && e.ambiguous) || !(input.email || input.phone)) throw e;
      const landed = (await this.findByComm(ctx, { email: input.email, phone: input.phone })).contacts[0];
      if (landed) return { created: true, contact: await this.getContact(ctx, Number(landed.ID)) };
      r = await this.call<number>(ctx, 'crm.contact.add', { fields });
    }
    return { created: true, contact: await this.getContact(ctx, Number(r.result)) };
  }

  async updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>> {
    const entity = input.entity ?? 'deal';
    if (input.tags_to_add?.length || input.tags_to_delete?.length) throw validationError('tags: Bitrix24 deals and leads have no tags.');
    const id = bxId(input.id);
    const current = await this.getRow(ctx, entity, id);
    const stage = await this.checkStage(ctx, entity, input.pipeline_id, input.status_id);
    if (entity === 'deal' && stage.CATEGORY_ID !== undefined && Number(stage.CATEGORY_ID) !== Number(current.CATEGORY_ID ?? 0)) {
      // §7.2: crm.deal.update cannot move a deal to another pipeline.
      throw validationError(`Moving deal ${id} to another pipeline is not supported here (crm.deal.update cannot change CATEGORY_ID); pick a stage of pipeline ${Number(current.CATEGORY_ID ?? 0)}.`);
    }
    delete stage.CATEGORY_ID;
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const uf = await this.resolveFields(ctx, entity, input.custom_fields);
    const fields = {
      ...(input.name !== undefined ? { TITLE: input.name } : {}),
      ...(input.price !== undefined ? { OPPORTUNITY: input.price } : {}),
      ...stage,
      ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
      ...uf,
    };
    if (Object.keys(fields).length === 0) throw validationError('Nothing to update: give at least one field to change.');
    const params = { id, fields };
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan(`crm.${entity}.update`, params)] };
    await this.call(ctx, `crm.${entity}.update`, params);
    return { item: (await this.getLead(ctx, id, entity)).lead };
  }

  async updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>> {
    if (input.tags_to_add?.length || input.tags_to_delete?.length) throw validationError('tags: Bitrix24 contacts have no tags.');
    const id = bxId(input.id);
    const current = await this.getRow(ctx, 'contact', id);
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const uf = await this.resolveFields(ctx, 'contact', input.custom_fields);
    // §7.4: items without ID are added, {ID, DELETE:'Y'} removes one; values not mentioned stay.
    const edits = (type: 'PHONE' | 'EMAIL', add: string[] | undefined, remove: string[] | undefined) => {
      const existing = Array.isArray(current[type]) ? (current[type] as BMulti[]) : [];
      const same = type === 'PHONE' ? (a: string, b: string) => samePhone(a, b) : sameEmail;
      const out: Array<Record<string, string>> = [];
      for (const r of remove ?? []) {
        const hit = existing.filter((m) => same(m.VALUE ?? '', r));
        if (!hit.length) throw validationError(`${type === 'PHONE' ? 'phones' : 'emails'}_to_remove: ${r} is not on contact ${id}.`);
        for (const m of hit) out.push({ ID: String(m.ID), DELETE: 'Y' });
      }
      for (const a of add ?? []) {
        let value = a.trim();
        if (type === 'PHONE') {
          const n = normalizePhone(a);
          if (!n) throw validationError(`phones_to_add: "${a}" is not a phone number.`);
          value = n.e164;
        } else if (!looksLikeEmail(a)) throw validationError(`emails_to_add: "${a}" is not an email address.`);
        if (!existing.some((m) => same(m.VALUE ?? '', value))) out.push({ VALUE: value, VALUE_TYPE: 'WORK' });
      }
      return out.length ? { [type]: out } : {};
    };
    const fields = {
      ...(input.first_name !== undefined ? { NAME: input.first_name } : input.name !== undefined ? { NAME: input.name } : {}),
      ...(input.last_name !== undefined ? { LAST_NAME: input.last_name } : {}),
      ...(responsible ? { ASSIGNED_BY_ID: responsible } : {}),
      ...edits('PHONE', input.phones_to_add, input.phones_to_remove),
      ...edits('EMAIL', input.emails_to_add, input.emails_to_remove),
      ...uf,
    };
    if (Object.keys(fields).length === 0) throw validationError('Nothing to update: give at least one field to change.');
    const params = { id, fields };
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('crm.contact.update', params)] };
    await this.call(ctx, 'crm.contact.update', params);
    return { item: await this.getContact(ctx, id) };
  }

  async addNote(ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>> {
    const id = bxId(input.entity_id);
    const text = input.text.trim();
    if (!text) throw validationError('text: the note is empty.');
    await this.getRow(ctx, input.entity, id);
    const params = { fields: { ENTITY_ID: id, ENTITY_TYPE: input.entity, COMMENT: text } };
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('crm.timeline.comment.add', params)] };
    const r = await this.call<number>(ctx, 'crm.timeline.comment.add', params);
    return { item: { id: num(r.result)!, entity: input.entity, entity_id: id, text, created_at: new Date().toISOString() } };
  }

  async createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>> {
    const text = input.text.trim();
    if (!text) throw validationError('text: the task text is empty.');
    const due = parseDeadline(input.complete_till, 'complete_till');
    if ((input.entity === undefined) !== (input.entity_id === undefined)) throw validationError('Give both entity and entity_id, or neither.');
    const l = await this.lookups(ctx);
    const me = await this.call<Row>(ctx, 'profile');
    const responsible = (await this.checkUser(ctx, input.responsible_user_id)) ?? Number(me.result.ID);
    let binding: string | undefined;
    if (input.entity && input.entity_id !== undefined) {
      const id = bxId(input.entity_id);
      await this.getRow(ctx, input.entity, id);
      binding = `${{ lead: 'L', deal: 'D', contact: 'C', company: 'CO' }[input.entity]}_${id}`;
    }
    const params = { fields: { TITLE: text.slice(0, 250), DESCRIPTION: text, RESPONSIBLE_ID: responsible, DEADLINE: new Date(due).toISOString(), ...(binding ? { UF_CRM_TASK: [binding] } : {}) } };
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('tasks.task.add', params)] };
    const r = await this.call<{ task?: Row }>(ctx, 'tasks.task.add', params);
    const task = r.result?.task ?? {};
    return {
      item: {
        id: num(task.id) ?? num((task as Row).ID) ?? 0,
        text,
        complete_till: iso(new Date(due).toISOString()),
        entity: input.entity ?? null,
        entity_id: input.entity_id !== undefined ? bxId(input.entity_id) : null,
        responsible: { id: responsible, name: l.users.get(String(responsible))?.name ?? null },
        is_completed: false,
      },
    };
  }

  async deleteRecord(ctx: CallContext, entity: Entity, id: Id): Promise<WriteResult<{ id: Id; entity: string }>> {
    const n = bxId(id);
    await this.getRow(ctx, entity, n);
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan(`crm.${entity}.delete`, { id: n })] };
    await this.call(ctx, `crm.${entity}.delete`, { id: n });
    return { item: { id: n, entity } };
  }
}

function contactQueryFilter(query: string | undefined): Record<string, unknown> {
  if (!query) return {};
  const q = query.trim();
  if (looksLikeEmail(q)) return { EMAIL: q };
  const p = /^[+\d\s()-]{6,}$/.test(q) ? normalizePhone(q) : undefined;
  if (p) return { PHONE: p.e164 };
  return { '%LAST_NAME': q };
}

function byOpenThenRecent(a: Lead, b: Lead): number {
  const closed = (l: Lead) => (l.stage?.type === 'won' || l.stage?.type === 'lost' ? 1 : 0);
  return closed(a) - closed(b) || (b.updated_at ?? '').localeCompare(a.updated_at ?? '');
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A Bitrix24 id; `allowZero` for deal categories, where 0 is the General pipeline. */
export function bxId(v: Id, field?: string, allowZero = false): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(String(v).trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1)) {
    throw validationError(`${field ? `${field}: ` : ''}"${String(v)}" is not a valid Bitrix24 id (a ${allowZero ? 'non-negative' : 'positive'} whole number).`);
  }
  return n;
}

function bxDate(v: string, field: string): string {
  const t = parseDateInput(v, field);
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

function pausedError(method: string, until: number): CrmError {
  return new CrmError({
    code: 'rate_limited',
    retryable: true,
    retryAfterMs: until - Date.now(),
    message: `Bitrix24 has paused ${method} for this webhook/app (OPERATION_TIME_LIMIT: its processing-time budget for 10 minutes is spent). Other methods still work; retry ${method} in about ${Math.ceil((until - Date.now()) / 1000)} s.`,
  });
}

/** The normalised methods a batch `cmd` map calls (`method?query` values). */
function batchMethods(cmd: unknown): string[] {
  if (!cmd || typeof cmd !== 'object') return [];
  return Object.values(cmd as Record<string, unknown>).map((c) => { const raw = String(c).split('?')[0]!; return normalizeMethod(raw) ?? raw; });
}
