/**
 * Every user of the portal, not only the first page: `user.get` answers 50 rows per call with `total` and
 * `next` (§4.1, [D] user-get "start"), so a 75-user portal needs two pages. The first page rides in the
 * metadata batch; the rest are read in one more batch (up to 50 pages, 2,500 users), sorted by ID so the
 * pages do not shift under us. Callers cache the result with the other lookups.
 */
import { phpQuery, type Row } from './map.js';
import { rowsOf } from './schemas.js';

const PAGE = 50;
/** Pages read in one batch: a batch takes 50 commands (§4.2). */
const MAX_PAGES = 50;

/** The first page, for the metadata batch. */
export function firstUserPage(): string {
  return `user.get?${phpQuery({ sort: 'ID', order: 'ASC', start: 0 })}`;
}

/** Commands for the pages after the first, given the `total` the first page reported. */
export function moreUserPages(total: number | undefined, firstCount: number): Record<string, string> {
  const cmd: Record<string, string> = {};
  if (!total || total <= firstCount) return cmd;
  const pages = Math.min(MAX_PAGES, Math.ceil(total / PAGE));
  for (let i = 1; i < pages; i++) cmd[`u${i}`] = `user.get?${phpQuery({ sort: 'ID', order: 'ASC', start: i * PAGE })}`;
  return cmd;
}

/** All user rows from the first page and the `u{n}` pages, deduplicated by ID. */
export function collectUsers(first: unknown, more: Record<string, unknown>): Row[] {
  const rows: Row[] = rowsOf(first, 'user.get');
  for (const [k, v] of Object.entries(more)) if (/^u\d+$/.test(k)) rows.push(...rowsOf(v, 'user.get'));
  return [...new Map(rows.map((r) => [String(r.ID), r])).values()];
}
