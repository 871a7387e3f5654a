/**
 * A Bitrix24 record's history (get_record_history, the `history` capability; domain/history.ts): its stage moves
 * from `crm.stagehistory.list` (leads entityTypeId 1, deals 2; TYPE_ID 1 created, 2 moved to an intermediate
 * stage, 3 to a final one, 5 pipeline changed; STAGE_SEMANTIC_ID / STATUS_SEMANTIC_ID P, S, F; events fact sheet
 * "Stage history") and its timeline comments (§7.8 `crm.timeline.comment.list`), read with the record itself in
 * one `batch` request (§4.2; more pages, up to 500 rows of each, in one more). Names come from the cached
 * lookups (stages, pipelines, users). The stage history does not say who moved a record (its rows carry no
 * user): `by` is null there, never a guess.
 */
import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import { notFound } from '../../domain/errors.js';
import type { HistoryEntry, RecordHistory, RecordHistoryQuery } from '../../domain/history.js';
import type { CallContext } from '../types.js';
import { bxId, cap } from './ids.js';
import { iso, phpQuery, str } from './map.js';
import type { BitrixParts } from './metadata.js';

const TYPE_IDS = { lead: 1, deal: 2 } as const;
const SEMANTIC: Record<string, string> = { S: ' (won)', F: ' (lost)' };
/** §4.1: 50 rows a page; at most this many pages of each list are read for one record. */
const PAGE = 50;
const MAX_PAGES = 10;

type Row = Record<string, unknown>;
const rowsOf = (v: unknown): Row[] => {
  if (Array.isArray(v)) return v as Row[];
  const items = (v as { items?: unknown } | null)?.items;
  return Array.isArray(items) ? (items as Row[]) : [];
};

interface HistoryCursor extends Record<string, unknown> {
  k: string;
  o: number;
}

function commands(entity: RecordHistoryQuery['entity'], id: number, start: number): Record<string, string> {
  const cmd: Record<string, string> = {
    [`c${start}`]: `crm.timeline.comment.list?${phpQuery({ filter: { ENTITY_ID: id, ENTITY_TYPE: entity }, select: ['ID', 'CREATED', 'AUTHOR_ID', 'COMMENT'], order: { ID: 'ASC' }, start })}`,
  };
  if (entity === 'lead' || entity === 'deal')
    cmd[`s${start}`] = `crm.stagehistory.list?${phpQuery({ entityTypeId: TYPE_IDS[entity], filter: { OWNER_ID: id }, order: { ID: 'ASC' }, start })}`;
  return cmd;
}

export async function recordHistory(b: BitrixParts, ctx: CallContext, q: RecordHistoryQuery): Promise<RecordHistory> {
  const id = bxId(q.id, 'id');
  const key = `${q.entity}:${id}`;
  const offset = q.cursor ? decodeCursor<HistoryCursor>(q.cursor, (v): v is HistoryCursor => v.k === key && Number.isInteger(v.o) && Number(v.o) >= 0).o : 0;
  const [first, l] = await Promise.all([
    b.api.batch(ctx, { rec: `crm.${q.entity}.get?${phpQuery({ id })}`, ...commands(q.entity, id, 0) }),
    b.meta.lookups(ctx),
  ]);
  const rec = first.result.rec as Row | undefined;
  if (first.errors.rec || !rec || typeof rec !== 'object') throw notFound(`${cap(q.entity)} ${id}`);
  const stages = rowsOf(first.result.s0);
  const comments = rowsOf(first.result.c0);
  // Later pages of either list (a long-lived record), all in one more batch.
  const more: Record<string, string> = {};
  for (const [list, total] of [
    ['s', first.total.s0],
    ['c', first.total.c0],
  ] as const) {
    for (let start = PAGE; total !== undefined && start < Math.min(total, PAGE * MAX_PAGES); start += PAGE) {
      const c = commands(q.entity, id, start)[`${list}${start}`];
      if (c) more[`${list}${start}`] = c;
    }
  }
  if (Object.keys(more).length) {
    const r = await b.api.batch(ctx, more);
    for (const k of Object.keys(more).sort((x, y) => Number(x.slice(1)) - Number(y.slice(1))))
      (k.startsWith('s') ? stages : comments).push(...rowsOf(r.result[k]));
  }

  const user = (v: unknown): HistoryEntry['by'] => {
    const uid = str(v);
    if (!uid) return null;
    // A comment with author 0 was left by automation (a robot or a business process).
    if (uid === '0') return { id: 0, name: 'robot' };
    return { id: Number(uid), name: l.users.get(uid)?.name ?? null };
  };
  const stageOf = (row: Row): { id: string; name: string | null; label: string } => {
    const lead = q.entity === 'lead';
    const sid = String((lead ? row.STATUS_ID : row.STAGE_ID) ?? '');
    const name = (lead ? l.stages.get(`STATUS:${sid}`) : l.stages.get(sid))?.NAME ?? null;
    const sem = str(lead ? row.STATUS_SEMANTIC_ID : row.STAGE_SEMANTIC_ID) ?? '';
    return { id: sid, name, label: `${name ?? sid}${SEMANTIC[sem] ?? ''}` };
  };

  const entries: HistoryEntry[] = [];
  let prev: ReturnType<typeof stageOf> | null = null;
  for (const row of stages) {
    const to = stageOf(row);
    const t = Number(row.TYPE_ID);
    const from = t === 1 ? null : prev;
    let text: string;
    if (t === 1) text = `created in ${to.label}`;
    else if (t === 5) {
      const cat = Number(row.CATEGORY_ID ?? 0);
      text = `moved to pipeline ${l.categories.get(cat)?.name ?? cat}, stage ${to.label}${from ? ` (from ${from.label})` : ''}`;
    } else text = `stage moved ${from ? `from ${from.label} ` : ''}to ${to.label}`;
    entries.push({
      at: iso(row.CREATED_TIME),
      type: t === 1 ? 'added' : t === 5 ? 'pipeline_changed' : 'stage_changed',
      text,
      by: null,
      from: from ? { id: from.id, name: from.name } : null,
      to: { id: to.id, name: to.name },
    });
    prev = to;
  }
  for (const row of comments) {
    const by = user(row.AUTHOR_ID);
    const body = str(row.COMMENT);
    entries.push({ at: iso(row.CREATED), type: 'note_added', text: `comment by ${by ? (by.name ?? `user ${by.id}`) : 'someone'}: ${body ?? ''}`.trim(), by });
  }
  // Newest first; ties keep the CRM's order reversed (a later row is a later change).
  const ordered = entries.map((e, i) => ({ e, i })).sort((x, y) => (y.e.at ?? '').localeCompare(x.e.at ?? '') || y.i - x.i);
  const page = ordered.slice(offset, offset + q.limit).map((x) => x.e);
  const hasMore = offset + q.limit < ordered.length;
  const name = str(rec.TITLE) ?? ([str(rec.NAME), str(rec.LAST_NAME)].filter(Boolean).join(' ') || null);
  return {
    entity: q.entity,
    id,
    name,
    entries: page,
    has_more: hasMore,
    cursor: hasMore ? encodeCursor({ k: key, o: offset + q.limit }) : null,
  };
}

/** The provider's `history` member. */
export function bitrixHistory(b: BitrixParts) {
  return { recordHistory: (ctx: CallContext, q: RecordHistoryQuery) => recordHistory(b, ctx, q) };
}
