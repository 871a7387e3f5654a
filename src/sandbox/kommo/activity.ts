/** Notes, tasks, events and webhook subscriptions (fact sheet §9, §10.1). */
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, jsonBody, requestIdOf, selfLink } from './context.js';
import { boolFilter, intFilter, onlyParams, rangeFilter, runList, stringFilter } from './list.js';
import { createdRef } from './render.js';
import { badParam, E, type FieldError, hal, noContent, Validation, validationError } from './responses.js';
import { refreshClosestTask } from './store.js';
import { entityIdCount, valueFilter } from './event-filters.js';
import { ENTITY_TYPES, entityMap, type EntityType, type KEvent, type KNote, type KTask, type KWebhook } from './types.js';
import { BodyReader } from './write.js';

// ---------------------------------------------------------------- notes (§9)

// §9 note types and their params: [required, optional]; `duration`/`call_status`/`call_result`… ints where noted.
const NOTE_PARAMS: Record<string, [string[], string[]]> = {
  common: [['text'], []],
  call_in: [
    ['uniq', 'duration', 'source', 'phone'],
    ['link', 'call_result', 'call_status'],
  ],
  call_out: [
    ['uniq', 'duration', 'source', 'phone'],
    ['link', 'call_result', 'call_status'],
  ],
  service_message: [['service', 'text'], []],
  extended_service_message: [['service', 'text'], []],
  geolocation: [['text', 'address', 'longitude', 'latitude'], []],
  sms_in: [['text', 'phone'], []],
  sms_out: [['text', 'phone'], []],
  attachment: [['file_uuid', 'file_name'], ['version_uuid']],
};
const INT_PARAMS = new Set(['duration', 'call_status']);

function renderNote(ctx: Ctx, entity: EntityType, n: KNote): Record<string, unknown> {
  return { ...n, params: { ...n.params }, _links: selfLink(ctx, `/api/v4/${entity}/${n.entity_id}/notes/${n.id}`) };
}

export function listNotes(ctx: Ctx, entity: EntityType, entityId?: number): EmuResponse {
  const all = [...ctx.state.notes[entity].values()];
  const items = entityId === undefined ? all : all.filter((n) => n.entity_id === entityId);
  const path = entityId === undefined ? `/api/v4/${entity}/notes` : `/api/v4/${entity}/${entityId}/notes`;
  const spec = {
    key: 'notes',
    filters: {
      id: intFilter<KNote>((n) => n.id),
      entity_id: intFilter<KNote>((n) => n.entity_id),
      note_type: stringFilter<KNote>((n) => n.note_type),
      updated_at: rangeFilter<KNote>((n) => n.updated_at),
    },
    order: { updated_at: (n: KNote) => n.updated_at, id: (n: KNote) => n.id },
  };
  return runList(ctx, path, items, spec, (n) => renderNote(ctx, entity, n));
}

export function getNote(ctx: Ctx, entity: EntityType, noteId: number, entityId?: number): EmuResponse {
  onlyParams(ctx, []);
  const n = ctx.state.notes[entity].get(noteId);
  if (!n || (entityId !== undefined && n.entity_id !== entityId)) return noContent();
  return hal(renderNote(ctx, entity, n));
}

