/**
 * Bitrix24 tasks (the `tasks.task.*` tasks create_task makes): the list with the CRM record each is bound to
 * by name, and completing one (fact sheet §7.8, §4.1). Timeline comments (notes) page the same way (notes.ts).
 */
import { CrmError, notFound, validationError } from '../../domain/errors.js';
import { decodeCursor, encodeCursor } from '../../domain/cursor.js';
import type { CallContext, CompleteTaskInput, CompleteTaskResult, ListTasksInput, Page, RecordRef, TaskItem } from '../types.js';
import { bitrixError } from './adapter.js';
import { bxDate, bxId } from './ids.js';
import { iso, phpQuery, recordUrl, str, taskUrl, type Row } from './map.js';
import type { BitrixParts, Lookups } from './metadata.js';
import { BRow, parseBitrix, rowsOf } from './schemas.js';

const PAGE = 50;
/** §7.8 `tasks.task.list`: REAL_STATUS 4 = supposedly completed (awaiting the creator's check), 5 = completed. */
const DONE = ['4', '5'];
const SELECT = ['ID', 'TITLE', 'DESCRIPTION', 'RESPONSIBLE_ID', 'DEADLINE', 'STATUS', 'CREATED_DATE', 'CLOSED_DATE', 'UF_CRM_TASK'];
/** UF_CRM_TASK bindings (§7.8): `L_7` lead, `D_42` deal, `C_3` contact, `CO_5` company. */
const PREFIX = { lead: 'L', deal: 'D', contact: 'C', company: 'CO' } as const;
const KIND: Record<string, keyof typeof PREFIX> = { L: 'lead', D: 'deal', C: 'contact', CO: 'company' };

interface OffsetCursor extends Record<string, unknown> {
  k: string;
  f: Record<string, unknown>;
  o: number;
  l: number;
}

/**
 * One page of a `start`-paged list (§4.1: 50 rows a call, `start` a multiple of 50, `next` while more exist):
 * reads from the cursor's row offset until `limit` rows and one more are known, so `has_more` is exact. The
 * answers count the matching rows (`total`, §4.1), so the page says how many there are at no extra request.
 */
export async function offsetPage(
  b: BitrixParts,
  ctx: CallContext,
  method: string,
  kind: string,
  params: (filter: Record<string, unknown>, start: number) => Record<string, unknown>,
  rowsIn: (result: unknown) => Row[],
  first: { filter: Record<string, unknown>; limit: number } | { cursor: string },
): Promise<{ rows: Row[]; cursor: string | null; total: number | null }> {
  const c: OffsetCursor =
    'cursor' in first
      ? decodeCursor(
          first.cursor,
          (v): v is OffsetCursor => v.k === kind && typeof v.o === 'number' && typeof v.l === 'number' && !!v.f && typeof v.f === 'object',
        )
      : { k: kind, f: first.filter, o: 0, l: first.limit };
  const rows: Row[] = [];
  let start = Math.floor(c.o / PAGE) * PAGE;
  let skip = c.o - start;
  let total: number | null = null;
  for (;;) {
    const r = await b.api.call<unknown>(ctx, method, params(c.f, start));
    if (typeof r.total === 'number') total = r.total;
    const page = rowsIn(r.result);
    rows.push(...page.slice(skip));
    skip = 0;
    if (rows.length > c.l || r.next === undefined || r.next === null || page.length < PAGE) break;
    start += PAGE;
  }
  const more = rows.length > c.l;
  return { rows: rows.slice(0, c.l), cursor: more ? encodeCursor({ ...c, o: c.o + c.l }) : null, total };
}

const tasksOf = (result: unknown): Row[] => {
  const list = result && typeof result === 'object' && 'tasks' in result ? (result as { tasks: unknown }).tasks : [];
  return rowsOf(list, 'tasks.task.list');
};

/** A record's display name from a `crm.*.list`/`.get` row. */
export function rowName(r: Row): string | null {
  const t = str(r.TITLE);
  if (t) return t;
  const n = [str(r.NAME), str(r.LAST_NAME)].filter(Boolean).join(' ');
  return n || null;
}

function bindingsOf(t: Row): Array<{ entity: keyof typeof PREFIX; id: number }> {
  const uf = t.ufCrmTask;
  const list = Array.isArray(uf) ? uf : uf && typeof uf === 'object' ? Object.values(uf) : [];
  return list.flatMap((x) => {
    const m = /^(L|D|C|CO)_(\d+)$/.exec(String(x));
    return m ? [{ entity: KIND[m[1]!]!, id: Number(m[2]) }] : [];
  });
}

/** The names of the records a page of tasks is bound to, in one `batch` (≤ 50 ids per `crm.*.list`). */
async function recordNames(b: BitrixParts, ctx: CallContext, tasks: Row[]): Promise<Map<string, string | null>> {
  const ids = new Map<string, Set<number>>();
  for (const t of tasks) for (const x of bindingsOf(t)) (ids.get(x.entity) ?? ids.set(x.entity, new Set()).get(x.entity)!).add(x.id);
  const cmd: Record<string, string> = {};
  for (const [entity, set] of ids) {
    const all = [...set];
    const select = entity === 'contact' ? ['ID', 'NAME', 'LAST_NAME'] : ['ID', 'TITLE'];
    for (let i = 0; i < all.length; i += PAGE) cmd[`${entity}_${i}`] = `crm.${entity}.list?${phpQuery({ filter: { '@ID': all.slice(i, i + PAGE) }, select })}`;
  }
  const out = new Map<string, string | null>();
  if (!Object.keys(cmd).length) return out;
  const r = await b.api.batch(ctx, cmd);
  for (const key of Object.keys(cmd)) {
    const err = r.errors[key];
    if (err) throw bitrixError(err.error, err.error_description, 400);
    for (const row of rowsOf(r.result[key], key)) out.set(`${key.split('_')[0]}:${String(row.ID)}`, rowName(row));
  }
  return out;
}

