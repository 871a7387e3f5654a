/**
 * List endpoints (fact sheet §4, §5.1): `page`, `limit` (default 50, max 250), `with`, `order[...]`,
 * `query`, and PHP-bracket `filter[...]` in all three array forms (`filter[id]=1`, `filter[id][]=1`,
 * `filter[id][0]=1`) plus `[from]/[to]` ranges. Unknown parameters and shapes are a 400, never ignored.
 */
import type { EmuResponse } from '../harness.js';
import { type Ctx, isObject, type KommoBehaviour } from './context.js';
import { badParam, hal, noContent } from './responses.js';

export type Predicate<T> = (item: T) => boolean;
/** Turns a raw filter value into a predicate, or throws a 400 naming `path`. */
export type FilterDef<T> = (raw: unknown, path: string) => Predicate<T>;

export interface ListSpec<T> {
  /** Key under `_embedded`. */
  key: string;
  with?: readonly string[];
  filters?: Record<string, FilterDef<T>>;
  /** The filter API an account can have switched off (§5.1, `KommoBehaviour.filters`): leads, contacts, companies. */
  filtersGated?: boolean;
  order?: Record<string, (item: T) => number>;
  /** Full-text `query`; when absent the parameter is refused. */
  query?: (item: T, q: string) => boolean;
  maxLimit?: number;
  /** §4: pipelines, custom fields, users, webhooks… carry `_total_items` (users also `_page_count`). */
  totalItems?: boolean;
  pageCount?: boolean;
  /**
   * One page with everything and no `_page` (pipelines, statuses, webhooks: fixture GET_leads_pipelines.json);
   * `page`/`limit` are still validated, then ignored, as SDKs send them to every list.
   */
  unpaged?: boolean;
}

const TOP = new Set(['page', 'limit', 'with', 'order', 'filter', 'query']);

export function withSet(ctx: Ctx, allowed: readonly string[] = []): Set<string> {
  const raw = ctx.params.with;
  if (raw === undefined) return new Set();
  if (typeof raw !== 'string') throw badParam('with', 'type', 'string');
  const out = new Set<string>();
  for (const w of raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    // §4: `with` values must be known for the entity.
    if (!allowed.includes(w)) throw badParam('with');
    out.add(w);
  }
  return out;
}

/** Refuses query parameters outside `allowed` (for single-entity GETs). */
export function onlyParams(ctx: Ctx, allowed: readonly string[]): void {
  for (const k of Object.keys(ctx.params)) if (!allowed.includes(k)) throw badParam(k, 'extra');
}

function intOf(v: unknown, path: string): number {
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim());
  throw badParam(path, 'type', 'int');
}

function list(raw: unknown, path: string): unknown[] {
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw)) return raw;
  throw badParam(path, 'type', 'array');
}

export function intFilter<T>(get: (x: T) => number | null | number[]): FilterDef<T> {
  return (raw, path) => {
    const want = new Set(list(raw, path).map((v, i) => intOf(v, Array.isArray(raw) ? `${path}.${i}` : path)));
    return (x) => {
      const v = get(x);
      return Array.isArray(v) ? v.some((n) => want.has(n)) : v !== null && want.has(v);
    };
  };
}

export function stringFilter<T>(get: (x: T) => string | null, opts: { ci?: boolean } = {}): FilterDef<T> {
  return (raw, path) => {
    const norm = (s: string) => (opts.ci ? s.trim().toLowerCase() : s);
    const want = new Set(
      list(raw, path).map((v) => {
        if (typeof v !== 'string') throw badParam(path, 'type', 'string');
        return norm(v);
      }),
    );
    return (x) => {
      const v = get(x);
      return v !== null && want.has(norm(v));
    };
  };
}

/** A single value, a list of values, or `{from, to}` (either end optional). */
export function rangeFilter<T>(get: (x: T) => number | null): FilterDef<T> {
  return (raw, path) => {
    if (isObject(raw)) {
      const keys = Object.keys(raw);
      if (!keys.length || keys.some((k) => k !== 'from' && k !== 'to')) throw badParam(path);
      const from = raw.from !== undefined ? intOf(raw.from, `${path}.from`) : undefined;
      const to = raw.to !== undefined ? intOf(raw.to, `${path}.to`) : undefined;
      return (x) => {
        const v = get(x);
        return v !== null && (from === undefined || v >= from) && (to === undefined || v <= to);
      };
    }
    return intFilter<T>(get)(raw, path);
  };
}

export function boolFilter<T>(get: (x: T) => boolean): FilterDef<T> {
  return (raw, path) => {
    const want = new Set(
      list(raw, path).map((v) => {
        if (v === '1' || v === 'true') return true;
        if (v === '0' || v === 'false') return false;
        throw badParam(path, 'type', 'int');
      }),
    );
    return (x) => want.has(get(x));
  };
}

/**
 * §5.1: `filter[statuses][i][pipeline_id]` + `[status_id]` pairs; several pairs are OR-ed ('pairs'), only the
 * first counts ('first_pair'), or more than one is refused ('one_pair'): see `KommoBehaviour.statusFilter`. A
 * pair without its pipeline_id is a 400: stage ids 142/143 exist in every pipeline (§7), so a stage alone does
 * not name one, and the docs define the filter only as pairs.
 */
