/**
 * The Kommo (amoCRM) provider: typed calls over the HTTP core, caching of the account's slow-changing
 * metadata (pipelines, users, custom fields), duplicate-safe creates and honest pagination.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { KommoConnection } from '../../config/config.js';
import { registerConnectionSecrets } from '../../config/secrets.js';
import { parseDateInput, parseDeadline } from '../../services/dates.js';
import { decideLeadDuplicate } from '../../services/dedupe.js';
import { splitName } from '../../services/names.js';
import { HttpCore, type HttpEvent, type HttpMethod, type QueryValue } from '../../http/client.js';
import { CrmError, notFound, validationError } from '../../http/errors.js';
import { SlidingWindowLimiter, type RateLimiter } from '../../http/limiter.js';
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
  Note,
  NoteInput,
  Page,
  Pipeline,
  PlannedRequest,
  SearchResult,
  Tag,
  Task,
  TaskInput,
  UpdateContactInput,
  UpdateLeadInput,
  User,
  WriteResult,
} from '../types.js';
import { kommoAdapter } from './adapter.js';
import { isMergeCursor, LEAD_ORDER, mergePages, pairParams, PARTY_ORDER } from './paging.js';
import { KommoAuth } from './auth.js';
import {
  LOST,
  WON,
  iso,
  mapCompany,
  mapContact,
  mapFieldDef,
  mapLead,
  mapPipeline,
  mapTag,
  mapUser,
  multiField,
  type KContact,
  type KCustomField,
  type KCustomFieldWrite,
  type KLead,
  type KPipeline,
  type KUser,
  type Lookups,
} from './map.js';

/** Kommo allows 7 requests per second per integration (fact sheet §3). */
export const KOMMO_RPS = 7;
const META_TTL_MS = 5 * 60 * 1000;
const PAGE_MAX = 250;
/** A whole-read list (fields, users, tags) that goes past this many pages is not metadata any more. */
const MAX_WHOLE_PAGES = 100;

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

type Hal<K extends string, T> = { _links?: { next?: { href: string } }; _embedded?: Partial<Record<K, T[]>> };

type EntityPath = 'leads' | 'contacts' | 'companies';

