/**
 * The non-entity methods: directories and pipelines (§7.6), duplicates (§7.7), CRM mode, timeline and
 * activities, tasks (§7.8), users and system methods (§2.3), events (§9) and merging (§8).
 */
import { registerActivities } from './activities.js';
import { registerImport } from './import.js';
import { registerTelephony } from './telephony.js';
import type { CallCtx, MethodResult, Registry } from './context.js';
import { paginate } from './context.js';
import { deleteRecord } from './crm.js';
import { BxError, errors } from './errors.js';
import { compileFilter, compileOrder, matches, scalar, sortRecords, type FieldAccess } from './filter.js';
import { flag, idParam, isObject, listParam, objectParam, param, type Params } from './params.js';
import { ENTITY_BY_TYPE_ID, MULTI_FIELDS, type EntityKind } from './schema.js';
import { dealStages, nextId, table, type BCategory, type BMulti, type BRecord, type BTask, type BUser } from './state.js';
import { matchCode } from './phone.js';
import { parseBxDate, phpDate } from './time.js';

/** Events `event.bind` accepts (§9). */
export const KNOWN_EVENTS = new Set([
  ...['LEAD', 'DEAL', 'CONTACT', 'COMPANY'].flatMap((e) => ['ADD', 'UPDATE', 'DELETE'].map((a) => `ONCRM${e}${a}`)),
  'ONCRMDEALMOVETOCATEGORY',
  ...['LEAD', 'DEAL', 'CONTACT', 'COMPANY'].flatMap((e) => ['ADD', 'UPDATE', 'DELETE', 'SETENUMVALUES'].map((a) => `ONCRM${e}USERFIELD${a}`)),
  'ONTASKADD',
  'ONTASKUPDATE',
  'ONTASKDELETE',
  'ONTASKCOMMENTADD',
  'ONTASKCOMMENTUPDATE',
  'ONTASKCOMMENTDELETE',
  'ONAPPINSTALL',
  'ONAPPUNINSTALL',
  'ONAPPUPDATE',
  'ONAPPPAYMENT',
  'ONAPPTEST',
  'ONAPPMETHODCONFIRM',
  'ONOFFLINEEVENT',
]);

const TIMELINE_TYPES: Record<string, EntityKind> = { lead: 'lead', deal: 'deal', contact: 'contact', company: 'company' };

function filterParamObj(p: Params): Record<string, unknown> | undefined {
  return objectParam(p, 'filter');
}

// ---------------------------------------------------------------- directories and pipelines

function statusAccess(name: string): FieldAccess | undefined {
  const types: Record<string, string> = {
    ID: 'integer',
    ENTITY_ID: 'string',
    STATUS_ID: 'string',
    NAME: 'string',
    NAME_INIT: 'string',
    SORT: 'integer',
    SYSTEM: 'char',
    CATEGORY_ID: 'integer',
    COLOR: 'string',
    SEMANTICS: 'string',
  };
  const t = types[name];
  return t ? scalar(t, name) : undefined;
}

function statusList(p: Params, ctx: CallCtx): MethodResult {
  const conds = compileFilter(filterParamObj(p), statusAccess);
  const order = objectParam(p, 'order');
  const keys = compileOrder(order && Object.keys(order).length ? order : { ENTITY_ID: 'ASC', SORT: 'ASC' }, statusAccess);
  const rows = sortRecords(
    ctx.portal.state.statuses.filter((s) => matches(s as unknown as Record<string, unknown>, conds)) as unknown as Array<Record<string, unknown>>,
    keys,
  );
  return { result: structuredClone(rows), total: rows.length };
}

function categoryRow(c: BCategory): Record<string, unknown> {
  return structuredClone(c) as unknown as Record<string, unknown>;
}

function dealCategories(ctx: CallCtx) {
  return ctx.portal.state.categories.filter((c) => c.entityTypeId === 2).sort((a, b) => a.sort - b.sort || a.id - b.id);
}

function entityTypeIdParam(p: Params): number {
  const v = p.entityTypeId ?? p.ENTITY_TYPE_ID ?? p.entityTypeID;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new BxError(400, 'NOT_FOUND', 'Smart process not found');
  return n;
}

