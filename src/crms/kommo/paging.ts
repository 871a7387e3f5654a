/**
 * Kommo list paging beyond one `GET`: the `order[...]` each sort maps to, and pages merged over several
 * `filter[statuses]` pairs, each read as a list of its own (fact sheet §5.1).
 */
import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { ListSort } from '../types.js';

/** `order[...]` per sort (§5.1: leads sort by created_at, updated_at or id). */
export const LEAD_ORDER: Record<ListSort, [string, 'asc' | 'desc']> = {
  created_desc: ['created_at', 'desc'],
  created_asc: ['created_at', 'asc'],
  updated_desc: ['updated_at', 'desc'],
};

/** §6: contacts and companies sort only by updated_at or id; ids grow with creation, so creation order is id order. */
export const PARTY_ORDER: Record<ListSort, [string, 'asc' | 'desc']> = {
  created_desc: ['id', 'desc'],
  created_asc: ['id', 'asc'],
  updated_desc: ['updated_at', 'desc'],
};

/** The cursor of a merged page: the pairs, the shared params, each pair's offset, the page size. */
interface MergeCursor extends Record<string, unknown> {
  path: string;
  m: Array<[number, number]>;
  q: Array<[string, string]>;
  o: number[];
  l: number;
}

/** Whether a cursor came from `mergePages` (the single-list decoder reports a malformed one). */
export function isMergeCursor(cursor: string): boolean {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    return !!v && typeof v === 'object' && 'm' in v;
  } catch {
    return false;
  }
}

/** The query parameters of one (pipeline, status) pair at index `i` of `filter[statuses]`. */
export const pairParams =
  (i: number) =>
  ([pid, sid]: [number, number]): Array<[string, string]> => [
    [`filter[statuses][${i}][pipeline_id]`, String(pid)],
    [`filter[statuses][${i}][status_id]`, String(sid)],
  ];

type Fetch<T> = (q: URLSearchParams) => Promise<{ items: T[]; next: boolean }>;

/**
 * A page over several status pairs. Kommo's leads page warns that "you can filter only one stage in one
 * pipeline" while the amoCRM filter docs send arrays of pairs (fact sheet §5.1: "client should not rely on
 * >1"), so each pair is its own list in the same `order[...]`, and the lists are merged here, each keeping its
 * own order (ties go to the earlier pair). Every pair yields up to `limit + 1` candidates, so `has_more` is
 * exact; the cursor keeps each pair's offset.
 */
export async function mergePages<T extends { id: number; created_at?: number | null; updated_at?: number | null }>(
  fetch: Fetch<T>,
  o: { path: string; params: Array<[string, string]>; pairs: Array<[number, number]>; limit: number; pageSize: number; cursor?: string },
): Promise<{ items: T[]; has_more: boolean; cursor: string | null }> {
  let { params, pairs, limit } = o;
  let offsets = pairs.map(() => 0);
  if (o.cursor) {
    const c = decodeCursor(
      o.cursor,
      (v): v is MergeCursor =>
        v.path === o.path && Array.isArray(v.m) && Array.isArray(v.o) && Array.isArray(v.q) && typeof v.l === 'number' && v.o.length === v.m.length,
    );
    ({ q: params, m: pairs, o: offsets, l: limit } = c);
  }
  const orderParam = params.find(([k]) => k.startsWith('order['));
  const field = (orderParam?.[0].slice(6, -1) ?? 'id') as 'created_at' | 'updated_at' | 'id';
  const sign = orderParam?.[1] === 'asc' ? 1 : -1;
  const size = o.pageSize;
  const heads = await Promise.all(
    pairs.map(async (pair, i) => {
      const out: T[] = [];
      const start = offsets[i]!;
      const firstPage = Math.floor(start / size) + 1;
      for (let p = firstPage; out.length <= limit; p++) {
        const q = new URLSearchParams([...params, ...pairParams(0)(pair)]);
        q.set('page', String(p));
        q.set('limit', String(size));
        const { items, next } = await fetch(q);
        out.push(...items.slice(p === firstPage ? start % size : 0));
        // Offsets assume full pages of `size` (leads: `limit` up to 250, §5.1); the end is the missing `next`.
        if (!next || !items.length) break;
      }
      return out;
    }),
  );
  const items: T[] = [];
  const taken = pairs.map(() => 0);
  while (items.length < limit) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]![taken[i]!];
      if (!h) continue;
      const b = best >= 0 ? heads[best]![taken[best]!] : undefined;
      if (!b || sign * ((h[field] ?? 0) - (b[field] ?? 0)) < 0) best = i;
    }
    if (best < 0) break;
    items.push(heads[best]![taken[best]!]!);
    taken[best]! += 1;
  }
  const hasMore = heads.some((h, i) => h.length > taken[i]!);
  const next: MergeCursor = { path: o.path, m: pairs, q: params, o: offsets.map((n, i) => n + taken[i]!), l: limit };
  return { items, has_more: hasMore, cursor: hasMore ? encodeCursor(next) : null };
}