export class KommoProvider implements CrmProvider {
  readonly kind = 'kommo' as const;
  readonly connection: string;
  readonly policy: PolicyFlags;
  readonly http: HttpCore;
  readonly auth: KommoAuth;
  private readonly meta = new TtlCache<unknown>(META_TTL_MS);
  /** Pages fetched ahead to answer `has_more` honestly; reused by the next call. */
  private readonly prefetched = new TtlCache<unknown[]>(60_000, 50);

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
  }

  async init(): Promise<void> {
    await this.auth.init();
  }

  // ---------------------------------------------------------------- low-level calls

  async call<T>(ctx: CallContext, method: HttpMethod, path: string, opts: { query?: Record<string, QueryValue> | URLSearchParams; body?: unknown; op?: OperationKind } = {}): Promise<T | undefined> {
    const res = await this.http.request<T>({
      method,
      path,
      query: opts.query,
      body: opts.body,
      op: opts.op ?? (method === 'GET' ? 'read' : method === 'POST' ? 'create' : 'idempotent'),
      grant: ctx.grant,
      signal: ctx.signal,
    });
    return res.data;
  }

  private get<T>(ctx: CallContext, path: string, query?: Record<string, QueryValue> | URLSearchParams): Promise<T | undefined> {
    return this.call<T>(ctx, 'GET', path, { query });
  }

  /** Reads one page of a HAL list; 204 (no data) is an empty page. */
  private async page<T>(ctx: CallContext, path: string, key: string, query: URLSearchParams): Promise<{ items: T[]; next: boolean; pageCount?: number }> {
    const data = await this.get<Hal<string, T> & { _page_count?: unknown }>(ctx, path, query);
    const items = (data?._embedded?.[key] ?? []) as T[];
    return { items, next: !!data?._links?.next, ...(typeof data?._page_count === 'number' ? { pageCount: data._page_count } : {}) };
  }

  /**
   * Every page of a list read whole (metadata). A short page is not the end: Kommo caps some lists below the
   * `limit` asked for (custom fields: "до 50 полей за один запрос" although `limit` goes to 250, amoCRM
   * docs crm_platform/custom-fields), so only `_links.next` (or `_page_count`, or an empty 204 page) ends it
   * (fact sheet §4: "follow `_links.next.href`; stop when `next` is absent or you get 204").
   */
  private async all<T>(ctx: CallContext, path: string, key: string, base: Record<string, string> = {}): Promise<T[]> {
    const out: T[] = [];
    for (let page = 1; page <= MAX_WHOLE_PAGES; page++) {
      const q = new URLSearchParams({ ...base, page: String(page), limit: String(PAGE_MAX) });
      const { items, next, pageCount } = await this.page<T>(ctx, path, key, q);
      out.push(...items);
      if (!next || !items.length || (pageCount !== undefined && page >= pageCount)) return out;
    }
    throw new CrmError({ code: 'upstream', message: `${path} has more than ${MAX_WHOLE_PAGES} pages; refusing to read further.` });
  }

  /**
   * A page for a list tool with an honest `has_more`: when a page is full, the next one is fetched too and
   * kept for the following call, so the agent never gets `has_more: true` followed by an empty page.
   */
  private async listPage<T>(ctx: CallContext, path: string, key: string, params: Array<[string, string]>, limit: number, cursor?: string): Promise<{ items: T[]; has_more: boolean; cursor: string | null }> {
    let page = 1;
    if (cursor) {
      const c = decodeCursor(cursor, (v): v is { p: number; l: number; q: Array<[string, string]>; path: string } =>
        typeof v.p === 'number' && typeof v.l === 'number' && Array.isArray(v.q) && v.path === path,
      );
      page = c.p;
      limit = c.l;
      params = c.q;
    }
    const keyOf = (p: number) => JSON.stringify([this.connection, path, params, limit, p]);
    const fetchPage = async (p: number): Promise<T[]> => {
      const cached = this.prefetched.take(keyOf(p));
      if (cached) return cached as T[];
      const q = new URLSearchParams(params);
      q.set('page', String(p));
      q.set('limit', String(limit));
      return (await this.page<T>(ctx, path, key, q)).items;
    };
    const items = await fetchPage(page);
    let hasMore = false;
    if (items.length >= limit) {
      const next = await fetchPage(page + 1);
      hasMore = next.length > 0;
      if (hasMore) this.prefetched.put(keyOf(page + 1), next);
    }
    return { items, has_more: hasMore, cursor: hasMore ? encodeCursor({ path, p: page + 1, l: limit, q: params }) : null };
  }

  // ---------------------------------------------------------------- metadata (cached)

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.meta.get(key, load as () => Promise<unknown>) as Promise<T>;
  }

  private rawPipelines(ctx: CallContext): Promise<KPipeline[]> {
    return this.cached('pipelines', () => this.all<KPipeline>(ctx, '/api/v4/leads/pipelines', 'pipelines'));
  }

  private rawUsers(ctx: CallContext): Promise<KUser[]> {
    return this.cached('users', () => this.all<KUser>(ctx, '/api/v4/users', 'users'));
  }

  private rawFields(ctx: CallContext, entity: EntityPath): Promise<KCustomField[]> {
    return this.cached(`fields:${entity}`, () => this.all<KCustomField>(ctx, `/api/v4/${entity}/custom_fields`, 'custom_fields'));
  }

  private rawAccount(ctx: CallContext): Promise<Record<string, unknown>> {
    return this.cached('account', async () => (await this.get<Record<string, unknown>>(ctx, '/api/v4/account')) ?? {});
  }

  private async lookups(ctx: CallContext): Promise<Lookups> {
    const [pipelines, users] = await Promise.all([
      this.rawPipelines(ctx),
      // Users are admin-only (§9): without them we show ids without names rather than fail.
      this.rawUsers(ctx).catch((e: unknown) => {
        if (e instanceof CrmError && e.code === 'forbidden') return [] as KUser[];
        throw e;
      }),
    ]);
    return { pipelines: new Map(pipelines.map((p) => [p.id, p])), users: new Map(users.map((u) => [u.id, u])) };
  }

  private async defaultCountry(ctx: CallContext): Promise<string | undefined> {
    try {
      const acc = await this.rawAccount(ctx);
      const c = typeof acc.country === 'string' ? acc.country : undefined;
      return c && /^[a-z]{2}$/i.test(c) ? c.toUpperCase() : undefined;
    } catch {
      return undefined;
    }
  }

  // ---------------------------------------------------------------- reads

  async account(ctx: CallContext): Promise<AccountInfo> {
    const [acc, l, token] = await Promise.all([this.rawAccount(ctx), this.lookups(ctx), this.auth.info()]);
    const uid = typeof acc.current_user_id === 'number' ? acc.current_user_id : null;
    return {
      provider: 'kommo',
      id: typeof acc.id === 'number' ? acc.id : null,
      name: typeof acc.name === 'string' ? acc.name : null,
      address: this.conn.baseUrl,
      current_user: uid ? { id: uid, name: l.users.get(uid)?.name ?? null } : null,
      country: typeof acc.country === 'string' ? acc.country : null,
      currency: typeof acc.currency === 'string' ? acc.currency : null,
      auth: { type: token.type, expires_at: token.expires_at, scopes: token.scopes },
      details: { subdomain: acc.subdomain ?? null, pipelines: l.pipelines.size, users: l.users.size, rate_limit: `${KOMMO_RPS} requests/s` },
    };
  }

  async pipelines(ctx: CallContext): Promise<Pipeline[]> {
    return (await this.rawPipelines(ctx)).filter((p) => !p.is_archive).map(mapPipeline);
  }

  async users(ctx: CallContext): Promise<User[]> {
    return (await this.rawUsers(ctx)).map(mapUser);
  }

  async customFields(ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]> {
    if (entity === 'deals') throw validationError('Kommo has no "deals": use entity "leads" (a Kommo lead is the sales opportunity).');
    return (await this.rawFields(ctx, entity)).map((f) => mapFieldDef(f, entity));
  }

  async tags(ctx: CallContext, entity: EntityPath, query?: string): Promise<Tag[]> {
    const q: Record<string, string> = {};
    if (query) q.query = query;
    return (await this.all<{ id: number; name: string; color?: string | null }>(ctx, `/api/v4/${entity}/tags`, 'tags', q)).map(mapTag);
  }

  async listLeads(ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
    if (f.entity === 'deal') throw validationError('Kommo has no separate deals: omit `entity` (Kommo leads are the sales opportunities).');
    const [orderKey, dir] = LEAD_ORDER[f.sort ?? 'created_desc'];
    const params: Array<[string, string]> = [['with', 'contacts'], [`order[${orderKey}]`, dir]];
    if (f.query) params.push(['query', f.query]);
    if (f.pipeline_id !== undefined) params.push(['filter[pipeline_id][]', String(f.pipeline_id)]);
    const pairs = f.status_ids?.length ? await this.statusPairs(ctx, f.pipeline_id, f.status_ids) : [];
    if (f.responsible_user_id !== undefined) params.push(['filter[responsible_user_id][]', String(f.responsible_user_id)]);
    for (const [name, from, to] of [
      ['created_at', f.created_from, f.created_to],
      ['updated_at', f.updated_from, f.updated_to],
    ] as const) {
      if (from) params.push([`filter[${name}][from]`, String(toUnix(from, `${name.split('_')[0]}_from`))]);
      if (to) params.push([`filter[${name}][to]`, String(toUnix(to, `${name.split('_')[0]}_to`))]);
    }
    const merged = f.cursor ? isMergeCursor(f.cursor) : pairs.length > 1;
    const page = merged
      ? await this.mergedPage<KLead>(ctx, '/api/v4/leads', 'leads', params, pairs, f.limit, f.cursor)
      : await this.listPage<KLead>(ctx, '/api/v4/leads', 'leads', [...params, ...pairs.flatMap(pairParams(0))], f.limit, f.cursor);
    const l = await this.lookups(ctx);
    return { items: page.items.map((x) => mapLead(x, l)), has_more: page.has_more, cursor: page.cursor };
  }

  /**
   * `filter[statuses]` takes (pipeline_id, status_id) pairs (§5.1). A stage id names one stage of one pipeline,
   * except won/lost (142/143), which every pipeline has under the same ids (§7): without a pipeline they mean
   * that stage in every pipeline, one pair each.
   */
  private async statusPairs(ctx: CallContext, pipelineId: Id | undefined, statusIds: Id[]): Promise<Array<[number, number]>> {
    const pipelines = await this.rawPipelines(ctx);
    const pid = pipelineId !== undefined ? toId(pipelineId, 'pipeline_id') : undefined;
    const out = new Map<string, [number, number]>();
    for (const raw of statusIds) {
      const sid = toId(raw, 'status_ids');
      const owners = pipelines.filter((p) => (pid === undefined || p.id === pid) && p._embedded?.statuses?.some((st) => st.id === sid));
      if (!owners.length) {
        const where = pid !== undefined ? ` in pipeline ${pid}` : '';
        throw validationError(`status_ids: unknown stage ${sid}${where}. Call get_pipelines for valid stage ids.`);
      }
      for (const p of owners) out.set(`${p.id}:${sid}`, [p.id, sid]);
    }
    return [...out.values()];
  }

  /** A page over several status pairs, one list each (see `mergePages`). */
  private mergedPage<T extends { id: number; created_at?: number; updated_at?: number }>(
    ctx: CallContext,
    path: string,
    key: string,
    params: Array<[string, string]>,
    pairs: Array<[number, number]>,
    limit: number,
    cursor?: string,
  ): Promise<{ items: T[]; has_more: boolean; cursor: string | null }> {
    return mergePages<T>((q) => this.page<T>(ctx, path, key, q), { path, params, pairs, limit, pageSize: PAGE_MAX, cursor });
  }

  private async rawLead(ctx: CallContext, id: Id): Promise<KLead> {
    const n = toId(id, 'id');
    let raw: KLead | undefined;
    try {
      raw = await this.get<KLead>(ctx, `/api/v4/leads/${n}`, { with: 'contacts' });
    } catch (e) {
      if (e instanceof CrmError && e.code === 'not_found') raw = undefined;
      else throw e;
    }
    // A missing record may come as 204 or 404 (§4).
    if (!raw?.id) throw notFound(`Lead ${n}`);
    return raw;
  }

  async getLead(ctx: CallContext, id: Id): Promise<{ lead: Lead; contacts: Contact[]; companies: Company[] }> {
    const raw = await this.rawLead(ctx, id);
    const l = await this.lookups(ctx);
    const lead = mapLead(raw, l);
    const contactIds = (raw._embedded?.contacts ?? []).map((c) => c.id);
    const companyIds = (raw._embedded?.companies ?? []).map((c) => c.id);
    // `with` so the embedded records' own links are read, not left as empty lists that would mean "none" (§6).
    const [contacts, companies] = await Promise.all([
      contactIds.length ? this.byIds<KContact>(ctx, 'contacts', contactIds, 'leads') : [],
      companyIds.length ? this.byIds<KContact>(ctx, 'companies', companyIds, 'contacts,leads') : [],
    ]);
    if (lead.company && companies[0]) lead.company = { id: companies[0].id, name: companies[0].name ?? null };
    return { lead, contacts: contacts.map((c) => mapContact(c, l)), companies: companies.map((c) => mapCompany(c, l)) };
  }

  private async byIds<T>(ctx: CallContext, entity: EntityPath, ids: number[], withParam?: string): Promise<T[]> {
    const q = new URLSearchParams();
    for (const id of ids.slice(0, PAGE_MAX)) q.append('filter[id][]', String(id));
    q.set('limit', String(PAGE_MAX));
    if (withParam) q.set('with', withParam);
    return (await this.page<T>(ctx, `/api/v4/${entity}`, entity, q)).items;
  }

  async listContacts(ctx: CallContext, q: ListQuery): Promise<Page<Contact>> {
    const [orderKey, dir] = PARTY_ORDER[q.sort ?? 'created_desc'];
    const params: Array<[string, string]> = [['with', 'leads'], [`order[${orderKey}]`, dir]];
    if (q.query) params.push(['query', q.query]);
    const page = await this.listPage<KContact>(ctx, '/api/v4/contacts', 'contacts', params, q.limit, q.cursor);
    const l = await this.lookups(ctx);
    return { items: page.items.map((x) => mapContact(x, l)), has_more: page.has_more, cursor: page.cursor };
  }

  private async rawEntity(ctx: CallContext, entity: 'contacts' | 'companies', id: Id, withParam: string): Promise<KContact> {
    const n = toId(id, 'id');
    let raw: KContact | undefined;
    try {
      raw = await this.get<KContact>(ctx, `/api/v4/${entity}/${n}`, { with: withParam });
    } catch (e) {
      if (!(e instanceof CrmError && e.code === 'not_found')) throw e;
    }
    if (!raw?.id) throw notFound(`${entity === 'contacts' ? 'Contact' : 'Company'} ${n}`);
    return raw;
  }

  async getContact(ctx: CallContext, id: Id): Promise<Contact> {
    const raw = await this.rawEntity(ctx, 'contacts', id, 'leads');
    const l = await this.lookups(ctx);
    const c = mapContact(raw, l);
    if (c.company) {
      const [co] = await this.byIds<KContact>(ctx, 'companies', [Number(c.company.id)]);
      if (co) c.company = { id: co.id, name: co.name ?? null };
    }
    return c;
  }

  async listCompanies(ctx: CallContext, q: ListQuery): Promise<Page<Company>> {
    const [orderKey, dir] = PARTY_ORDER[q.sort ?? 'created_desc'];
    const params: Array<[string, string]> = [['with', 'contacts,leads'], [`order[${orderKey}]`, dir]];
    if (q.query) params.push(['query', q.query]);
    const page = await this.listPage<KContact>(ctx, '/api/v4/companies', 'companies', params, q.limit, q.cursor);
    const l = await this.lookups(ctx);
    return { items: page.items.map((x) => mapCompany(x, l)), has_more: page.has_more, cursor: page.cursor };
  }

  async getCompany(ctx: CallContext, id: Id): Promise<Company> {
    return mapCompany(await this.rawEntity(ctx, 'companies', id, 'contacts,leads'), await this.lookups(ctx));
  }

  // ---------------------------------------------------------------- search

  private async searchContacts(ctx: CallContext, q: { email?: string; phone?: string }): Promise<{ contacts: KContact[]; e164: string | null }> {
    if (!q.email && !q.phone) throw validationError('Give `email` and/or `phone` to search by.');
    if (q.email && !looksLikeEmail(q.email)) throw validationError(`email: "${q.email}" is not an email address.`);
    const country = await this.defaultCountry(ctx);
    const found = new Map<number, KContact>();
    let e164: string | null = null;
    if (q.phone) {
      const n = normalizePhone(q.phone, country);
      // A number that does not parse for the account's country (a foreign national one such as
      // `020 7946 0123` on a Russian account) is still searched by its digits: it is stored as typed.
      const raw = q.phone.replace(/\D+/g, '').replace(/^0+/, '');
      if (!n && raw.length < 7) throw validationError(`phone: "${q.phone}" is not a phone number (include the country code, e.g. +7 912 345-67-89).`);
      e164 = n?.e164 ?? null;
      // Kommo's `query` is a substring search over all fields (§6): search by the national digits, then keep
      // only contacts whose PHONE field really holds this number.
      const q1 = new URLSearchParams({ query: n ? n.national : raw, with: 'leads', limit: String(PAGE_MAX) });
      for (const c of (await this.page<KContact>(ctx, '/api/v4/contacts', 'contacts', q1)).items) {
        const phones = (c.custom_fields_values ?? []).find((f) => f.field_code === 'PHONE')?.values ?? [];
        if (phones.some((v) => samePhone(String(v.value ?? ''), n ? n.e164 : q.phone!, country))) found.set(c.id, c);
      }
    }
    if (q.email) {
      const q2 = new URLSearchParams({ query: q.email.trim(), with: 'leads', limit: String(PAGE_MAX) });
      for (const c of (await this.page<KContact>(ctx, '/api/v4/contacts', 'contacts', q2)).items) {
        const emails = (c.custom_fields_values ?? []).find((f) => f.field_code === 'EMAIL')?.values ?? [];
        if (emails.some((v) => sameEmail(String(v.value ?? ''), q.email!))) found.set(c.id, c);
      }
    }
    return { contacts: [...found.values()], e164 };
  }

  async searchLeadByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult> {
    const { contacts, e164 } = await this.searchContacts(ctx, q);
    const leadIds = [...new Set(contacts.flatMap((c) => (c._embedded?.leads ?? []).map((x) => x.id)))];
    const rawLeads = leadIds.length ? await this.byIds<KLead>(ctx, 'leads', leadIds, 'contacts') : [];
    const l = await this.lookups(ctx);
    const leads = rawLeads.map((x) => mapLead(x, l)).sort(byOpenThenRecent);
    return {
      query: { ...(q.email ? { email: q.email } : {}), ...(q.phone ? { phone: q.phone, phone_e164: e164 } : {}) },
      contacts: contacts.map((c) => mapContact(c, l)),
      leads,
    };
  }

  // ---------------------------------------------------------------- writes

  private plan(method: HttpMethod, path: string, body: unknown): PlannedRequest {
    return { method, url: `${this.conn.baseUrl}${path}`, body };
  }

  /** Resolves custom field inputs (by id, code or name; enum options by label) into Kommo's write shape. */
  private async resolveFields(ctx: CallContext, entity: EntityPath, inputs: CustomFieldInput[] | undefined): Promise<KCustomFieldWrite[] | undefined> {
    if (!inputs?.length) return undefined;
    const defs = await this.rawFields(ctx, entity);
    return inputs.map((input, i) => {
      const where = `custom_fields[${i}]`;
      const def =
        input.field_id !== undefined
          ? defs.find((d) => d.id === Number(input.field_id))
          : input.field_code
            ? defs.find((d) => d.code?.toLowerCase() === input.field_code!.toLowerCase())
            : input.field_name
              ? defs.find((d) => d.name.toLowerCase() === input.field_name!.trim().toLowerCase())
              : undefined;
      if (!input.field_id && !input.field_code && !input.field_name) throw validationError(`${where}: give field_id, field_code or field_name.`);
      if (!def) {
        const names = defs.slice(0, 30).map((d) => `${d.name} (${d.id})`).join(', ');
        throw validationError(`${where}: no ${entity} custom field ${JSON.stringify(input.field_id ?? input.field_code ?? input.field_name)}. Known fields: ${names}. Call get_custom_fields for the full list.`);
      }
      const values = Array.isArray(input.value) ? input.value : [input.value];
      if (def.enums?.length) {
        return {
          field_id: def.id,
          values: values.map((v) => {
            const opt = def.enums!.find((e) => e.id === Number(v) || e.value.toLowerCase() === String(v).trim().toLowerCase());
            if (!opt) throw validationError(`${where}: "${String(v)}" is not an option of "${def.name}". Options: ${def.enums!.map((e) => e.value).join(', ')}.`);
            return { enum_id: opt.id };
          }),
        };
      }
      if (def.type === 'numeric' || def.type === 'price' || def.type === 'monetary') {
        return {
          field_id: def.id,
          values: values.map((v) => {
            const num = Number(v);
            if (!Number.isFinite(num)) throw validationError(`${where}: "${def.name}" takes a number, got ${JSON.stringify(v)}.`);
            return { value: num };
          }),
        };
      }
      if (def.type === 'date' || def.type === 'date_time' || def.type === 'birthday') {
        return { field_id: def.id, values: values.map((v) => ({ value: toUnix(String(v), where) })) };
      }
      if (def.type === 'checkbox') return { field_id: def.id, values: values.map((v) => ({ value: v === true || v === 'true' || v === 1 })) };
      return { field_id: def.id, values: values.map((v) => ({ value: String(v) })) };
    });
  }

  private async checkStage(ctx: CallContext, pipelineId: Id | undefined, statusId: Id | undefined): Promise<{ pipeline_id?: number; status_id?: number }> {
    if (pipelineId === undefined && statusId === undefined) return {};
    const pipelines = await this.rawPipelines(ctx);
    const pid = pipelineId !== undefined ? toId(pipelineId, 'pipeline_id') : undefined;
    const sid = statusId !== undefined ? toId(statusId, 'status_id') : undefined;
    if (pid !== undefined) {
      const p = pipelines.find((x) => x.id === pid);
      if (!p) throw validationError(`pipeline_id: no pipeline ${pid}. Pipelines: ${pipelines.map((x) => `${x.name} (${x.id})`).join(', ')}.`);
      if (sid !== undefined && !p._embedded?.statuses?.some((s) => s.id === sid)) {
        throw validationError(`status_id: stage ${sid} is not in pipeline "${p.name}". Its stages: ${(p._embedded?.statuses ?? []).map((s) => `${s.name} (${s.id})`).join(', ')}.`);
      }
      return { pipeline_id: pid, ...(sid !== undefined ? { status_id: sid } : {}) };
    }
    if (sid === WON || sid === LOST) return { status_id: sid }; // the caller adds the pipeline (ids are shared, §7)
    const owner = pipelines.find((p) => p._embedded?.statuses?.some((s) => s.id === sid));
    if (!owner) throw validationError(`status_id: unknown stage ${sid}. Call get_pipelines for valid stage ids.`);
    return { pipeline_id: owner.id, status_id: sid };
  }

  private async checkUser(ctx: CallContext, id: Id | undefined): Promise<number | undefined> {
    if (id === undefined) return undefined;
    const n = toId(id, 'responsible_user_id');
    const users = await this.rawUsers(ctx).catch(() => [] as KUser[]);
    if (users.length && !users.some((u) => u.id === n)) throw validationError(`responsible_user_id: no user ${n}. Call list_users for valid ids.`);
    return n;
  }

  async createLead(ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult> {
    if (input.entity === 'deal') throw validationError('Kommo has no separate deals: omit `entity`.');
    const contact = input.contact;
    // Validate everything before any write, so bad input never leaves a partial record.
    const stage = await this.checkStage(ctx, input.pipeline_id, input.status_id);
    if (stage.status_id !== undefined && stage.pipeline_id === undefined) {
      stage.pipeline_id = (await this.rawPipelines(ctx)).find((p) => p.is_main)?.id;
    }
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const fields = await this.resolveFields(ctx, 'leads', input.custom_fields);
    const country = await this.defaultCountry(ctx);
    const phone = contact?.phone ? normalizePhone(contact.phone, country) : undefined;
    if (contact?.phone && !phone) throw validationError(`contact.phone: "${contact.phone}" is not a phone number (include the country code).`);
    if (contact?.email && !looksLikeEmail(contact.email)) throw validationError(`contact.email: "${contact.email}" is not an email address.`);

    let existingContact: KContact | undefined;
    let linkNote: string | undefined;
    if (contact?.email || contact?.phone) {
      const found = await this.searchLeadByContact(ctx, { email: contact.email, phone: contact.phone });
      const d = decideLeadDuplicate(found, { ifOpenLeadExists: input.if_open_lead_exists, matchedBy: contact.email ? 'email' : 'phone' });
      if (d.kind === 'return') return { created: false, lead: d.lead, contact_id: d.contactId, company_id: d.lead.company?.id ?? null, reason: d.reason };
      // The contact exists (without an open lead): link it rather than create a second contact.
      if (d.contactId !== undefined) existingContact = { id: Number(d.contactId) };
      linkNote = d.note;
    }
    let existingCompany: KContact | undefined;
    if (input.company?.name) {
      const q = new URLSearchParams({ query: input.company.name.trim(), limit: '50' });
      existingCompany = (await this.page<KContact>(ctx, '/api/v4/companies', 'companies', q)).items.find(
        (c) => (c.name ?? '').trim().toLowerCase() === input.company!.name.trim().toLowerCase(),
      );
    }

    const person = splitName(contact);
    const contactName = person.full || contact?.email || contact?.phone;
    // The description promises the contact's name as the default title.
    const name = input.name?.trim() || contactName || undefined;
    if (!name) throw validationError('name: give the lead a name (or a contact to name it after).');
    const contactBody = existingContact
      ? { id: existingContact.id }
      : contact
        ? {
            ...(person.first ? { first_name: person.first } : {}),
            ...(person.last ? { last_name: person.last } : {}),
            name: contactName,
            custom_fields_values: [
              ...(phone ? [multiField('PHONE', [{ value: phone.e164, enum_code: 'WORK' }])] : []),
              ...(contact.email ? [multiField('EMAIL', [{ value: contact.email.trim(), enum_code: 'WORK' }])] : []),
            ],
          }
        : undefined;
    const lead = {
      name,
      ...(input.price !== undefined ? { price: input.price } : {}),
      ...stage,
      ...(responsible ? { responsible_user_id: responsible } : {}),
      ...(fields ? { custom_fields_values: fields } : {}),
      _embedded: {
        ...(input.tags?.length ? { tags: input.tags.map((t) => ({ name: t })) } : {}),
        ...(contactBody ? { contacts: [contactBody] } : {}),
        ...(input.company?.name ? { companies: [existingCompany ? { id: existingCompany.id } : { name: input.company.name.trim() }] } : {}),
      },
      request_id: `crm-mcp-${randomUUID()}`,
    };
    const path = '/api/v4/leads/complex';
    if (ctx.dryRun) {
      return { created: false, dry_run: true, lead: null, contact_id: existingContact?.id ?? null, company_id: existingCompany?.id ?? null, requests: [this.plan('POST', path, [lead])] };
    }
    const since = Math.floor(Date.now() / 1000) - 5;
    type Complex = Array<{ id: number; contact_id: number | null; company_id: number | null; merged?: boolean; request_id?: string[] | string }>;
    let res: Complex | undefined;
    try {
      res = await this.call<Complex>(ctx, 'POST', path, { body: [lead], op: 'create' });
    } catch (e) {
      if (!(e instanceof CrmError && e.ambiguous)) throw e;
      // The create may or may not have happened: look before creating again, so a retry never duplicates.
      const landed = await this.findJustCreated(ctx, name, contact, since);
      if (landed) return { created: true, lead: landed, contact_id: landed.contact_ids[0] ?? null, company_id: landed.company?.id ?? null, ...(linkNote ? { reason: linkNote } : {}) };
      res = await this.call<Complex>(ctx, 'POST', path, { body: [lead], op: 'create' });
    }
    const first = Array.isArray(res) ? res[0] : undefined;
    if (!first?.id) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the lead but returned no id; search for it before retrying.' });
    const { lead: created } = await this.getLead(ctx, first.id);
    if (first.merged === true) {
      // §5.5: with the account's duplicate control on, Kommo merges the lead into an existing one and answers
      // with that lead's ids and `merged: true`: nothing new was created.
      return {
        created: false,
        lead: created,
        contact_id: first.contact_id ?? null,
        company_id: first.company_id ?? null,
        reason: `Merged by Kommo duplicate control into existing lead ${first.id}: the account found this contact already there, so no new lead was created.`,
      };
    }
    return { created: true, lead: created, contact_id: first.contact_id ?? null, company_id: first.company_id ?? null, ...(linkNote ? { reason: linkNote } : {}) };
  }

  /** After an ambiguous create: the lead we may have created, found by contact or by name and time. */
  private async findJustCreated(ctx: CallContext, name: string, contact: CreateLeadInput['contact'], since: number): Promise<Lead | undefined> {
    const recent = (l: Lead) => !!l.created_at && Date.parse(l.created_at) / 1000 >= since && l.name === name;
    if (contact?.email || contact?.phone) {
      const found = await this.searchLeadByContact(ctx, { email: contact.email, phone: contact.phone });
      return found.leads.find(recent);
    }
    const q = new URLSearchParams({ query: name, limit: '50', with: 'contacts', 'order[created_at]': 'desc' });
    const l = await this.lookups(ctx);
    return (await this.page<KLead>(ctx, '/api/v4/leads', 'leads', q)).items.map((x) => mapLead(x, l)).find(recent);
  }

  async createContact(ctx: CallContext, input: CreateContactInput): Promise<CreateContactResult> {
    const country = await this.defaultCountry(ctx);
    const phone = input.phone ? normalizePhone(input.phone, country) : undefined;
    if (input.phone && !phone) throw validationError(`phone: "${input.phone}" is not a phone number (include the country code).`);
    if (input.email && !looksLikeEmail(input.email)) throw validationError(`email: "${input.email}" is not an email address.`);
    const person = splitName(input);
    const name = person.full;
    if (!name) throw validationError('Give first_name/last_name or name.');
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const fields = await this.resolveFields(ctx, 'contacts', input.custom_fields);
    if (input.email || input.phone) {
      const found = await this.searchContacts(ctx, { email: input.email, phone: input.phone });
      if (found.contacts[0]) {
        const l = await this.lookups(ctx);
        return { created: false, contact: mapContact(found.contacts[0], l), reason: 'A contact with this email/phone already exists: returning it instead of creating a duplicate.' };
      }
    }
    let companyId: number | undefined;
    if (input.company_name) {
      const q = new URLSearchParams({ query: input.company_name.trim(), limit: '50' });
      companyId = (await this.page<KContact>(ctx, '/api/v4/companies', 'companies', q)).items.find(
        (c) => (c.name ?? '').trim().toLowerCase() === input.company_name!.trim().toLowerCase(),
      )?.id;
      if (companyId === undefined) throw validationError(`company_name: no company named "${input.company_name}". Create the lead with a company, or use an existing company's exact name.`);
    }
    const body = [
      {
        name,
        ...(person.first ? { first_name: person.first } : {}),
        ...(person.last ? { last_name: person.last } : {}),
        ...(responsible ? { responsible_user_id: responsible } : {}),
        custom_fields_values: [
          ...(phone ? [multiField('PHONE', [{ value: phone.e164 }])] : []),
          ...(input.email ? [multiField('EMAIL', [{ value: input.email.trim() }])] : []),
          ...(fields ?? []),
        ],
        _embedded: {
          ...(input.tags?.length ? { tags: input.tags.map((t) => ({ name: t })) } : {}),
          ...(companyId ? { companies: [{ id: companyId }] } : {}),
        },
        request_id: `crm-mcp-${randomUUID()}`,
      },
    ];
    if (ctx.dryRun) return { created: false, dry_run: true, contact: null, requests: [this.plan('POST', '/api/v4/contacts', body)] };
    let res: Hal<'contacts', { id: number }> | undefined;
    try {
      res = await this.call<Hal<'contacts', { id: number }>>(ctx, 'POST', '/api/v4/contacts', { body, op: 'create' });
    } catch (e) {
      // The response was lost: look before creating again (by email/phone; without them we cannot tell).
      if (!(e instanceof CrmError && e.ambiguous) || !(input.email || input.phone)) throw e;
      const landed = (await this.searchContacts(ctx, { email: input.email, phone: input.phone })).contacts[0];
      if (landed) return { created: true, contact: mapContact(landed, await this.lookups(ctx)) };
      res = await this.call<Hal<'contacts', { id: number }>>(ctx, 'POST', '/api/v4/contacts', { body, op: 'create' });
    }
    const id = res?._embedded?.contacts?.[0]?.id;
    if (!id) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the contact but returned no id; search for it before retrying.' });
    return { created: true, contact: await this.getContact(ctx, id) };
  }

  async updateLead(ctx: CallContext, input: UpdateLeadInput): Promise<WriteResult<Lead>> {
    const id = toId(input.id, 'id');
    const current = await this.rawLead(ctx, id);
    let stage: { pipeline_id?: number; status_id?: number } = {};
    if (input.status_id !== undefined || input.pipeline_id !== undefined) {
      // Moving within the current pipeline needs its id too when the stage is won/lost (shared ids, §7).
      stage = await this.checkStage(ctx, input.pipeline_id ?? (input.status_id !== undefined ? current.pipeline_id : undefined), input.status_id);
    }
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const fields = await this.resolveFields(ctx, 'leads', input.custom_fields);
    const body: Record<string, unknown> = {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.price !== undefined ? { price: input.price } : {}),
      ...stage,
      ...(responsible ? { responsible_user_id: responsible } : {}),
      ...(fields ? { custom_fields_values: fields } : {}),
      // Incremental tag changes (never `_embedded.tags`, which replaces the whole set, §5.4).
      ...(input.tags_to_add?.length ? { tags_to_add: input.tags_to_add.map((name) => ({ name })) } : {}),
      ...(input.tags_to_delete?.length ? { tags_to_delete: input.tags_to_delete.map((name) => ({ name })) } : {}),
    };
    if (Object.keys(body).length === 0) throw validationError('Nothing to update: give at least one field to change.');
    const path = `/api/v4/leads/${id}`;
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('PATCH', path, body)] };
    await this.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
    return { item: (await this.getLead(ctx, id)).lead };
  }

  async updateContact(ctx: CallContext, input: UpdateContactInput): Promise<WriteResult<Contact>> {
    const id = toId(input.id, 'id');
    const current = await this.rawEntity(ctx, 'contacts', id, 'leads');
    const country = await this.defaultCountry(ctx);
    const responsible = await this.checkUser(ctx, input.responsible_user_id);
    const fields = (await this.resolveFields(ctx, 'contacts', input.custom_fields)) ?? [];
    // Kommo replaces a field's values on PATCH: send the existing values plus/minus the requested changes,
    // so an update never silently drops phones or emails.
    const multi = (code: 'PHONE' | 'EMAIL', add: string[] | undefined, remove: string[] | undefined): KCustomFieldWrite | undefined => {
      if (!add?.length && !remove?.length) return undefined;
      const same = code === 'PHONE' ? (a: string, b: string) => samePhone(a, b, country) : sameEmail;
      const existing = (current.custom_fields_values ?? []).find((f) => f.field_code === code)?.values ?? [];
      for (const r of remove ?? []) {
        if (!existing.some((v) => same(String(v.value ?? ''), r))) throw validationError(`${code === 'PHONE' ? 'phones' : 'emails'}_to_remove: ${r} is not on contact ${id}.`);
      }
      const kept = existing.filter((v) => !(remove ?? []).some((r) => same(String(v.value ?? ''), r)));
      const added = (add ?? []).map((a) => {
        if (code === 'PHONE') {
          const n = normalizePhone(a, country);
          if (!n) throw validationError(`phones_to_add: "${a}" is not a phone number.`);
          return n.e164;
        }
        if (!looksLikeEmail(a)) throw validationError(`emails_to_add: "${a}" is not an email address.`);
        return a.trim();
      });
      const values = [
        ...kept.map((v) => ({ value: String(v.value ?? ''), enum_code: v.enum_code ?? v.enum ?? 'WORK' })),
        ...added.filter((a) => !kept.some((v) => same(String(v.value ?? ''), a))).map((value) => ({ value, enum_code: 'WORK' })),
      ];
      return multiField(code, values);
    };
    const phones = multi('PHONE', input.phones_to_add, input.phones_to_remove);
    const emails = multi('EMAIL', input.emails_to_add, input.emails_to_remove);
    const cfv = [...(phones ? [phones] : []), ...(emails ? [emails] : []), ...fields];
    const body: Record<string, unknown> = {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.first_name !== undefined ? { first_name: input.first_name } : {}),
      ...(input.last_name !== undefined ? { last_name: input.last_name } : {}),
      ...(responsible ? { responsible_user_id: responsible } : {}),
      ...(cfv.length ? { custom_fields_values: cfv } : {}),
      ...(input.tags_to_add?.length ? { tags_to_add: input.tags_to_add.map((name) => ({ name })) } : {}),
      ...(input.tags_to_delete?.length ? { tags_to_delete: input.tags_to_delete.map((name) => ({ name })) } : {}),
    };
    if (Object.keys(body).length === 0) throw validationError('Nothing to update: give at least one field to change.');
    const path = `/api/v4/contacts/${id}`;
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('PATCH', path, body)] };
    await this.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
    return { item: await this.getContact(ctx, id) };
  }

  async addNote(ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>> {
    if (input.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
    const entity = `${input.entity === 'company' ? 'companie' : input.entity}s` as EntityPath;
    const id = toId(input.entity_id, 'entity_id');
    const text = input.text.trim();
    if (!text) throw validationError('text: the note is empty.');
    // The note must attach to a record that exists.
    if (entity === 'leads') await this.rawLead(ctx, id);
    else await this.rawEntity(ctx, entity, id, entity === 'contacts' ? 'leads' : 'contacts');
    const body = [{ entity_id: id, note_type: 'common', params: { text }, request_id: `crm-mcp-${randomUUID()}` }];
    const path = `/api/v4/${entity}/notes`;
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('POST', path, body)] };
    const res = await this.call<Hal<'notes', { id: number }>>(ctx, 'POST', path, { body, op: 'create' });
    const noteId = res?._embedded?.notes?.[0]?.id;
    if (!noteId) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the note but returned no id.' });
    return { item: { id: noteId, entity: input.entity, entity_id: id, text, created_at: new Date().toISOString() } };
  }

  async createTask(ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>> {
    if (input.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
    const text = input.text.trim();
    if (!text) throw validationError('text: the task text is empty.');
    const due = Math.floor(parseDeadline(input.complete_till, 'complete_till') / 1000);
    const acc = await this.rawAccount(ctx);
    // Kommo requires a responsible user (§9): default to the token's user.
    const responsible = (await this.checkUser(ctx, input.responsible_user_id)) ?? (typeof acc.current_user_id === 'number' ? acc.current_user_id : undefined);
    if ((input.entity === undefined) !== (input.entity_id === undefined)) throw validationError('Give both entity and entity_id, or neither.');
    let target: { entity_type: string; entity_id: number } | undefined;
    if (input.entity && input.entity_id !== undefined) {
      const entity = `${input.entity === 'company' ? 'companie' : input.entity}s` as EntityPath;
      const id = toId(input.entity_id, 'entity_id');
      if (entity === 'leads') await this.rawLead(ctx, id);
      else await this.rawEntity(ctx, entity, id, entity === 'contacts' ? 'leads' : 'contacts');
      target = { entity_type: entity, entity_id: id };
    }
    const body = [
      {
        text,
        complete_till: due,
        task_type_id: input.task_type_id ?? 1,
        ...(responsible ? { responsible_user_id: responsible } : {}),
        ...target,
        request_id: `crm-mcp-${randomUUID()}`,
      },
    ];
    if (ctx.dryRun) return { dry_run: true, item: null, requests: [this.plan('POST', '/api/v4/tasks', body)] };
    const res = await this.call<Hal<'tasks', { id: number }>>(ctx, 'POST', '/api/v4/tasks', { body, op: 'create' });
    const id = res?._embedded?.tasks?.[0]?.id;
    if (!id) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the task but returned no id.' });
    const l = await this.lookups(ctx);
    return {
      item: {
        id,
        text,
        complete_till: iso(due),
        entity: input.entity ?? null,
        entity_id: target?.entity_id ?? null,
        responsible: responsible ? { id: responsible, name: l.users.get(responsible)?.name ?? null } : null,
        is_completed: false,
      },
    };
  }

  /** Raw request for kommo_request: the path was validated by the tool and is checked again by the core. */
  async raw(ctx: CallContext, method: HttpMethod, path: string, query: Record<string, QueryValue> | undefined, body: unknown): Promise<{ status: number; data: unknown }> {
    if (ctx.dryRun) return { status: 0, data: { dry_run: true, requests: [this.plan(method, path, body)] } };
    const res = await this.http.request({ method, path, query, body, op: method === 'GET' ? 'read' : method === 'POST' ? 'create' : 'idempotent', grant: ctx.grant, signal: ctx.signal });
    return { status: res.status, data: res.data ?? null };
  }
}

function byOpenThenRecent(a: Lead, b: Lead): number {
  const open = (l: Lead) => (l.stage?.type === 'won' || l.stage?.type === 'lost' ? 1 : 0);
  return open(a) - open(b) || (b.updated_at ?? '').localeCompare(a.updated_at ?? '');
}

export function toId(v: Id, field: string): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw validationError(`${field}: "${String(v)}" is not a valid id (a positive whole number).`);
  return n;
}

/** Accepts ISO dates/date-times or Unix seconds; returns Unix seconds. */
export function toUnix(v: string | number, field: string): number {
  return Math.floor(parseDateInput(v, field) / 1000);
}