function mapTask(t: Row, l: Lookups, names: Map<string, string | null>, now: number, prefer?: keyof typeof PREFIX): TaskItem {
  const binds = bindingsOf(t);
  const bind = binds.find((x) => x.entity === prefer) ?? binds[0];
  const record: RecordRef | null = bind
    ? { entity: bind.entity, id: bind.id, name: names.get(`${bind.entity}:${bind.id}`) ?? null, url: recordUrl(l.web, bind.entity, bind.id) }
    : null;
  const done = DONE.includes(String(t.status ?? t.realStatus ?? ''));
  const deadline = iso(t.deadline);
  const uid = str(t.responsibleId);
  return {
    id: Number(t.id),
    text: str(t.description) ?? str(t.title) ?? '',
    complete_till: deadline,
    is_completed: done,
    overdue: !done && !!deadline && Date.parse(deadline) < now,
    result: null,
    record,
    responsible: uid ? { id: Number(uid), name: l.users.get(uid)?.name ?? null } : null,
    created_at: iso(t.createdDate),
    // A task's page sits under a user's tasks; every task has a responsible user (tasks.task.add requires one).
    url: uid ? taskUrl(l.web, Number(uid), Number(t.id)) : null,
  };
}

const listParams = (filter: Record<string, unknown>, start: number) => ({ filter, select: SELECT, order: { DEADLINE: 'ASC', ID: 'ASC' }, start });

export async function listTasks(b: BitrixParts, ctx: CallContext, q: ListTasksInput): Promise<Page<TaskItem>> {
  let first: { filter: Record<string, unknown>; limit: number } | { cursor: string };
  if (q.cursor) first = { cursor: q.cursor };
  else {
    if (q.entity_id !== undefined && !q.entity) throw validationError('entity_id needs entity (lead, deal, contact or company).');
    if (q.entity && q.entity_id === undefined)
      throw validationError('entity: on Bitrix24 give entity_id too (tasks are found by their CRM binding, e.g. D_42).');
    const filter: Record<string, unknown> = {};
    if (q.entity && q.entity_id !== undefined) filter.UF_CRM_TASK = `${PREFIX[q.entity]}_${bxId(q.entity_id, 'entity_id')}`;
    const responsible = await b.meta.checkUser(ctx, q.responsible_user_id);
    if (responsible !== undefined) filter.RESPONSIBLE_ID = responsible;
    if (q.status === 'done') filter.REAL_STATUS = DONE;
    else if (q.status) filter['!REAL_STATUS'] = DONE;
    if (q.due_from) filter['>=DEADLINE'] = bxDate(q.due_from, 'due_from');
    if (q.due_to) filter['<=DEADLINE'] = bxDate(q.due_to, 'due_to');
    // Overdue: still open and the deadline has passed.
    if (q.status === 'overdue') filter['<DEADLINE'] = new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00');
    first = { filter, limit: q.limit };
  }
  const page = await offsetPage(b, ctx, 'tasks.task.list', 'bt', listParams, tasksOf, first);
  const [l, names] = await Promise.all([b.meta.lookups(ctx), recordNames(b, ctx, page.rows)]);
  const now = Date.now();
  return { items: page.rows.map((t) => mapTask(t, l, names, now, q.entity)), has_more: page.cursor !== null, cursor: page.cursor, total: page.total };
}

/**
 * Completes a task with `tasks.task.complete {"taskId": N}` and nothing else (§7.8), so the HTTP core can
 * recognise it as a task completion; the method takes no result text. A task already done is answered as such.
 */
export async function completeTask(b: BitrixParts, ctx: CallContext, input: CompleteTaskInput): Promise<CompleteTaskResult> {
  const id = bxId(input.id, 'id');
  if (input.result_text !== undefined)
    throw validationError('result_text: Bitrix24 completes a task without a result text (tasks.task.complete); omit it, or add_note on the record.');
  const found = tasksOf((await b.api.call<unknown>(ctx, 'tasks.task.list', listParams({ ID: id }, 0))).result);
  const t = found.find((x) => Number(x.id) === id);
  if (!t) throw notFound(`Task ${id}`);
  const [l, names] = await Promise.all([b.meta.lookups(ctx), recordNames(b, ctx, [t])]);
  const now = Date.now();
  const before = mapTask(t, l, names, now);
  if (before.is_completed) return { completed: false, task: before, reason: `Task ${id} is already completed; nothing was sent.` };
  const params = { taskId: id };
  if (ctx.dryRun) return { completed: false, dry_run: true, task: before, requests: [b.api.plan('tasks.task.complete', params)] };
  const r = await b.api.call<unknown>(ctx, 'tasks.task.complete', params, 'idempotent');
  const after = r.result && typeof r.result === 'object' && 'task' in r.result ? (r.result as { task: unknown }).task : undefined;
  if (after !== undefined && after !== null && typeof after !== 'object')
    throw new CrmError({ code: 'upstream', message: 'Bitrix24 answered tasks.task.complete without the task.' });
  const row = after ? { ...t, ...parseBitrix(BRow, after, 'tasks.task.complete') } : { ...t, status: '5' };
  return { completed: true, task: mapTask(row, l, names, now) };
}
