/**
 * Kommo tasks: the list (with the record each belongs to by name) and completing one (fact sheet §9). The
 * deadline (`complete_till`) is not among the documented task filters (§9: responsible_user_id, is_completed,
 * task_type, entity_type, entity_id, id, updated_at), so the deadline bounds are applied here over the list
 * ordered by `order[complete_till]=asc` (§9), which lets a scan stop at the upper bound.
 */
import { z } from 'zod';
import { CrmError, notFound, validationError } from '../../domain/errors.js';
import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { CallContext, CompleteTaskInput, CompleteTaskResult, ListTasksInput, Page, RecordRef, TaskItem } from '../types.js';
import { PAGE_MAX, type EntityPath } from './api.js';
import { toId, toUnix } from './ids.js';
import { iso, recordUrl, type Lookups } from './map.js';
import type { KommoParts } from './metadata.js';
import { KContact, KLead, parseKommo } from './schemas.js';

const opt = <T extends z.ZodType>(t: T) => t.nullish();

/** GET /api/v4/tasks and /tasks/{id} (§9). */
export const KTask = z.looseObject({
  id: z.number(),
  text: opt(z.string()),
  complete_till: opt(z.number()),
  is_completed: opt(z.boolean()),
  responsible_user_id: opt(z.number()),
  entity_type: opt(z.string()),
  entity_id: opt(z.number()),
  created_at: opt(z.number()),
  result: opt(z.union([z.looseObject({ text: opt(z.string()) }), z.array(z.unknown())])),
});
type KTask = z.infer<typeof KTask>;

const WORD: Record<string, string> = { leads: 'lead', contacts: 'contact', companies: 'company', customers: 'customer' };
const PATH: Record<string, EntityPath> = { lead: 'leads', contact: 'contacts', company: 'companies' };
/** A scan reads at most this many pages of 250 per call; past it the page ends early with a cursor. */
const MAX_SCAN_PAGES = 8;

interface TaskCursor extends Record<string, unknown> {
  k: 'kt';
  q: Array<[string, string]>;
  p: number;
  o: number;
  lo: number | null;
  hi: number | null;
  l: number;
}

function resultText(t: KTask): string | null {
  const r = t.result;
  return r && !Array.isArray(r) && typeof r.text === 'string' && r.text ? r.text : null;
}

function mapTask(t: KTask, l: Lookups, names: Map<string, string | null>, now: number): TaskItem {
  const etype = t.entity_type ?? null;
  const record: RecordRef | null =
    etype && t.entity_id
      ? { entity: WORD[etype] ?? etype, id: t.entity_id, name: names.get(`${etype}:${t.entity_id}`) ?? null, url: recordUrl(l.web, etype, t.entity_id) }
      : null;
  const done = t.is_completed === true;
  const uid = t.responsible_user_id;
  return {
    id: t.id,
    text: t.text ?? '',
    complete_till: iso(t.complete_till),
    is_completed: done,
    overdue: !done && typeof t.complete_till === 'number' && t.complete_till * 1000 < now,
    result: resultText(t),
    record,
    responsible: uid ? { id: uid, name: l.users.get(uid)?.name ?? null } : null,
    created_at: iso(t.created_at),
    // Kommo has no page per task (its tasks open in the to-do list or the record's feed): the record's page.
    url: record?.url ?? null,
  };
}

/** The names of the records a page of tasks belongs to: one `filter[id][]` request per entity kind (≤ 3). */
async function recordNames(k: KommoParts, ctx: CallContext, tasks: KTask[]): Promise<Map<string, string | null>> {
  const byType = new Map<EntityPath, Set<number>>();
  for (const t of tasks) {
    const e = t.entity_type;
    if ((e === 'leads' || e === 'contacts' || e === 'companies') && t.entity_id) {
      if (!byType.has(e)) byType.set(e, new Set());
      byType.get(e)!.add(t.entity_id);
    }
  }
  const out = new Map<string, string | null>();
  await Promise.all(
    [...byType].map(async ([entity, ids]) => {
      const rows = await k.api.byIds(ctx, entity, [...ids], entity === 'leads' ? KLead : KContact);
      for (const r of rows) out.set(`${entity}:${r.id}`, r.name ?? null);
    }),
  );
  return out;
}