function registerDirectories(reg: Registry): void {
  reg.set('crm.status.list', { scope: 'crm', handler: statusList });

  reg.set('crm.status.entity.types', {
    scope: 'crm',
    handler: (_p, ctx) => {
      const ids = [...new Set(ctx.portal.state.statuses.map((s) => s.ENTITY_ID))];
      return {
        result: ids.map((id) => {
          const m = /^DEAL_STAGE(?:_(\d+))?$/.exec(id);
          const row: Record<string, unknown> = { ID: id, NAME: id };
          if (m) {
            row.SEMANTIC_INFO = {};
            if (m[1]) Object.assign(row, { PREFIX: `C${m[1]}`, FIELD_ATTRIBUTE_SCOPE: `category_${m[1]}`, ENTITY_TYPE_ID: 2 });
          }
          return row;
        }),
      };
    },
  });

  reg.set('crm.status.entity.items', {
    scope: 'crm',
    handler: (p, ctx) => {
      const id = String(param(p, 'entityId') ?? '');
      if (!id) throw errors.argument('entityId is required.');
      return {
        result: ctx.portal.state.statuses
          .filter((s) => s.ENTITY_ID === id)
          .sort((a, b) => Number(a.SORT) - Number(b.SORT))
          .map((s) => ({ NAME: s.NAME, SORT: Number(s.SORT), STATUS_ID: s.STATUS_ID })),
      };
    },
  });

  // crm.category.list (entityTypeId 2 = deal pipelines; fixture crm.category.list.json). Other types have no
  // categories in this portal.
  reg.set('crm.category.list', {
    scope: 'crm',
    handler: (p, ctx) => {
      const type = entityTypeIdParam(p);
      if (type !== 2) throw new BxError(400, 'NOT_FOUND', 'Smart process not found');
      const rows = dealCategories(ctx).map(categoryRow);
      return { result: { categories: rows }, total: rows.length };
    },
  });

  reg.set('crm.category.get', {
    scope: 'crm',
    handler: (p, ctx) => {
      const type = entityTypeIdParam(p);
      if (type !== 2) throw new BxError(400, 'NOT_FOUND', 'Smart process not found');
      const id = Number(param(p, 'id'));
      const c = dealCategories(ctx).find((x) => x.id === id);
      if (!c) throw new BxError(400, 'NOT_FOUND', 'Category not found');
      return { result: { category: categoryRow(c) } };
    },
  });

  // Deprecated deal-category methods (§7.6): UPPER_CASE rows, the default pipeline only via default.get.
  const oldRow = (c: { id: number; name: string; sort: number }) => ({
    ID: String(c.id),
    CREATED_DATE: '2023-01-10T10:00:00+03:00',
    NAME: c.name,
    IS_LOCKED: 'N',
    SORT: String(c.sort),
  });
  reg.set('crm.dealcategory.list', {
    scope: 'crm',
    handler: (p, ctx) =>
      paginate(
        dealCategories(ctx)
          .filter((c) => c.id !== 0)
          .map(oldRow),
        param(p, 'start'),
      ),
  });
  reg.set('crm.dealcategory.get', {
    scope: 'crm',
    handler: (p, ctx) => {
      const id = idParam(p);
      const c = dealCategories(ctx).find((x) => x.id === id);
      if (!c) throw errors.notFound();
      return { result: oldRow(c) };
    },
  });
  reg.set('crm.dealcategory.default.get', {
    scope: 'crm',
    handler: (_p, ctx) => {
      const c = dealCategories(ctx).find((x) => x.id === 0);
      return { result: { ID: 0, NAME: c?.name ?? 'General' } };
    },
  });
  reg.set('crm.dealcategory.stage.list', {
    scope: 'crm',
    handler: (p, ctx) => {
      const id = Number(param(p, 'id') ?? 0) || 0;
      if (!dealCategories(ctx).some((c) => c.id === id)) throw errors.notFound();
      return { result: dealStages(ctx.portal.state, id).map((s) => ({ NAME: s.NAME, SORT: Number(s.SORT), STATUS_ID: s.STATUS_ID })) };
    },
  });

  // crm.settings.mode.get: 1 classic (with leads), 2 simple (no leads).
  reg.set('crm.settings.mode.get', { scope: 'crm', handler: (_p, ctx) => ({ result: ctx.portal.state.mode === 'simple' ? 2 : 1 }) });
  reg.set('crm.enum.settings.mode', {
    scope: 'crm',
    handler: () => ({
      result: [
        { ID: 1, NAME: 'Classic CRM' },
        { ID: 2, NAME: 'Simple CRM' },
      ],
    }),
  });
}

