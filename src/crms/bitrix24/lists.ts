/**
 * List paging on Bitrix24: the fast method (§4.1, §7: `order ID`, `filter <ID`, `start=-1`, no COUNT) with
 * pages chained inside one `batch`, read ahead while a cursor is being followed, or offset paging for "most
 * recently updated" (DATE_MODIFY changes under a scan, so no ID bound can page it).
 */
import { CrmError } from '../../domain/errors.js';
import { TtlCache } from '../cache.js';
import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { CallContext, ListSort, Page } from '../types.js';
import { bitrixError } from './adapter.js';
import type { BatchResult, BitrixApi } from './api.js';
import { phpQuery, type Row } from './map.js';
import { normalizeMethod } from './methods.js';
import { MAX_PAGES, pagesPerRequest, readAheadPages } from './readahead.js';
import { rowsOf } from './schemas.js';

const PAGE = 50;

export interface ListCursor {
  after?: number;
  off?: number;
  s?: ListSort;
  f?: Record<string, unknown>;
  fs?: Array<Record<string, unknown>>;
  l?: number;
  /** The listing's count as its first page found it (fast pages after it are not counted). */
  t?: number;
}

/** A page of rows, and the rows kept for the calls after it (their links can be read with the page's). */
export interface ListRows {
  rows: Row[];
  hasMore: boolean;
  ahead: Row[];
  /** The rows the filter matches, when this read was counted (`total`, §4.1); null for a fast (`start=-1`) read. */
  total: number | null;
}

export class BitrixLists {
  /** Rows fetched ahead for listings being scanned with a cursor (see fastList). */
  private readonly readAhead = new TtlCache<{ rows: Row[]; exhausted: boolean }>(60_000, 20);

  constructor(private readonly api: BitrixApi) {}

  /**
   * Fast paging (§7: `order ID`, `filter <ID`, `start=-1`, no COUNT): up to 50 pages ride in one `batch`,
   * each page's bound taken from the previous one with `$result[...]`. The first page of a listing fetches
   * only what it returns (plus one row to know `has_more`); once the caller follows a cursor it is scanning,
   * so the read goes ahead by a full batch (50 × 50 rows) and later pages are served from that, a minute at
   * most: a long scan then costs one request per 2,500 rows, the ceiling the portal's limit allows. Rows
   * read ahead are never read twice: a call they do not fill reads on from the last of them.
   * The first page of a listing is read with `start=0` rather than `-1`: the same rows (no ID bound yet, so no
   * offset to skip), and the answer counts the matches (`total`, §4.1), so the listing says how many there
   * are without a request of its own; the pages after it stay uncounted and the cursor carries the count.
   */
  private async fastList(
    ctx: CallContext,
    method: string,
    filter: Record<string, unknown>,
    select: string[],
    limit: number,
    afterId?: number,
    sort: ListSort = 'created_desc',
  ): Promise<ListRows> {
    // Creation order is ID order: DATE_CREATE is read-only (crm.lead.fields: isReadOnly, fixture), set by the
    // portal on insert, so `order ID` with the ID bound keeps the fast method for both directions.
    const asc = sort === 'created_asc';
    const bound = asc ? '>ID' : '<ID';
    const scan = `${method}|${JSON.stringify(filter)}|${select.join(',')}|${sort}`;
    let prefix: Row[] = [];
    if (afterId !== undefined) {
      const ahead = this.readAhead.take(`${scan}|${afterId}`);
      if (ahead && (ahead.rows.length > limit || ahead.exhausted)) return this.serve(scan, ahead.rows, ahead.exhausted, limit);
      if (ahead) prefix = ahead.rows;
    }
    const from = prefix.length ? Number(prefix.at(-1)!.ID) : afterId;
    const counted = afterId === undefined;
    const base = { order: { ID: asc ? 'ASC' : 'DESC' }, select, start: -1 };
    const needed = Math.ceil((limit + 1 - prefix.length) / PAGE);
    const norm = normalizeMethod(method) ?? method;
    const load = this.api.load.get(norm);
    // How far to read ahead comes from the portal's own time figures (readahead.ts), not a fixed 50 pages.
    const pages = afterId !== undefined ? readAheadPages(load, needed) : needed;
    if (pages === 1) {
      const f = from !== undefined ? { ...filter, [bound]: from } : filter;
      const r = await this.api.call<unknown>(ctx, method, { ...base, ...(counted ? { start: 0 } : {}), filter: f });
      const rows = rowsOf(r.result, method);
      return this.serve(scan, [...prefix, ...rows], rows.length < PAGE, limit, counted ? (r.total ?? null) : null);
    }
    const rows: Row[] = [];
    let exhausted = false;
    let after = from;
    let read = 0;
    // Pages per request within the 60 s request limit and the operating budget (readahead.ts).
    let per = pagesPerRequest(load);
    let failures = 0;
    let total: number | null = null;
    while (read < pages && !exhausted) {
      const n = Math.min(per, pages - read);
      const cmd: Record<string, string> = {};
      for (let i = 0; i < n; i++) {
        const prev = i === 0 ? after : `$result[p${i - 1}][${PAGE - 1}][ID]`;
        const f = prev !== undefined ? { ...filter, [bound]: prev } : filter;
        const first = counted && read === 0 && i === 0;
        cmd[`p${i}`] = `${method}?${phpQuery({ ...base, ...(first ? { start: 0 } : {}), filter: f })}`;
      }
      let b: BatchResult;
      try {
        // Not re-sent whole by the HTTP core: a batch cut off by the request time limit (504) would only be
        // cut off again; it is re-read here in smaller pieces instead.
        b = await this.api.batch(ctx, cmd, false, 'create');
      } catch (e) {
        if (!(e instanceof CrmError) || !e.retryable || ++failures > 3) throw e;
        if (n > 1) this.api.load.timedOut(norm, n);
        per = Math.max(1, Math.floor(n / 2));
        continue;
      }
      if (counted && read === 0) total = b.total.p0 ?? null;
      for (let i = 0; i < n; i++) {
        const err = b.errors[`p${i}`];
        if (err) throw bitrixError(err.error, err.error_description, 400);
        const list = rowsOf(b.result[`p${i}`], method);
        rows.push(...list);
        if (list.length < PAGE) {
          exhausted = true;
          break;
        }
      }
      read += n;
      after = rows.length ? Number(rows.at(-1)!.ID) : after;
      per = pagesPerRequest(this.api.load.get(norm));
    }
    return this.serve(scan, [...prefix, ...rows], exhausted, limit, total);
  }