export function statusesFilter<T extends { pipeline_id: number; status_id: number }>(mode: KommoBehaviour['statusFilter'] = 'pairs'): FilterDef<T> {
  return (raw, path) => {
    const pairs = (Array.isArray(raw) ? raw : isObject(raw) ? [raw] : undefined)?.map((p, i) => {
      if (!isObject(p) || Object.keys(p).some((k) => k !== 'pipeline_id' && k !== 'status_id') || p.pipeline_id === undefined || p.status_id === undefined) {
        throw badParam(`${path}.${i}`);
      }
      return { pipeline_id: intOf(p.pipeline_id, `${path}.${i}.pipeline_id`), status_id: intOf(p.status_id, `${path}.${i}.status_id`) };
    });
    if (!pairs?.length) throw badParam(path, 'type', 'array');
    if (pairs.length > 1 && mode === 'one_pair') throw badParam(`${path}.1`);
    const used = mode === 'first_pair' ? pairs.slice(0, 1) : pairs;
    return (x) => used.some((p) => p.pipeline_id === x.pipeline_id && p.status_id === x.status_id);
  };
}

/** Filters, searches, orders and pages `items`, answering 204 when the page is empty (§4). */
export function runList<T>(
  ctx: Ctx,
  path: string,
  items: Iterable<T>,
  spec: ListSpec<T>,
  render: (item: T) => unknown,
  extra: readonly string[] = [],
): EmuResponse {
  const p = ctx.params;
  for (const k of Object.keys(p)) if (!TOP.has(k) && !extra.includes(k)) throw badParam(k, 'extra');
  if (p.with !== undefined && !spec.with) throw badParam('with', 'extra');
  const preds: Array<Predicate<T>> = [];
  if (p.filter !== undefined) {
    if (!isObject(p.filter) || !spec.filters) throw badParam('filter', spec.filters ? 'type' : 'extra', 'array');
    for (const [k, raw] of Object.entries(p.filter)) {
      const def = spec.filters[k];
      if (!def) throw badParam(`filter.${k}`, 'extra');
      const pred = def(raw, `filter.${k}`);
      // Validated either way; an account with API filtering off returns the rows unfiltered.
      if (!(spec.filtersGated && ctx.behaviour.filters === 'ignored')) preds.push(pred);
    }
  }
  if (p.query !== undefined) {
    if (!spec.query) throw badParam('query', 'extra');
    if (typeof p.query !== 'string') throw badParam('query', 'type', 'string');
    const q = p.query.trim();
    const search = spec.query;
    if (q) preds.push((x) => search(x, q));
  }
  let out = [...items].filter((x) => preds.every((f) => f(x)));
  if (p.order !== undefined) {
    if (!isObject(p.order) || !spec.order) throw badParam('order', spec.order ? 'type' : 'extra', 'array');
    const keys: Array<[(x: T) => number, number]> = Object.entries(p.order).map(([k, dir]) => {
      const get = spec.order![k];
      if (!get) throw badParam(`order.${k}`);
      if (dir !== 'asc' && dir !== 'desc') throw badParam(`order.${k}`);
      return [get, dir === 'asc' ? 1 : -1];
    });
    out = out.sort((a, b) => {
      for (const [get, sign] of keys) {
        const d = get(a) - get(b);
        if (d) return d * sign;
      }
      return 0;
    });
  }

  const max = spec.maxLimit ?? 250;
  const page = p.page === undefined ? 1 : intOf(p.page, 'page');
  // §3/§4: limit defaults to 50 and is capped at 250 (the sheet documents the cap, not an error for more).
  const limit = p.limit === undefined ? 50 : Math.min(intOf(p.limit, 'limit'), max);
  if (page < 1) throw badParam('page');
  if (limit < 1) throw badParam('limit');
  const slice = spec.unpaged ? out : out.slice((page - 1) * limit, page * limit);
  if (!slice.length) return noContent();

  const links: Record<string, { href: string }> = spec.unpaged ? { self: { href: `${ctx.origin}${path}` } } : { self: pageHref(ctx, path, page, limit) };
  if (!spec.unpaged) {
    if (page * limit < out.length) links.next = pageHref(ctx, path, page + 1, limit);
    if (page > 1) {
      links.first = pageHref(ctx, path, 1, limit);
      links.prev = pageHref(ctx, path, page - 1, limit);
    }
  }
  const body: Record<string, unknown> = {};
  if (spec.totalItems) body._total_items = out.length;
  if (!spec.unpaged) body._page = page;
  if (spec.pageCount) body._page_count = Math.ceil(out.length / limit);
  body._links = links;
  body._embedded = { [spec.key]: slice.map(render) };
  return hal(body);
}

/** The request's own parameters with `limit`/`page` replaced, brackets left readable as in the fixtures. */
function pageHref(ctx: Ctx, path: string, page: number, limit: number): { href: string } {
  const parts: string[] = [];
  for (const [k, v] of ctx.req.url.searchParams) {
    if (k === 'page' || k === 'limit') continue;
    parts.push(`${enc(k)}=${enc(v)}`);
  }
  parts.push(`limit=${limit}`, `page=${page}`);
  return { href: `${ctx.origin}${path}?${parts.join('&')}` };
}

const enc = (s: string) => encodeURIComponent(s).replace(/%5B/g, '[').replace(/%5D/g, ']');