// ---------------------------------------------------------------- duplicates and merging

/**
 * crm.duplicate.findbycomm (§7.7), as the core's `CCrmDuplicateRestProxy::processMethodRequest` runs it
 * (modules/crm/classes/general/restservice.php): each distinct value is one criterion, looked up with
 * `DuplicateCommunicationCriterion::find($entityTypeID, 20)`, i.e. at most 20 match rows per value ordered by
 * ENTITY_TYPE_ID (LEAD 1, CONTACT 3, COMPANY 4) then ENTITY_ID — so 20 leads with a number leave no room for
 * its contact. On top of that the documented rule (fact sheet §7.7, [D-FINDBYCOMM]) is kept as the strictest
 * reading: when one type has 20 or more hits the other types are not returned at all.
 *
 * Phones compare by the core's match code (`phoneMatch: 'core-normalized'`, the default, see phone.ts), or as
 * stored strings (`'exact'`, the fact sheet's older reading that formats must match). Emails ignore case.
 */
function findByComm(p: Params, ctx: CallCtx): MethodResult {
  const type = String(param(p, 'type') ?? '').toUpperCase();
  if (!type) throw new BxError(400, 'Communication type is not defined', "Parameter 'type' is required.");
  if (type !== 'PHONE' && type !== 'EMAIL') throw errors.crm(`Communication type '${type}' is not supported in current context.`);
  const raw = param(p, 'values');
  if (!Array.isArray(raw) && !isObject(raw)) throw errors.crm('Communication values is not defined.');
  const values = (Array.isArray(raw) ? raw : Object.values(raw)).map((v) => String(v));
  if (values.length === 0) throw errors.crm('Communication values is not defined.');
  if (values.length > 20) throw errors.crm('Too many communication values: at most 20 are allowed.');
  const et = param(p, 'entity_type');
  const types: Array<'LEAD' | 'CONTACT' | 'COMPANY'> = et ? [String(et).toUpperCase() as 'LEAD'] : ['LEAD', 'CONTACT', 'COMPANY'];
  for (const t of types) if (!['LEAD', 'CONTACT', 'COMPANY'].includes(t)) throw errors.crm(`Entity type '${t}' is not supported in current context.`);
  const exact = ctx.portal.phoneMatch() === 'exact' && type === 'PHONE';
  const code = (s: string) => (exact ? s.trim() : matchCode(type, s));
  const TYPE_ID = { LEAD: 1, CONTACT: 3, COMPANY: 4 } as const;
  // The match-code table: one row per (entity, distinct code).
  const rows: Array<{ t: 'LEAD' | 'CONTACT' | 'COMPANY'; id: number; code: string }> = [];
  for (const t of types) {
    const kind = t.toLowerCase() as EntityKind;
    if (kind === 'lead' && ctx.portal.state.mode === 'simple') continue;
    for (const rec of table(ctx.portal.state, kind).values()) {
      const codes = new Set(((rec[type] as BMulti[] | undefined) ?? []).map((m) => code(m.VALUE)).filter(Boolean));
      for (const c of codes) rows.push({ t, id: Number(rec.ID), code: c });
    }
  }
  rows.sort((a, b) => TYPE_ID[a.t] - TYPE_ID[b.t] || a.id - b.id);
  const hits: Record<string, number[]> = {};
  const seen = new Set<string>();
  let qty = 0;
  for (const v of values) {
    if (v === '') continue;
    const c = code(v);
    if (seen.has(c)) continue; // criteria are compared by their normalised value (`equals`)
    seen.add(c);
    for (const r of rows.filter((x) => x.code === c).slice(0, 20)) {
      const list = (hits[r.t] ??= []);
      if (!list.includes(r.id)) list.push(r.id);
    }
    if (++qty >= 20) break;
  }
  const big = Object.entries(hits).find(([, ids]) => ids.length >= 20);
  if (big) return { result: { [big[0]]: big[1] } };
  return { result: Object.keys(hits).length ? hits : [] };
}

/**
 * crm.entity.mergebatch (§8): merges duplicates into the first listed record; the others are deleted after
 * their multi-field values and links move over. Result `{STATUS, ENTITY_IDS}` lists the merged-away ids.
 */