export async function listTasks(k: KommoParts, ctx: CallContext, q: ListTasksInput): Promise<Page<TaskItem>> {
  let c: TaskCursor;
  if (q.cursor) {
    c = decodeCursor(
      q.cursor,
      (v): v is TaskCursor => v.k === 'kt' && Array.isArray(v.q) && typeof v.p === 'number' && typeof v.o === 'number' && typeof v.l === 'number',
    );
  } else {
    if (q.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
    if (q.entity_id !== undefined && !q.entity) throw validationError('entity_id needs entity (lead, contact or company).');
    const params: Array<[string, string]> = [['order[complete_till]', 'asc']];
    if (q.status) params.push(['filter[is_completed]', q.status === 'done' ? '1' : '0']);
    const responsible = await k.meta.checkUser(ctx, q.responsible_user_id);
    if (responsible !== undefined) params.push(['filter[responsible_user_id][]', String(responsible)]);
    if (q.entity) {
      params.push(['filter[entity_type]', PATH[q.entity]!]);
      if (q.entity_id !== undefined) params.push(['filter[entity_id][]', String(toId(q.entity_id, 'entity_id'))]);
    }
    const lo = q.due_from ? toUnix(q.due_from, 'due_from') : null;
    let hi = q.due_to ? toUnix(q.due_to, 'due_to') : null;
    // Overdue: still open and the deadline has passed (complete_till < now).
    if (q.status === 'overdue') hi = Math.min(hi ?? Infinity, Math.floor(Date.now() / 1000) - 1);
    if (lo !== null && hi !== null && lo > hi) return { items: [], has_more: false, cursor: null, total: null };
    c = { k: 'kt', q: params, p: 1, o: 0, lo, hi, l: q.limit };
  }
  const picked: KTask[] = [];
  let { p, o } = c;
  let more = true;
  let hasMore = false;
  for (let read = 0; read < MAX_SCAN_PAGES && more; read++) {
    const query = new URLSearchParams(c.q);
    query.set('page', String(p));
    query.set('limit', String(PAGE_MAX));
    const page = await k.api.page(ctx, '/api/v4/tasks', 'tasks', query, KTask);
    let i = o;
    for (; i < page.items.length; i++) {
      const t = page.items[i]!;
      const due = t.complete_till ?? 0;
      if (c.hi !== null && due > c.hi) {
        more = false;
        break;
      }
      if (c.lo !== null && due < c.lo) continue;
      if (picked.length === c.l) {
        hasMore = true;
        more = false;
        break;
      }
      picked.push(t);
    }
    if (!more) {
      o = i;
      break;
    }
    if (!page.next || page.items.length < PAGE_MAX) {
      more = false;
      break;
    }
    p += 1;
    o = 0;
  }
  // Stopped by the page budget with rows left to scan: the page ends early, the cursor goes on from there.
  if (more) hasMore = true;
  const [l, names] = await Promise.all([k.meta.lookups(ctx), recordNames(k, ctx, picked)]);
  const now = Date.now();
  return {
    items: picked.map((t) => mapTask(t, l, names, now)),
    has_more: hasMore,
    cursor: hasMore ? encodeCursor({ ...c, p, o }) : null,
    total: null,
  };
}

async function rawTask(k: KommoParts, ctx: CallContext, id: number): Promise<KTask> {
  const path = `/api/v4/tasks/${id}`;
  let data: unknown;
  try {
    data = await k.api.get(ctx, path);
  } catch (e) {
    if (e instanceof CrmError && e.code === 'not_found') throw notFound(`Task ${id}`);
    throw e;
  }
  if (!data || typeof data !== 'object' || !(data as { id?: unknown }).id) throw notFound(`Task ${id}`); // 204 (§4)
  return parseKommo(KTask, data, `GET ${path}`);
}

/**
 * Completes a task with `PATCH /api/v4/tasks/{id}` `{"is_completed": true, "result": {"text": …}}` and nothing
 * else in the body (§9: "to complete a task, properties result and is_completed should be passed"), so the
 * HTTP core can recognise it as a task completion. A task already done is answered as such, nothing sent.
 */
export async function completeTask(k: KommoParts, ctx: CallContext, input: CompleteTaskInput): Promise<CompleteTaskResult> {
  const id = toId(input.id, 'id');
  const text = input.result_text?.trim();
  if (!text) throw validationError('result_text: Kommo completes a task with its result; say what came of it (e.g. "Called, demo booked for Friday").');
  const t = await rawTask(k, ctx, id);
  const [l, names] = await Promise.all([k.meta.lookups(ctx), recordNames(k, ctx, [t])]);
  const now = Date.now();
  if (t.is_completed) {
    return { completed: false, task: mapTask(t, l, names, now), reason: `Task ${id} is already completed; nothing was sent.` };
  }
  const body = { is_completed: true, result: { text } };
  const path = `/api/v4/tasks/${id}`;
  if (ctx.dryRun) return { completed: false, dry_run: true, task: mapTask(t, l, names, now), requests: [k.api.plan('PATCH', path, body)] };
  await k.api.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
  return { completed: true, task: mapTask({ ...t, is_completed: true, result: { text } }, l, names, now) };
}