  /**
   * Most recently updated first: DATE_MODIFY changes under a scan, so no ID bound can page it; classic `start`
   * paging (50 a page, §7.3 `order: {FIELD: "ASC"|"DESC"}`) with ID as the tie-break, one batch per call.
   */
  private async updatedList(
    ctx: CallContext,
    method: string,
    filter: Record<string, unknown>,
    select: string[],
    limit: number,
    offset: number,
  ): Promise<ListRows> {
    const first = Math.floor(offset / PAGE) * PAGE;
    const pages = Math.ceil((offset - first + limit + 1) / PAGE);
    const params = (start: number) => ({ order: { DATE_MODIFY: 'DESC', ID: 'DESC' }, filter, select, start });
    const rows: Row[] = [];
    // `start` paging counts the matches (`total`, §4.1) in every answer.
    let total: number | null = null;
    if (pages === 1) {
      const r = await this.api.call<unknown>(ctx, method, params(first));
      total = r.total ?? null;
      rows.push(...rowsOf(r.result, method));
    } else {
      // A batch carries 50 commands (§4.2): a page of more than 2,450 rows takes a second one.
      read: for (let p0 = 0; p0 < pages; p0 += MAX_PAGES) {
        const n = Math.min(MAX_PAGES, pages - p0);
        const cmd: Record<string, string> = {};
        for (let i = 0; i < n; i++) cmd[`p${i}`] = `${method}?${phpQuery(params(first + (p0 + i) * PAGE))}`;
        const b = await this.api.batch(ctx, cmd);
        total ??= b.total.p0 ?? null;
        for (let i = 0; i < n; i++) {
          const err = b.errors[`p${i}`];
          if (err) throw bitrixError(err.error, err.error_description, 400);
          const list = rowsOf(b.result[`p${i}`], method);
          rows.push(...list);
          if (list.length < PAGE) break read;
        }
      }
    }
    const rest = rows.slice(offset - first);
    return { rows: rest.slice(0, limit), hasMore: rest.length > limit, ahead: [], total };
  }

  /** Fast (ID-bound) or offset paging, per sort. */
  rows(
    ctx: CallContext,
    method: string,
    filter: Record<string, unknown>,
    select: string[],
    limit: number,
    sort: ListSort,
    c: { after?: number; off?: number },
  ): Promise<ListRows> {
    return sort === 'updated_desc'
      ? this.updatedList(ctx, method, filter, select, limit, c.off ?? 0)
      : this.fastList(ctx, method, filter, select, limit, c.after, sort);
  }

  /** Returns `limit` rows and keeps the rest (read ahead) for the cursor that continues after them. */
  private serve(scan: string, rows: Row[], exhausted: boolean, limit: number, total: number | null = null): ListRows {
    const out = rows.slice(0, limit);
    const rest = rows.slice(limit);
    const last = out.at(-1);
    if (last && (rest.length > 0 || !exhausted)) this.readAhead.put(`${scan}|${Number(last.ID)}`, { rows: rest, exhausted });
    return { rows: out, hasMore: rest.length > 0, ahead: rest, total };
  }
}

/**
 * A page of mapped rows; the cursor continues after the last row's ID (and carries the listing's state, with
 * its count for the uncounted pages after the first).
 */
export function toPage<T>(rows: Row[], hasMore: boolean, map: (r: Row) => T, cursorState: Record<string, unknown>, total: number | null): Page<T> {
  const last = rows.at(-1);
  return {
    items: rows.map(map),
    has_more: hasMore,
    cursor: hasMore && last ? encodeCursor({ ...cursorState, ...(total !== null ? { t: total } : {}), after: Number(last.ID) }) : null,
    total,
  };
}

/** This read's count, else the one the cursor carries from the listing's first page. */
export function pageTotal(read: number | null, c: ListCursor): number | null {
  return read ?? (typeof c.t === 'number' && Number.isInteger(c.t) && c.t >= 0 ? c.t : null);
}

export function readCursor(cursor: string | undefined, kind: string): ListCursor {
  if (!cursor) return {};
  return decodeCursor(cursor, (v): v is { k: string; after: number; f: Record<string, unknown>; l: number } => v.k === kind && typeof v.after === 'number');
}