function mergeBatch(p: Params, ctx: CallCtx): MethodResult {
  const params = objectParam(p, 'params', true)!;
  const type = Number(params.entityTypeId ?? params.ENTITY_TYPE_ID);
  const kind = ENTITY_BY_TYPE_ID[type];
  if (!kind) throw errors.crm('Entity type is not supported.');
  const rawIds = params.entityIds ?? params.ENTITY_IDS;
  const ids = (Array.isArray(rawIds) ? rawIds : isObject(rawIds) ? Object.values(rawIds) : []).map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
  if (ids.length < 2) throw errors.crm('At least two entity ids are required.');
  const state = ctx.portal.state;
  const t = table(state, kind);
  for (const id of ids) if (!t.has(id)) throw errors.notFound();
  const [seedId, ...rest] = ids as [number, ...number[]];
  const seed = t.get(seedId)!;
  for (const id of rest) {
    const other = t.get(id)!;
    for (const m of MULTI_FIELDS) {
      if (!Array.isArray(seed[m]) || !Array.isArray(other[m])) continue;
      const have = new Set((seed[m] as BMulti[]).map((x) => x.VALUE.trim().toLowerCase()));
      for (const v of other[m] as BMulti[]) {
        if (have.has(v.VALUE.trim().toLowerCase())) continue;
        (seed[m] as BMulti[]).push({ ...v, ID: String(nextId(state, 'fm')) });
        have.add(v.VALUE.trim().toLowerCase());
      }
    }
    for (const [k, v] of Object.entries(other)) if ((seed[k] === null || seed[k] === '') && v !== null && v !== '') seed[k] = v;
    const sid = String(id);
    const into = String(seedId);
    if (kind === 'contact') {
      for (const tb of [state.deals, state.leads]) {
        for (const r of tb.values()) {
          const list = [...new Set((r.CONTACT_IDS as string[]).map((x) => (x === sid ? into : x)))];
          r.CONTACT_IDS = list;
          r.CONTACT_ID = list[0] ?? null;
        }
      }
    }
    if (kind === 'company') {
      for (const tb of [state.deals, state.leads]) for (const r of tb.values()) if (r.COMPANY_ID === sid) r.COMPANY_ID = into;
      for (const r of state.contacts.values()) {
        const list = [...new Set((r.COMPANY_IDS as string[]).map((x) => (x === sid ? into : x)))];
        r.COMPANY_IDS = list;
        r.COMPANY_ID = list[0] ?? null;
      }
    }
    deleteRecord(state, kind, id);
  }
  if ('HAS_PHONE' in seed) {
    seed.HAS_PHONE = (seed.PHONE as BMulti[]).length ? 'Y' : 'N';
    seed.HAS_EMAIL = (seed.EMAIL as BMulti[]).length ? 'Y' : 'N';
  }
  seed.DATE_MODIFY = phpDate(ctx.portal.now());
  seed.MODIFY_BY_ID = String(ctx.auth.userId);
  return { result: { STATUS: 'SUCCESS', ENTITY_IDS: rest } };
}

// ---------------------------------------------------------------- timeline and activities

function timelineAccess(name: string): FieldAccess | undefined {
  const types: Record<string, string> = {
    ID: 'integer',
    ENTITY_ID: 'integer',
    ENTITY_TYPE: 'string',
    AUTHOR_ID: 'user',
    CREATED: 'datetime',
    COMMENT: 'string',
  };
  const t = types[name];
  return t ? scalar(t, name) : undefined;
}

function activityAccess(name: string): FieldAccess | undefined {
  const types: Record<string, string> = {
    ID: 'integer',
    OWNER_ID: 'integer',
    OWNER_TYPE_ID: 'integer',
    TYPE_ID: 'integer',
    PROVIDER_ID: 'string',
    PROVIDER_TYPE_ID: 'string',
    SUBJECT: 'string',
    COMPLETED: 'char',
    STATUS: 'integer',
    RESPONSIBLE_ID: 'user',
    AUTHOR_ID: 'user',
    CREATED: 'datetime',
    LAST_UPDATED: 'datetime',
    DEADLINE: 'datetime',
    START_TIME: 'datetime',
    END_TIME: 'datetime',
    DIRECTION: 'integer',
    PRIORITY: 'integer',
  };
  const t = types[name];
  return t ? scalar(t, name) : undefined;
}

