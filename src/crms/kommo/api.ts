/**
 * Typed calls to Kommo through the HTTP core: one request, one HAL page, every page of a metadata list, a
 * page with an honest `has_more`, records by id. Every answer read here is parsed with the lenient schemas
 * (schemas.ts) before anything maps it.
 */
import { z } from 'zod';
import type { HttpCore, HttpMethod, QueryValue } from '../../http/client.js';
import { CrmError } from '../../domain/errors.js';
import type { OperationKind } from '../../http/retry.js';
import { TtlCache } from '../cache.js';
import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { CallContext, PlannedRequest } from '../types.js';
import { mergePages } from './paging.js';
import { KHalPage, parseKommo } from './schemas.js';

export const PAGE_MAX = 250;
/** A whole-read list (fields, users, tags) that goes past this many pages is not metadata any more. */
const MAX_WHOLE_PAGES = 100;

export type EntityPath = 'leads' | 'contacts' | 'companies';
type Query = Record<string, QueryValue> | URLSearchParams;

export interface HalPage<T> {
  items: T[];
  next: boolean;
  pageCount?: number;
}

export interface ListPage<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
}

export class KommoApi {
  /** Pages fetched ahead to answer `has_more` honestly; reused by the next call. */
  private readonly prefetched = new TtlCache<{ items: unknown[]; next: boolean }>(60_000, 50);

  constructor(
    readonly http: HttpCore,
    readonly baseUrl: string,
    private readonly connection: string,
  ) {}

  async call<T>(ctx: CallContext, method: HttpMethod, path: string, opts: { query?: Query; body?: unknown; op?: OperationKind } = {}): Promise<T | undefined> {
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

  get(ctx: CallContext, path: string, query?: Query): Promise<unknown> {
    return this.call<unknown>(ctx, 'GET', path, { query });
  }

  /** Reads one page of a HAL list; 204 (no data) is an empty page. */
  async page<S extends z.ZodType>(ctx: CallContext, path: string, key: string, query: URLSearchParams, schema: S): Promise<HalPage<z.infer<S>>> {
    const data = await this.get(ctx, path, query);
    if (data === undefined || data === null) return { items: [], next: false };
    const env = parseKommo(KHalPage, data, `GET ${path}`);
    const items = parseKommo(z.array(schema), env._embedded?.[key] ?? [], `GET ${path} (_embedded.${key})`);
    return { items, next: !!env._links?.next, ...(typeof env._page_count === 'number' ? { pageCount: env._page_count } : {}) };
  }

  /**
   * Every page of a list read whole (metadata). A short page is not the end: Kommo caps some lists below the
   * `limit` asked for (custom fields: "до 50 полей за один запрос" although `limit` goes to 250, amoCRM
   * docs crm_platform/custom-fields), so only `_links.next` (or `_page_count`, or an empty 204 page) ends it
   * (fact sheet §4: "follow `_links.next.href`; stop when `next` is absent or you get 204").
   */
  async all<S extends z.ZodType>(ctx: CallContext, path: string, key: string, schema: S, base: Record<string, string> = {}): Promise<Array<z.infer<S>>> {
    const out: Array<z.infer<S>> = [];
    for (let page = 1; page <= MAX_WHOLE_PAGES; page++) {
      const q = new URLSearchParams({ ...base, page: String(page), limit: String(PAGE_MAX) });
      const { items, next, pageCount } = await this.page(ctx, path, key, q, schema);
      out.push(...items);
      if (!next || !items.length || (pageCount !== undefined && page >= pageCount)) return out;
    }
    throw new CrmError({ code: 'upstream', message: `${path} has more than ${MAX_WHOLE_PAGES} pages; refusing to read further.` });
  }

  /**
   * A page for a list tool with an honest `has_more`: when a page is full, the next one is fetched too and
   * kept for the following call, so the agent never gets `has_more: true` followed by an empty page.
   */
  async listPage<S extends z.ZodType>(
    ctx: CallContext,
    path: string,
    key: string,
    schema: S,
    params: Array<[string, string]>,
    limit: number,
    cursor?: string,
  ): Promise<ListPage<z.infer<S>>> {
    type T = z.infer<S>;
    let page = 1;
    if (cursor) {
      const c = decodeCursor(
        cursor,
        (v): v is { p: number; l: number; q: Array<[string, string]>; path: string } =>
          typeof v.p === 'number' && typeof v.l === 'number' && Array.isArray(v.q) && v.path === path,
      );
      page = c.p;
      limit = c.l;
      params = c.q;
    }
    const keyOf = (p: number) => JSON.stringify([this.connection, path, params, limit, p]);
    // A prefetched page was read with its `next`; a page without `next` is the last (§4), so no look-ahead.
    const fetchPage = async (p: number): Promise<{ items: T[]; next: boolean }> => {
      const cached = this.prefetched.take(keyOf(p));
      if (cached) return cached as { items: T[]; next: boolean };
      const q = new URLSearchParams(params);
      q.set('page', String(p));
      q.set('limit', String(limit));
      const { items: got, next } = await this.page(ctx, path, key, q, schema);
      return { items: got, next };
    };
    const { items, next: linked } = await fetchPage(page);
    let hasMore = false;
    if (items.length >= limit && linked) {
      const next = await fetchPage(page + 1);
      hasMore = next.items.length > 0;
      if (hasMore) this.prefetched.put(keyOf(page + 1), next);
    }
    return { items, has_more: hasMore, cursor: hasMore ? encodeCursor({ path, p: page + 1, l: limit, q: params }) : null };
  }

  /** A page over several status pairs, one list each (see `mergePages`). */
  mergedPage<S extends z.ZodType<{ id: number; created_at?: number | null; updated_at?: number | null }>>(
    ctx: CallContext,
    path: string,
    key: string,
    schema: S,
    o: { params: Array<[string, string]>; pairs: Array<[number, number]>; limit: number; cursor?: string },
  ): Promise<ListPage<z.infer<S>>> {
    return mergePages<z.infer<S>>((q) => this.page(ctx, path, key, q, schema), { path, ...o, pageSize: PAGE_MAX });
  }

  /** Records by id, one request (≤ 250 ids). */
  async byIds<S extends z.ZodType<{ id: number }>>(
    ctx: CallContext,
    entity: EntityPath,
    ids: number[],
    schema: S,
    withParam?: string,
  ): Promise<Array<z.infer<S>>> {
    const q = new URLSearchParams();
    for (const id of ids.slice(0, PAGE_MAX)) q.append('filter[id][]', String(id));
    q.set('limit', String(PAGE_MAX));
    if (withParam) q.set('with', withParam);
    // An account with API filtering off (§5.1 `is_api_filter_enabled`) answers unfiltered rows: keep the asked.
    const want = new Set(ids);
    return (await this.page(ctx, `/api/v4/${entity}`, entity, q, schema)).items.filter((x) => want.has(x.id));
  }

  plan(method: HttpMethod, path: string, body: unknown): PlannedRequest {
    return { method, url: `${this.baseUrl}${path}`, body };
  }
}