/** §9: `[{entity_id, note_type, params, request_id?}]`; the entity must exist. */
export function createNotes(ctx: Ctx, entity: EntityType, entityId?: number): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    let note: Omit<KNote, 'id'> | undefined;
    if (!isObject(item)) errs.push(E.type('', 'object'));
    else {
      const r = new BodyReader(item, '', errs, [
        'entity_id',
        'note_type',
        'params',
        'request_id',
        'created_by',
        'responsible_user_id',
        'created_at',
        'updated_at',
        'is_need_to_trigger_digital_pipeline',
      ]);
      const target = entityId ?? r.int('entity_id');
      if (entityId === undefined && !r.has('entity_id')) errs.push(E.blank('entity_id'));
      else if (typeof target === 'number' && !entityMap(ctx.state, entity).has(target)) errs.push(E.choice('entity_id'));
      const type = r.str('note_type');
      const spec = type !== undefined ? NOTE_PARAMS[type] : undefined;
      if (!r.has('note_type')) errs.push(E.blank('note_type'));
      else if (type !== undefined && !spec) errs.push(E.choice('note_type'));
      const params = r.object('params');
      if (!r.has('params')) errs.push(E.blank('params'));
      if (params && spec) {
        const pr = new BodyReader(params, 'params.', errs, [...spec[0], ...spec[1]]);
        for (const k of spec[0]) if (!pr.has(k)) errs.push(E.blank(pr.path(k)));
        for (const k of Object.keys(params)) {
          if (INT_PARAMS.has(k)) pr.int(k, { min: 0 });
          else if (k !== 'longitude' && k !== 'latitude') pr.str(k);
        }
      }
      const responsible = r.user(ctx, 'responsible_user_id');
      const createdBy = r.user(ctx, 'created_by', true);
      const createdAt = r.int('created_at', { min: 0 }) ?? undefined;
      r.str('request_id');
      r.bool('is_need_to_trigger_digital_pipeline');
      if (!errs.length && typeof target === 'number' && type && params) {
        const resp = responsible ?? ctx.userId;
        const at = createdAt ?? ctx.now;
        note = {
          entity_id: target,
          created_by: createdBy ?? ctx.userId,
          updated_by: createdBy ?? ctx.userId,
          created_at: at,
          updated_at: at,
          responsible_user_id: resp,
          group_id: ctx.state.users.get(resp)?.rights.group_id ?? 0,
          note_type: type,
          params: { ...params },
          account_id: ctx.state.account.id,
        };
      }
    }
    v.add(requestIdOf(item, i), errs);
    return note;
  });
  v.throwIfFailed();
  const out = plans.map((n, i) => {
    const id = ctx.state.nextId.note++;
    ctx.state.notes[entity].set(id, { id, ...n! });
    return { id, entity_id: n!.entity_id, request_id: requestIdOf(items[i], i), _links: selfLink(ctx, `/api/v4/${entity}/${n!.entity_id}/notes/${id}`) };
  });
  return hal({ _links: selfLink(ctx, `/api/v4/${entity}/notes`), _embedded: { notes: out } });
}

// ---------------------------------------------------------------- tasks (§9)

function renderTask(ctx: Ctx, t: KTask): Record<string, unknown> {
  const { result, complete_till, account_id, ...head } = t;
  return { ...head, ...(result ? { result: { ...result } } : {}), complete_till, account_id, _links: selfLink(ctx, `/api/v4/tasks/${t.id}`) };
}

export function listTasks(ctx: Ctx): EmuResponse {
  const f = ctx.params.filter;
  // §9: filter[entity_id] needs filter[entity_type].
  if (isObject(f) && f.entity_id !== undefined && f.entity_type === undefined) throw badParam('filter.entity_id');
  const spec = {
    key: 'tasks',
    filters: {
      id: intFilter<KTask>((t) => t.id),
      responsible_user_id: intFilter<KTask>((t) => t.responsible_user_id),
      is_completed: boolFilter<KTask>((t) => t.is_completed),
      task_type: intFilter<KTask>((t) => t.task_type_id),
      entity_type: stringFilter<KTask>((t) => t.entity_type),
      entity_id: intFilter<KTask>((t) => t.entity_id),
      updated_at: rangeFilter<KTask>((t) => t.updated_at),
    },
    order: { created_at: (t: KTask) => t.created_at, complete_till: (t: KTask) => t.complete_till, id: (t: KTask) => t.id },
  };
  return runList(ctx, '/api/v4/tasks', ctx.state.tasks.values(), spec, (t) => renderTask(ctx, t));
}

export function getTask(ctx: Ctx, id: number): EmuResponse {
  onlyParams(ctx, []);
  const t = ctx.state.tasks.get(id);
  return t ? hal(renderTask(ctx, t)) : noContent();
}