function selectRow(rec: BRecord, select: string[] | undefined): BRecord {
  if (!select || select.length === 0 || select.includes('*')) return structuredClone(rec);
  const out: BRecord = { ID: rec.ID };
  for (const s of select) {
    const k = s.toUpperCase();
    if (k in rec) out[k] = structuredClone(rec[k]);
  }
  return out;
}

function registerTimeline(reg: Registry): void {
  // §1.4, §7.8: only lower-case `fields` is accepted (crm 23.100.0+).
  reg.set('crm.timeline.comment.add', {
    scope: 'crm',
    handler: (p, ctx) => {
      const fields = p.fields;
      if (!isObject(fields)) throw new BxError(400, 'INVALID_ARG_VALUE', "Parameter 'fields' is required (lower-case).");
      const type = String(fields.ENTITY_TYPE ?? '').toLowerCase();
      const kind = TIMELINE_TYPES[type];
      const entityId = Number(fields.ENTITY_ID);
      const comment = fields.COMMENT === undefined || fields.COMMENT === null ? '' : String(fields.COMMENT);
      if (!kind || !Number.isSafeInteger(entityId) || entityId <= 0 || !comment.trim())
        throw new BxError(400, 'INVALID_ARG_VALUE', 'ENTITY_ID, ENTITY_TYPE and COMMENT are required.');
      if (!table(ctx.portal.state, kind).has(entityId)) throw new BxError(400, 'NOT_FOUND', 'Not found.');
      const id = nextId(ctx.portal.state, 'comment');
      const rec: BRecord = {
        ID: String(id),
        CREATED: phpDate(ctx.portal.now()),
        ENTITY_ID: String(entityId),
        ENTITY_TYPE: type,
        AUTHOR_ID: String(fields.AUTHOR_ID ?? ctx.auth.userId),
        COMMENT: comment,
      };
      ctx.portal.state.timelineComments.set(id, rec);
      return { result: id };
    },
  });

  reg.set('crm.timeline.comment.list', {
    scope: 'crm',
    handler: (p, ctx) => {
      // §7.8: the filter needs ENTITY_ID and ENTITY_TYPE; `order` takes ID, CREATED and AUTHOR_ID only.
      const f = filterParamObj(p) ?? {};
      const keys0 = Object.keys(f).map((k) => k.toUpperCase());
      if (!keys0.includes('ENTITY_ID') || !keys0.includes('ENTITY_TYPE'))
        throw new BxError(400, 'INVALID_ARG_VALUE', 'filter: ENTITY_ID and ENTITY_TYPE are required.');
      const conds = compileFilter(f, timelineAccess);
      const order = objectParam(p, 'order');
      for (const k of Object.keys(order ?? {}))
        if (!['ID', 'CREATED', 'AUTHOR_ID'].includes(k.toUpperCase())) throw new BxError(400, 'INVALID_ARG_VALUE', `order: ${k} is not sortable.`);
      const keys = compileOrder(order && Object.keys(order).length ? order : { ID: 'ASC' }, timelineAccess);
      const rows = sortRecords(
        [...ctx.portal.state.timelineComments.values()].filter((r) => matches(r, conds)),
        keys,
      );
      const page = paginate(rows, param(p, 'start'));
      return { ...page, result: (page.result as BRecord[]).map((r) => selectRow(r, listParam(p, 'select'))) };
    },
  });

  reg.set('crm.activity.list', {
    scope: 'crm',
    handler: (p, ctx) => {
      const conds = compileFilter(filterParamObj(p), activityAccess, ['CHECK_PERMISSIONS']);
      const order = objectParam(p, 'order');
      const keys = compileOrder(order && Object.keys(order).length ? order : { ID: 'ASC' }, activityAccess);
      const rows = sortRecords(
        [...ctx.portal.state.activities.values()].filter((r) => matches(r, conds)),
        keys,
      );
      const page = paginate(rows, param(p, 'start'));
      return { ...page, result: (page.result as BRecord[]).map((r) => selectRow(r, listParam(p, 'select'))) };
    },
  });
}

// ---------------------------------------------------------------- tasks

