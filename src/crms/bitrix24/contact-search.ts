/**
 * What list_contacts' `query` means on Bitrix24, and how a query that needs several filters is paged.
 * - An email or a phone goes through `crm.duplicate.findbycomm` (duplicates.ts): the portal compares match codes
 *   (§7.7), so `8 (999) 285 67 29` finds `+7 999 285-67-29`, which no `%PHONE` substring filter would.
 * - Words are names. `%NAME`/`%LAST_NAME` are LIKE '%…%' filters on one field each (§7.3) and a list filter
 *   has no OR between fields (§7.3: "No OR between different fields"), so "Elena Kuznetsova" is never a
 *   substring of LAST_NAME. Each reading of the words (first + last, last + first, one field holding them all,
 *   first + middle + last in both orders) is its own filter, and the pages of all of them are merged here.
 */
import { normalizePhone, looksLikeEmail } from '../../util/phone.js';
import type { CallContext, ListSort } from '../types.js';
import { bitrixError } from './adapter.js';
import { phpQuery, type Row } from './map.js';
import { rowsOf } from './schemas.js';

const PAGE = 50;
const MAX_COMMANDS = 50;
/** Beyond this many words only the whole text is matched (each split point costs two filters). */
const MAX_SPLIT_WORDS = 4;

export type ContactQuery =
  { kind: 'all' } | { kind: 'comm'; email?: string; phoneE164?: string } | { kind: 'names'; filters: Array<Record<string, string>> } | { kind: 'nothing' };

/** Phone-like: digits with the usual separators and at least 5 digits (the tools' Phone rule). */
function phoneLike(q: string): boolean {
  return /^[+\d\s().-]+$/.test(q) && (q.match(/\d/g)?.length ?? 0) >= 5;
}

/** Reads a query: email, phone (in the portal's country when it has no country code), or name words. */
export function parseContactQuery(query: string | undefined, country: string | undefined): ContactQuery {
  const q = (query ?? '').trim();
  if (!q) return { kind: 'all' };
  if (looksLikeEmail(q)) return { kind: 'comm', email: q };
  if (phoneLike(q)) {
    const p = normalizePhone(q, country);
    // A number that is no phone anywhere matches no stored phone, and is no name either.
    return p ? { kind: 'comm', phoneE164: p.e164 } : { kind: 'nothing' };
  }
  return { kind: 'names', filters: nameFilters(q) };
}

/** The `%NAME`/`%SECOND_NAME`/`%LAST_NAME` filters whose union is "contacts called `q`". */
export function nameFilters(q: string): Array<Record<string, string>> {
  const words = q.split(/\s+/).filter(Boolean);
  if (words.length <= 1) return [{ '%NAME': q }, { '%LAST_NAME': q }];
  const all = words.join(' ');
  const out: Array<Record<string, string>> = [{ '%NAME': all }, { '%LAST_NAME': all }];
  if (words.length <= MAX_SPLIT_WORDS) {
    for (let i = 1; i < words.length; i++) {
      const a = words.slice(0, i).join(' ');
      const b = words.slice(i).join(' ');
      out.push({ '%NAME': a, '%LAST_NAME': b }, { '%LAST_NAME': a, '%NAME': b });
    }
    // "Elena Ivanovna Kuznetsova" and the Russian order "Kuznetsova Elena Ivanovna" (last, first, patronymic).
    if (words.length === 3)
      out.push(
        { '%NAME': words[0]!, '%SECOND_NAME': words[1]!, '%LAST_NAME': words[2]! },
        { '%LAST_NAME': words[0]!, '%NAME': words[1]!, '%SECOND_NAME': words[2]! },
      );
  }
  return out;
}

interface BatchAnswer {
  result: Record<string, unknown>;
  errors: Record<string, { error: string; error_description: string }>;
}

export interface UnionDeps {
  batch(ctx: CallContext, cmd: Record<string, string>): Promise<BatchAnswer>;
}

/** Runs groups of commands, each group whole in one batch (chained `$result` references stay together). */
async function runGroups(d: UnionDeps, ctx: CallContext, groups: Array<Record<string, string>>): Promise<BatchAnswer> {
  const out: BatchAnswer = { result: {}, errors: {} };
  let cmd: Record<string, string> = {};
  const flush = async () => {
    if (!Object.keys(cmd).length) return;
    const b = await d.batch(ctx, cmd);
    Object.assign(out.result, b.result);
    Object.assign(out.errors, b.errors);
    cmd = {};
  };
  for (const g of groups) {
    if (Object.keys(cmd).length + Object.keys(g).length > MAX_COMMANDS) await flush();
    Object.assign(cmd, g);
  }
  await flush();
  return out;
}

/** Pages of one filter, in order, up to the first short page (later chained pages are not looked at). */
function pagesOf(b: BatchAnswer, j: number, pages: number): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < pages; i++) {
    const key = `f${j}p${i}`;
    const err = b.errors[key];
    if (err) throw bitrixError(err.error, err.error_description, 400);
    const list = rowsOf(b.result[key], 'crm.contact.list');
    rows.push(...list);
    if (list.length < PAGE) break;
  }
  return rows;
}

const modified = (r: Row) => {
  const t = Date.parse(String(r.DATE_MODIFY ?? ''));
  return Number.isNaN(t) ? 0 : t;
};

/**
 * One page of the union of several filters, in the list's order, with an exact `has_more`: every filter
 * yields at least one row more than the page (or all it has), so the merged head is the union's head.
 * Creation order pages by the ID bound (the fast method, §4.1, pages chained by `$result`); the update order
 * by `start` from 0 to the page's end, since DATE_MODIFY moves under a scan.
 */
export async function unionRows(
  d: UnionDeps,
  ctx: CallContext,
  method: string,
  filters: Array<Record<string, unknown>>,
  select: string[],
  limit: number,
  sort: ListSort,
  c: { after?: number; off?: number },
): Promise<{ rows: Row[]; hasMore: boolean }> {
  const updated = sort === 'updated_desc';
  const off = updated ? (c.off ?? 0) : 0;
  const pages = Math.ceil((off + limit + 1) / PAGE);
  const asc = sort === 'created_asc';
  const groups = filters.map((f, j) => {
    const g: Record<string, string> = {};
    for (let i = 0; i < pages; i++) {
      if (updated) {
        g[`f${j}p${i}`] = `${method}?${phpQuery({ order: { DATE_MODIFY: 'DESC', ID: 'DESC' }, filter: f, select, start: i * PAGE })}`;
        continue;
      }
      const prev = i === 0 ? c.after : `$result[f${j}p${i - 1}][${PAGE - 1}][ID]`;
      const bound = prev !== undefined ? { [asc ? '>ID' : '<ID']: prev } : {};
      g[`f${j}p${i}`] = `${method}?${phpQuery({ order: { ID: asc ? 'ASC' : 'DESC' }, filter: { ...f, ...bound }, select, start: -1 })}`;
    }
    return g;
  });
  const b = await runGroups(d, ctx, groups);
  const byId = new Map<number, Row>();
  filters.forEach((_, j) => {
    for (const r of pagesOf(b, j, pages)) byId.set(Number(r.ID), r);
  });
  const merged = [...byId.values()].sort((x, y) => {
    const dx = Number(x.ID);
    const dy = Number(y.ID);
    if (updated) return modified(y) - modified(x) || dy - dx;
    return asc ? dx - dy : dy - dx;
  });
  return { rows: merged.slice(off, off + limit), hasMore: merged.length > off + limit };
}