const TASK_KEYS = [
  'responsible_user_id',
  'entity_id',
  'entity_type',
  'is_completed',
  'task_type_id',
  'text',
  'duration',
  'complete_till',
  'result',
  'created_by',
  'updated_by',
  'created_at',
  'updated_at',
  'request_id',
];

/** §9: text, deadline and responsible user are mandatory on create; entity_id needs entity_type. */
function readTask(ctx: Ctx, item: unknown, errs: FieldError[], current?: KTask): (() => number) | undefined {
  if (!isObject(item)) return void errs.push(E.type('', 'object'));
  const r = new BodyReader(item, '', errs, current ? [...TASK_KEYS, 'id'] : TASK_KEYS);
  if (!current) for (const k of ['text', 'complete_till', 'responsible_user_id']) if (!r.has(k)) errs.push(E.blank(k));
  const text = r.str('text');
  if (text !== undefined && !text.trim()) errs.push(E.blank('text'));
  const due = r.int('complete_till', { min: 0 }) ?? undefined;
  const responsible = r.user(ctx, 'responsible_user_id');
  const type = r.int('task_type_id') ?? undefined;
  if (type !== undefined && !ctx.state.account.task_types.some((t) => t.id === type)) errs.push(E.choice('task_type_id'));
  const etype = r.str('entity_type');
  if (etype !== undefined && !ENTITY_TYPES.includes(etype as EntityType)) errs.push(E.choice('entity_type'));
  const eid = r.int('entity_id') ?? undefined;
  if (eid !== undefined && etype === undefined && !current?.entity_type) errs.push(E.blank('entity_type'));
  const target = (etype ?? current?.entity_type) as EntityType | undefined;
  if (eid !== undefined && target && ENTITY_TYPES.includes(target) && !entityMap(ctx.state, target).has(eid)) errs.push(E.choice('entity_id'));
  const done = r.bool('is_completed');
  const duration = r.int('duration', { min: 0 }) ?? undefined;
  const result = r.object('result');
  if (result) new BodyReader(result, 'result.', errs, ['text']).str('text');
  // §9: completing a task takes its result with it ("result and is_completed should be passed").
  const resultText = result && typeof result.text === 'string' ? result.text.trim() : '';
  if (done === true && current && !current.is_completed && !resultText) errs.push(E.blank('result.text'));
  const by = r.user(ctx, 'updated_by', true) ?? ctx.userId;
  const createdBy = r.user(ctx, 'created_by', true);
  const createdAt = r.int('created_at', { min: 0 }) ?? undefined;
  const updatedAt = r.int('updated_at', { min: 0 }) ?? undefined;
  r.str('request_id');
  if (errs.length) return undefined;
  return () => {
    const s = ctx.state;
    const before = current ? { type: current.entity_type, id: current.entity_id } : undefined;
    const t: KTask = current ?? {
      id: s.nextId.task++,
      created_by: createdBy ?? ctx.userId,
      updated_by: by,
      created_at: createdAt ?? ctx.now,
      updated_at: ctx.now,
      responsible_user_id: responsible!,
      group_id: 0,
      entity_id: null,
      entity_type: null,
      duration: 0,
      is_completed: false,
      task_type_id: 1,
      text: '',
      complete_till: due!,
      account_id: s.account.id,
    };
    if (text !== undefined) t.text = text;
    if (due !== undefined) t.complete_till = due;
    if (responsible !== undefined) t.responsible_user_id = responsible;
    t.group_id = s.users.get(t.responsible_user_id)?.rights.group_id ?? 0;
    if (type !== undefined) t.task_type_id = type;
    if (target && eid !== undefined) {
      t.entity_type = target;
      t.entity_id = eid;
    }
    if (done !== undefined) t.is_completed = done;
    if (duration !== undefined) t.duration = duration;
    if (result && typeof result.text === 'string') t.result = { text: result.text };
    t.updated_by = by;
    t.updated_at = updatedAt ?? ctx.now;
    s.tasks.set(t.id, t);
    if (before?.type && before.id) refreshClosestTask(s, before.type, before.id);
    if (t.entity_type && t.entity_id) refreshClosestTask(s, t.entity_type, t.entity_id);
    return t.id;
  };
}