const TASK_KEYS: Record<string, keyof BTask> = {
  ID: 'id',
  TITLE: 'title',
  DESCRIPTION: 'description',
  RESPONSIBLE_ID: 'responsibleId',
  CREATED_BY: 'createdBy',
  CREATED_DATE: 'createdDate',
  CHANGED_DATE: 'changedDate',
  DEADLINE: 'deadline',
  STATUS: 'status',
  // §7.8: REAL_STATUS filters on the task's own status (the `status` field of the answer).
  REAL_STATUS: 'status',
  PRIORITY: 'priority',
  GROUP_ID: 'groupId',
  CLOSED_DATE: 'closedDate',
  UF_CRM_TASK: 'ufCrmTask',
};
const TASK_TYPES: Record<string, string> = {
  ID: 'integer',
  TITLE: 'string',
  DESCRIPTION: 'string',
  RESPONSIBLE_ID: 'user',
  CREATED_BY: 'user',
  CREATED_DATE: 'datetime',
  CHANGED_DATE: 'datetime',
  DEADLINE: 'datetime',
  STATUS: 'integer',
  REAL_STATUS: 'integer',
  PRIORITY: 'integer',
  GROUP_ID: 'integer',
  CLOSED_DATE: 'datetime',
  UF_CRM_TASK: 'string',
};

function taskAccess(name: string): FieldAccess | undefined {
  const key = TASK_KEYS[name];
  const type = TASK_TYPES[name];
  if (!key || !type) return undefined;
  return { type, values: (r) => (Array.isArray(r[key]) ? (r[key] as unknown[]) : [r[key]]) };
}

function taskView(t: BTask, select: string[] | undefined): Record<string, unknown> {
  if (!select || select.length === 0 || select.includes('*')) return structuredClone(t) as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { id: t.id };
  for (const s of select) {
    const k = TASK_KEYS[s.toUpperCase()];
    if (k) out[k] = structuredClone(t[k]);
  }
  return out;
}

function registerTasks(reg: Registry): void {
  // tasks.task.add {fields:{TITLE*, RESPONSIBLE_ID*, …}} → {task:{id:"…", …}} in camelCase with string numbers (§7.8).
  reg.set('tasks.task.add', {
    scope: 'task',
    handler: (p, ctx) => {
      const fields = p.fields ?? p.FIELDS ?? p['0'];
      if (!isObject(fields)) throw new BxError(400, 'ERROR_CORE', "Parameter 'fields' is required.");
      const f = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k.toUpperCase(), v]));
      const title = f.TITLE === undefined ? '' : String(f.TITLE).trim();
      if (!title) throw new BxError(400, 'ERROR_CORE', 'TITLE: the task title is required.');
      const responsible = Number(f.RESPONSIBLE_ID ?? ctx.auth.userId);
      if (!ctx.portal.state.users.some((u) => Number(u.ID) === responsible))
        throw new BxError(400, 'ERROR_CORE', `RESPONSIBLE_ID: user ${String(f.RESPONSIBLE_ID)} is not found.`);
      const now = phpDate(ctx.portal.now());
      const deadline = f.DEADLINE !== undefined && f.DEADLINE !== '' ? parseBxDate(f.DEADLINE) : undefined;
      if (f.DEADLINE !== undefined && f.DEADLINE !== '' && deadline === undefined) throw new BxError(400, 'ERROR_CORE', 'DEADLINE: not a date.');
      const uf = f.UF_CRM_TASK;
      const bindings = (Array.isArray(uf) ? uf : isObject(uf) ? Object.values(uf) : uf ? [uf] : []).map(String);
      for (const b of bindings) {
        const m = /^(L|D|C|CO)_(\d+)$/.exec(b);
        if (!m) throw new BxError(400, 'ERROR_CORE', `UF_CRM_TASK: "${b}" is not a CRM binding like D_12.`);
      }
      const id = nextId(ctx.portal.state, 'task');
      const task: BTask = {
        id: String(id),
        title,
        description: f.DESCRIPTION === undefined ? '' : String(f.DESCRIPTION),
        responsibleId: String(responsible),
        createdBy: String(f.CREATED_BY ?? ctx.auth.userId),
        createdDate: now,
        changedDate: now,
        deadline: deadline === undefined ? null : phpDate(deadline),
        status: '2',
        priority: String(f.PRIORITY ?? '1'),
        groupId: String(f.GROUP_ID ?? '0'),
        closedDate: null,
        ufCrmTask: bindings,
      };
      ctx.portal.state.tasks.set(id, task);
      ctx.portal.emit('ONTASKADD', { FIELDS_AFTER: { ID: String(id) } }, ctx.auth.userId);
      return { result: { task: structuredClone(task) } };
    },
  });

  reg.set('tasks.task.get', {
    scope: 'task',
    handler: (p, ctx) => {
      const id = Number(p.taskId ?? p.TASKID ?? p.id ?? p.ID);
      const t = ctx.portal.state.tasks.get(id);
      if (!t) throw new BxError(400, 'ERROR_CORE', 'Task not found or not accessible.');
      return { result: { task: taskView(t, listParam(p, 'select')) } };
    },
  });

  // tasks.task.complete {taskId}: the task goes to status 5, "completed" (§7.8); the answer carries the task.
  reg.set('tasks.task.complete', {
    scope: 'task',
    handler: (p, ctx) => {
      const raw = p.taskId ?? p.TASKID ?? p.taskid;
      const id = Number(raw);
      if (raw === undefined || !Number.isSafeInteger(id) || id <= 0) throw new BxError(400, 'ERROR_CORE', "Parameter 'taskId' is required.");
      const t = ctx.portal.state.tasks.get(id);
      if (!t) throw new BxError(400, 'ERROR_CORE', 'Task not found or not accessible.');
      // UNVERIFIED: the portal refuses an action the task's state does not allow; completing a completed task is one.
      if (t.status === '5') throw new BxError(400, 'ERROR_CORE', 'Action is not allowed.');
      const now = phpDate(ctx.portal.now());
      t.status = '5';
      t.closedDate = now;
      t.changedDate = now;
      ctx.portal.emit('ONTASKUPDATE', { FIELDS_AFTER: { ID: String(id) } }, ctx.auth.userId);
      return { result: { task: structuredClone(t) } };
    },
  });

  // tasks.task.list: {tasks:[…]} plus total/next; select/filter/order use UPPER_CASE names (§4.1, §7.8).
  reg.set('tasks.task.list', {
    scope: 'task',
    handler: (p, ctx) => {
      const conds = compileFilter(filterParamObj(p), taskAccess);
      const order = objectParam(p, 'order');
      const keys = compileOrder(order && Object.keys(order).length ? order : { ID: 'ASC' }, taskAccess);
      const rows = sortRecords(
        [...ctx.portal.state.tasks.values()].map((t) => t as unknown as Record<string, unknown>).filter((r) => matches(r, conds)),
        keys,
      );
      const page = paginate(rows, param(p, 'start'));
      const select = listParam(p, 'select');
      return { ...page, result: { tasks: (page.result as unknown as BTask[]).map((t) => taskView(t, select)) } };
    },
  });
}

// ---------------------------------------------------------------- users and system

const USER_TYPES: Record<string, string> = {
  ID: 'integer',
  ACTIVE: 'boolean',
  NAME: 'string',
  LAST_NAME: 'string',
  EMAIL: 'string',
  UF_DEPARTMENT: 'integer',
  IS_ONLINE: 'char',
  PERSONAL_GENDER: 'string',
  DATE_REGISTER: 'datetime',
  LAST_LOGIN: 'datetime',
};

function userAccess(name: string): FieldAccess | undefined {
  const t = USER_TYPES[name];
  if (!t) return undefined;
  return { type: t, values: (r) => (Array.isArray(r[name]) ? (r[name] as unknown[]) : [r[name]]) };
}

function userById(ctx: CallCtx, id: number): BUser {
  const u = ctx.portal.state.users.find((x) => Number(x.ID) === id);
  if (!u) throw errors.noAuth();
  return u;
}

/** Every scope the emulator knows; a webhook/app gets the ones configured. */
export const ALL_SCOPES = ['crm', 'department', 'task', 'telephony', 'user', 'user_brief', 'user_basic'];

function registerSystem(reg: Registry): void {
  // user.get: filter by top-level field names or FILTER, sort/order, paging (§2.3, §4.1).
  reg.set('user.get', {
    scope: 'user',
    handler: (p, ctx) => {
      const filter: Record<string, unknown> = { ...(objectParam(p, 'filter') ?? {}) };
      for (const [k, v] of Object.entries(p)) if (USER_TYPES[k.replace(/^[!<>=%@]+/, '').toUpperCase()] && !['sort', 'order'].includes(k)) filter[k] = v;
      const conds = compileFilter(filter, userAccess);
      const sortField = p.sort ?? p.SORT;
      const dir = p.order ?? p.ORDER;
      const keys = compileOrder(typeof sortField === 'string' ? { [sortField]: typeof dir === 'string' ? dir : 'ASC' } : { ID: 'ASC' }, userAccess);
      const rows = sortRecords(
        ctx.portal.state.users.map((u) => u as unknown as Record<string, unknown>).filter((r) => matches(r, conds)),
        keys,
      );
      const page = paginate(rows, param(p, 'start'));
      return { ...page, result: structuredClone(page.result) };
    },
  });

  reg.set('user.current', { scope: 'user', handler: (_p, ctx) => ({ result: structuredClone(userById(ctx, ctx.auth.userId)) }) });

  reg.set('profile', {
    scope: null,
    handler: (_p, ctx) => {
      const u = userById(ctx, ctx.auth.userId);
      return {
        result: {
          ID: u.ID,
          ADMIN: ctx.portal.state.adminIds.includes(Number(u.ID)),
          NAME: u.NAME,
          LAST_NAME: u.LAST_NAME,
          PERSONAL_GENDER: u.PERSONAL_GENDER,
          PERSONAL_PHOTO: '',
          TIME_ZONE: 'Europe/Moscow',
          TIME_ZONE_OFFSET: 10800,
        },
      };
    },
  });

  reg.set('department.get', {
    scope: 'department',
    handler: (p, ctx) => {
      const filter: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(p)) if (['ID', 'NAME', 'PARENT', 'UF_HEAD', 'SORT'].includes(k.toUpperCase())) filter[k.toUpperCase()] = v;
      const acc = (n: string): FieldAccess | undefined =>
        ['ID', 'NAME', 'PARENT', 'UF_HEAD', 'SORT'].includes(n) ? scalar(n === 'NAME' ? 'string' : 'integer', n) : undefined;
      const conds = compileFilter(filter, acc);
      const rows = ctx.portal.state.departments.map((d) => d as unknown as Record<string, unknown>).filter((r) => matches(r, conds));
      const page = paginate(rows, param(p, 'start'));
      return { ...page, result: structuredClone(page.result) };
    },
  });

  // app.info (§2.3): webhook → {SCOPE, LICENSE}; app → the application record.
  reg.set('app.info', {
    scope: null,
    handler: (_p, ctx) => {
      if (ctx.auth.kind === 'webhook') return { result: { SCOPE: [...ctx.auth.scopes], LICENSE: ctx.portal.license() } };
      return {
        result: {
          ID: 7,
          CODE: ctx.auth.clientId ?? '',
          VERSION: 1,
          STATUS: 'L',
          INSTALLED: true,
          PAYMENT_EXPIRED: 'N',
          DAYS: null,
          LANGUAGE_ID: 'en',
          LICENSE: ctx.portal.license(),
          LICENSE_TYPE: ctx.portal.license().split('_')[1] ?? 'project',
          LICENSE_FAMILY: ctx.portal.license().split('_')[1] ?? 'project',
        },
      };
    },
  });

  reg.set('scope', {
    scope: null,
    handler: (p, ctx) => ({ result: flag(p.full, false) ? ctx.portal.allScopes() : [...ctx.auth.scopes] }),
  });

  reg.set('methods', {
    scope: null,
    handler: (p, ctx) => {
      const scope = typeof p.scope === 'string' ? p.scope : undefined;
      if (flag(p.full, false)) return { result: ctx.portal.methodNames() };
      const granted = new Set([...ctx.auth.scopes, '']);
      return { result: ctx.portal.methodNames(scope).filter((m) => scope !== undefined || granted.has(reg.get(m)?.scope ?? '')) };
    },
  });

  reg.set('method.get', {
    scope: null,
    handler: (p, ctx) => {
      const name = String(p.name ?? '').toLowerCase();
      const def = reg.get(name);
      return { result: { isExisting: !!def, isAvailable: !!def && (def.scope === null || ctx.auth.scopes.includes(def.scope)) } };
    },
  });
}

// Events (§9) are registered by event-methods.ts.

// ---------------------------------------------------------------- registration

export function registerMethods(reg: Registry): void {
  registerDirectories(reg);
  reg.set('crm.duplicate.findbycomm', { scope: 'crm', handler: findByComm });
  reg.set('crm.entity.mergebatch', { scope: 'crm', handler: mergeBatch });
  registerTimeline(reg);
  registerActivities(reg);
  registerTasks(reg);
  registerSystem(reg);
  registerTelephony(reg);
  registerImport(reg);
}