export function createTasks(ctx: Ctx): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    const plan = readTask(ctx, item, errs);
    v.add(requestIdOf(item, i), errs);
    return plan;
  });
  v.throwIfFailed();
  const out = plans.map((apply, i) => createdRef(ctx, 'tasks', apply!(), requestIdOf(items[i], i)));
  return hal({ _links: selfLink(ctx, '/api/v4/tasks'), _embedded: { tasks: out } });
}

const taskUpdated = (ctx: Ctx, id: number, rid: string) => ({
  id,
  updated_at: ctx.state.tasks.get(id)!.updated_at,
  request_id: rid,
  _links: selfLink(ctx, `/api/v4/tasks/${id}`),
});

export function updateTasks(ctx: Ctx, single?: number): EmuResponse {
  onlyParams(ctx, []);
  if (single !== undefined) {
    const body = jsonBody(ctx);
    const errs: FieldError[] = [];
    const current = ctx.state.tasks.get(single);
    if (!isObject(body)) errs.push(E.type('', 'object'));
    const apply = current && isObject(body) ? readTask(ctx, body, errs, current) : (errs.push(E.choice('id')), undefined);
    if (!apply) throw validationError([{ request_id: requestIdOf(body, 0), errors: errs }]);
    return hal(taskUpdated(ctx, apply(), requestIdOf(body, 0)));
  }
  const items = arrayBody(ctx);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    const id = isObject(item) ? item.id : undefined;
    const current = typeof id === 'number' ? ctx.state.tasks.get(id) : undefined;
    const plan = current ? readTask(ctx, item, errs, current) : (errs.push(id === undefined ? E.blank('id') : E.choice('id')), undefined);
    v.add(requestIdOf(item, i), errs);
    return plan;
  });
  v.throwIfFailed();
  return hal({ _links: selfLink(ctx, '/api/v4/tasks'), _embedded: { tasks: plans.map((apply, i) => taskUpdated(ctx, apply!(), requestIdOf(items[i], i))) } });
}

// ---------------------------------------------------------------- events (§9)

const PLURAL: Record<KEvent['entity_type'], string> = { lead: 'leads', contact: 'contacts', company: 'companies', task: 'tasks' };

function renderEvent(ctx: Ctx, e: KEvent): Record<string, unknown> {
  return {
    ...e,
    _links: selfLink(ctx, `/api/v4/events/${e.id}`),
    _embedded: { entity: { id: e.entity_id, _links: selfLink(ctx, `/api/v4/${PLURAL[e.entity_type]}/${e.entity_id}`) } },
  };
}

/** §9: filters created_at, created_by, entity, entity_id (needs entity), type; newest first; limit ≤100 (RU doc). */
export function listEvents(ctx: Ctx): EmuResponse {
  const f = ctx.params.filter;
  if (isObject(f) && f.entity_id !== undefined && f.entity === undefined) throw badParam('filter.entity_id');
  if (isObject(f) && entityIdCount(f.entity_id) > 10) throw badParam('filter.entity_id');
  const spec = {
    key: 'events',
    maxLimit: 100,
    filters: {
      id: stringFilter<KEvent>((e) => e.id),
      type: stringFilter<KEvent>((e) => e.type),
      entity: stringFilter<KEvent>((e) => e.entity_type),
      entity_id: intFilter<KEvent>((e) => e.entity_id),
      created_by: intFilter<KEvent>((e) => e.created_by),
      created_at: rangeFilter<KEvent>((e) => e.created_at),
      value_before: valueFilter('value_before'),
      value_after: valueFilter('value_after'),
    },
  };
  return runList(ctx, '/api/v4/events', [...ctx.state.events].reverse(), spec, (e) => renderEvent(ctx, e));
}

export function getEvent(ctx: Ctx, id: string): EmuResponse {
  onlyParams(ctx, []);
  const e = ctx.state.events.find((x) => x.id === id);
  return e ? hal(renderEvent(ctx, e)) : noContent();
}

// ---------------------------------------------------------------- webhooks (§10.1)

const ACTIONS = ['add', 'update', 'delete', 'restore', 'status', 'responsible', 'note'];
const WEBHOOK_SETTINGS = new Set([
  ...['lead', 'contact', 'company', 'customer'].flatMap((e) => ACTIONS.map((a) => `${a}_${e}`)),
  'add_task',
  'update_task',
  'delete_task',
  'responsible_task',
  'add_unsorted',
  'update_unsorted',
  'delete_unsorted',
  'add_talk',
  'update_talk',
  'add_message',
  'add_outgoing_message',
]);

const renderWebhook = (w: KWebhook) => ({ ...w, settings: [...w.settings] });

export function listWebhooks(ctx: Ctx): EmuResponse {
  const spec = { key: 'webhooks', totalItems: true, unpaged: true, filters: { destination: stringFilter<KWebhook>((w) => w.destination) } };
  return runList(ctx, '/api/v4/webhooks', ctx.state.webhooks.values(), spec, renderWebhook);
}

/** §10.1: `{destination, settings, sort?}`; subscribing an existing destination replaces its settings. */
export function createWebhook(ctx: Ctx): EmuResponse {
  onlyParams(ctx, []);
  const body = jsonBody(ctx);
  const errs: FieldError[] = [];
  if (!isObject(body)) throw validationError([{ request_id: '0', errors: [E.type('', 'object')] }]);
  const r = new BodyReader(body, '', errs, ['destination', 'settings', 'sort']);
  const dest = r.str('destination');
  if (dest === undefined && !r.has('destination')) errs.push(E.blank('destination'));
  if (dest !== undefined && !/^https?:\/\/\S+$/.test(dest)) errs.push(E.choice('destination'));
  const settings = r.array('settings');
  if (!r.has('settings')) errs.push(E.blank('settings'));
  settings?.forEach((x, i) => (typeof x === 'string' && WEBHOOK_SETTINGS.has(x) ? undefined : errs.push(E.choice(`settings.${i}`))));
  const sort = r.int('sort', { min: 0 }) ?? undefined;
  if (errs.length) throw validationError([{ request_id: '0', errors: errs }]);
  const s = ctx.state;
  let w = [...s.webhooks.values()].find((x) => x.destination === dest);
  // §10.1: at most 100 webhooks per account.
  if (!w && s.webhooks.size >= 100) throw validationError([{ request_id: '0', errors: [E.choice('destination')] }]);
  if (w) {
    // §10.2: a webhook Kommo disabled is enabled again by saving it again.
    w.disabled = false;
    w.settings = settings as string[];
    w.updated_at = ctx.now;
    if (sort !== undefined) w.sort = sort;
  } else {
    w = {
      id: s.nextId.webhook++,
      destination: dest!,
      created_at: ctx.now,
      updated_at: ctx.now,
      account_id: s.account.id,
      created_by: ctx.userId,
      sort: sort ?? 1,
      disabled: false,
      settings: settings as string[],
    };
    s.webhooks.set(w.id, w);
  }
  return hal(renderWebhook(w));
}

/** §10.1: deletion is by destination (JSON body), not by id. */
export function deleteWebhook(ctx: Ctx): EmuResponse {
  onlyParams(ctx, []);
  const body = jsonBody(ctx);
  const errs: FieldError[] = [];
  if (!isObject(body)) throw validationError([{ request_id: '0', errors: [E.type('', 'object')] }]);
  const dest = new BodyReader(body, '', errs, ['destination']).str('destination');
  const w = [...ctx.state.webhooks.values()].find((x) => x.destination === dest);
  if (!errs.length && !w) errs.push(E.choice('destination'));
  if (errs.length || !w) throw validationError([{ request_id: '0', errors: errs.length ? errs : [E.blank('destination')] }]);
  ctx.state.webhooks.delete(w.id);
  return noContent();
}
