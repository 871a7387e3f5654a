/**
 * The CRM compat entity methods `crm.{lead,deal,contact,company}.{list,get,add,update,delete,fields}` and
 * their user fields (fact sheet §7.2–§7.5), plus the record writer the demo data also goes through.
 */
import { automationsOf } from './automations.js';
import type { CallCtx, MethodResult, Portal, Registry } from './context.js';
import { paginate } from './context.js';
import { BxError, errors } from './errors.js';
import { compileFilter, compileOrder, matches, scalar, sortRecords, type FieldAccess } from './filter.js';
import { flag, idParam, isObject, listParam, objectParam, param, type Params } from './params.js';
import {
  ENTITY_FIELDS,
  ENTITY_ROW,
  MULTI_DEFAULT_TYPE,
  MULTI_FIELDS,
  UF_ENTITY,
  describeField,
  fieldMap,
  type EntityKind,
  type FieldDef,
  type MultiType,
} from './schema.js';
import {
  categoryOfStage,
  dealStages,
  findStatus,
  nextId,
  semanticOf,
  stageEntityId,
  table,
  type BMulti,
  type BRecord,
  type BUserField,
  type BitrixState,
} from './state.js';
import { parseBxDate, phpDate } from './time.js';

export const PORTAL_CURRENCY = 'RUB';

const EVENT_NAME: Record<EntityKind, string> = { lead: 'LEAD', deal: 'DEAL', contact: 'CONTACT', company: 'COMPANY' };

// ---------------------------------------------------------------- value conversion

function isMulti(name: string): name is MultiType {
  return (MULTI_FIELDS as readonly string[]).includes(name);
}

/** Stores a written value in the portal's representation (ids and numbers as strings, flags Y/N, §3). */
function storeValue(d: FieldDef, v: unknown): unknown {
  if (v === undefined) return undefined;
  if (Array.isArray(v) || isObject(v)) return undefined;
  switch (d.type) {
    case 'integer':
    case 'user':
    case 'crm_company':
    case 'crm_contact':
    case 'crm_lead':
    case 'crm_quote':
    case 'crm_category': {
      if (v === null || v === '' || v === false) return null;
      const n = Number(v);
      return Number.isFinite(n) ? String(Math.trunc(n)) : null;
    }
    case 'double': {
      const n = Number(v === null || v === '' ? 0 : v);
      return Number.isFinite(n) ? n.toFixed(2) : '0.00';
    }
    case 'char':
      return flag(v, false) ? 'Y' : 'N';
    case 'date':
    case 'datetime': {
      const t = parseBxDate(v);
      return t === undefined ? '' : phpDate(t);
    }
    case 'file':
      return undefined;
    default:
      return v === null ? null : String(v);
  }
}

function storeUfValue(uf: BUserField, v: unknown): unknown {
  const one = (x: unknown): unknown => {
    if (x === null || x === undefined || x === '') return uf.USER_TYPE_ID === 'boolean' ? false : null;
    switch (uf.USER_TYPE_ID) {
      case 'boolean':
        return flag(x, false);
      case 'enumeration': {
        const opt = uf.LIST?.find((o) => o.ID === String(x));
        return opt ? opt.ID : null;
      }
      case 'double':
      case 'integer': {
        const n = Number(x);
        return Number.isFinite(n) ? String(n) : null;
      }
      case 'date':
      case 'datetime': {
        const t = parseBxDate(x);
        return t === undefined ? null : phpDate(t);
      }
      default:
        return String(x);
    }
  };
  if (uf.MULTIPLE === 'Y') {
    const list = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : v === null || v === undefined || v === '' ? [] : [v];
    return list.map(one).filter((x) => x !== null);
  }
  if (Array.isArray(v) || isObject(v)) return undefined;
  return one(v);
}

function multiItems(type: string, v: unknown): Array<Record<string, unknown>> {
  const list = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : undefined;
  if (!list) throw errors.unsupported(`${type} must be an array of {VALUE, VALUE_TYPE} items (§7.4).`);
  return list.map((it) => {
    if (!isObject(it)) throw errors.unsupported(`${type} items must be objects like {VALUE, VALUE_TYPE} (§7.4).`);
    return it;
  });
}

/**
 * Multi-field writes (§7.4): on add every item with a VALUE is added; on update items without ID are added,
 * `{ID, DELETE:'Y'}`, `{ID, VALUE:''}` or a bare `{ID}` remove that value, `{ID, VALUE}` overwrites it, and
 * values not mentioned stay.
 */
function applyMulti(state: BitrixState, rec: BRecord, type: MultiType, input: unknown, isUpdate: boolean): void {
  const items = multiItems(type, input);
  const list: BMulti[] = isUpdate ? [...((rec[type] as BMulti[] | undefined) ?? [])] : [];
  for (const it of items) {
    const id = it.ID !== undefined && it.ID !== null && String(it.ID) !== '' ? String(it.ID) : undefined;
    const value = it.VALUE === undefined || it.VALUE === null ? undefined : String(it.VALUE);
    const vt = it.VALUE_TYPE !== undefined && it.VALUE_TYPE !== null && String(it.VALUE_TYPE) !== '' ? String(it.VALUE_TYPE).toUpperCase() : undefined;
    if (id !== undefined && isUpdate) {
      const idx = list.findIndex((m) => m.ID === id);
      if (idx < 0) continue;
      if (flag(it.DELETE, false) || value === undefined || value.trim() === '') {
        list.splice(idx, 1);
        continue;
      }
      const cur = list[idx]!;
      list[idx] = { ...cur, VALUE: value, VALUE_TYPE: vt ?? cur.VALUE_TYPE };
      continue;
    }
    if (value === undefined || value.trim() === '') continue;
    list.push({ ID: String(nextId(state, 'fm')), VALUE_TYPE: vt ?? MULTI_DEFAULT_TYPE[type], VALUE: value, TYPE_ID: type });
  }
  rec[type] = list;
}

function idList(v: unknown): number[] {
  const list = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : v === null || v === undefined || v === '' ? [] : [v];
  return [...new Set(list.map((x) => Number(x)).filter((n) => Number.isSafeInteger(n) && n > 0))];
}

export function userFieldsOf(state: BitrixState, kind: EntityKind): BUserField[] {
  return state.userFields.filter((u) => u.ENTITY_ID === UF_ENTITY[kind]).sort((a, b) => Number(a.SORT) - Number(b.SORT));
}

// ---------------------------------------------------------------- writes

export interface WriteOptions {
  /** Acting user (CREATED_BY_ID / MODIFY_BY_ID). */
  by: number;
  /** Timestamp of the change (demo data back-dates records). */
  at: number;
}

function hasValues(rec: BRecord, t: MultiType): boolean {
  return Array.isArray(rec[t]) && (rec[t] as BMulti[]).length > 0;
}

function blankRecord(kind: EntityKind, id: number, o: WriteOptions): BRecord {
  const rec: BRecord = {};
  const when = phpDate(o.at);
  for (const d of ENTITY_FIELDS[kind]) {
    if (d.type === 'crm_multifield') continue;
    if (d.multiple) {
      rec[d.name] = [];
      continue;
    }
    rec[d.name] = d.type === 'char' ? 'N' : d.type === 'date' ? '' : null;
  }
  Object.assign(rec, {
    ID: String(id),
    OPENED: 'Y',
    ASSIGNED_BY_ID: String(o.by),
    CREATED_BY_ID: String(o.by),
    MODIFY_BY_ID: String(o.by),
    DATE_CREATE: when,
    DATE_MODIFY: when,
    LAST_ACTIVITY_TIME: when,
    LAST_ACTIVITY_BY: String(o.by),
  });
  if (kind === 'lead' || kind === 'deal')
    Object.assign(rec, { CURRENCY_ID: PORTAL_CURRENCY, OPPORTUNITY: '0.00', IS_MANUAL_OPPORTUNITY: 'N', MOVED_BY_ID: String(o.by), MOVED_TIME: when });
  if (kind === 'lead') Object.assign(rec, { DATE_CLOSED: '', STATUS_ID: 'NEW' });
  if (kind === 'deal')
    Object.assign(rec, {
      CATEGORY_ID: '0',
      BEGINDATE: phpDate(startOfDay(o.at)),
      CLOSEDATE: phpDate(startOfDay(o.at) + 7 * 86_400_000),
      PROBABILITY: null,
      TAX_VALUE: '0.00',
      IS_RECURRING: 'N',
    });
  if (kind === 'contact') Object.assign(rec, { EXPORT: 'Y' });
  if (kind === 'company') Object.assign(rec, { CURRENCY_ID: PORTAL_CURRENCY, REVENUE: '0.00' });
  for (const m of MULTI_FIELDS) if (ENTITY_FIELDS[kind].some((d) => d.name === m)) rec[m] = [];
  return rec;
}

function startOfDay(ms: number): number {
  const offset = 3 * 3600_000;
  return Math.floor((ms + offset) / 86_400_000) * 86_400_000 - offset;
}

/**
 * Applies written `fields` to a record: unknown keys and read-only fields are silently ignored (§1.4), then
 * the derived fields (HAS_PHONE, semantics, links…) are recomputed.
 */
function applyFields(state: BitrixState, kind: EntityKind, rec: BRecord, fields: Record<string, unknown>, isUpdate: boolean, o: WriteOptions): void {
  const defs = fieldMap(kind);
  const ufs = new Map(userFieldsOf(state, kind).map((u) => [u.FIELD_NAME, u]));
  const before = { status: rec.STATUS_ID, stage: rec.STAGE_ID };
  for (const [rawKey, value] of Object.entries(fields)) {
    const key = rawKey.toUpperCase();
    if (isMulti(key) && defs.has(key)) {
      applyMulti(state, rec, key, value, isUpdate);
      continue;
    }
    const uf = ufs.get(key);
    if (uf) {
      const v = storeUfValue(uf, value);
      if (v !== undefined) rec[key] = v;
      continue;
    }
    const d = defs.get(key);
    if (!d || d.readOnly) continue;
    if (isUpdate && d.immutable) continue; // §7.2: crm.deal.update cannot change CATEGORY_ID
    if (d.multiple) {
      rec[key] = idList(value).map(String);
      continue;
    }
    const v = storeValue(d, value);
    if (v !== undefined) rec[key] = v;
  }
  const has = (k: string) => Object.keys(fields).some((x) => x.toUpperCase() === k);

  // Links: CONTACT_ID is the first of CONTACT_IDS (deals, leads); COMPANY_ID of contacts likewise.
  if (kind === 'deal' || kind === 'lead') {
    if (has('CONTACT_IDS')) rec.CONTACT_ID = (rec.CONTACT_IDS as string[])[0] ?? null;
    else if (has('CONTACT_ID')) rec.CONTACT_IDS = rec.CONTACT_ID ? [String(rec.CONTACT_ID)] : [];
  }
  if (kind === 'contact') {
    if (has('COMPANY_IDS')) rec.COMPANY_ID = (rec.COMPANY_IDS as string[])[0] ?? null;
    else if (has('COMPANY_ID')) rec.COMPANY_IDS = rec.COMPANY_ID ? [String(rec.COMPANY_ID)] : [];
  }

  if (kind === 'lead') {
    const st = findStatus(state, 'STATUS', String(rec.STATUS_ID ?? ''));
    if (!st) throw errors.crm(`Unknown lead status "${String(rec.STATUS_ID)}".`);
    const sem = semanticOf(st);
    rec.STATUS_SEMANTIC_ID = sem;
    if (sem !== 'P' && !rec.DATE_CLOSED) rec.DATE_CLOSED = phpDate(o.at);
    if (sem === 'P') rec.DATE_CLOSED = '';
    // §7.2: IS_RETURN_CUSTOMER cannot be set; it becomes Y when COMPANY_ID or CONTACT_ID is given.
    rec.IS_RETURN_CUSTOMER = rec.COMPANY_ID || rec.CONTACT_ID ? 'Y' : 'N';
    if (isUpdate && before.status !== rec.STATUS_ID) Object.assign(rec, { MOVED_BY_ID: String(o.by), MOVED_TIME: phpDate(o.at) });
  }
  if (kind === 'deal') {
    const cat = Number(rec.CATEGORY_ID ?? 0);
    if (!state.categories.some((c) => c.id === cat && c.entityTypeId === 2)) throw errors.crm(`Pipeline ${cat} is not found.`);
    const stages = dealStages(state, cat);
    if (!isUpdate && !has('STAGE_ID')) rec.STAGE_ID = stages[0]?.STATUS_ID ?? null;
    if (!isUpdate && has('STAGE_ID') && !has('CATEGORY_ID')) {
      // A stage id names its pipeline (`C3:NEW`), so a deal added with only a stage lands there.
      const c = categoryOfStage(state, String(rec.STAGE_ID));
      if (c !== undefined) rec.CATEGORY_ID = String(c);
    }
    const stage = findStatus(state, stageEntityId(Number(rec.CATEGORY_ID ?? 0)), String(rec.STAGE_ID ?? ''));
    if (!stage) throw errors.crm(`Stage "${String(rec.STAGE_ID)}" does not belong to pipeline ${String(rec.CATEGORY_ID)}.`);
    const sem = semanticOf(stage);
    rec.STAGE_SEMANTIC_ID = sem;
    rec.CLOSED = sem === 'P' ? 'N' : 'Y';
    rec.IS_NEW = stages[0]?.STATUS_ID === rec.STAGE_ID ? 'Y' : 'N';
    rec.IS_RETURN_CUSTOMER = rec.IS_RETURN_CUSTOMER ?? 'N';
    rec.IS_REPEATED_APPROACH = rec.IS_REPEATED_APPROACH ?? 'N';
    if (isUpdate && before.stage !== rec.STAGE_ID) {
      Object.assign(rec, { MOVED_BY_ID: String(o.by), MOVED_TIME: phpDate(o.at) });
      if (sem !== 'P') rec.CLOSEDATE = phpDate(startOfDay(o.at));
    }
    // A deal added straight into a won or lost stage closed that day, like one moved there: CLOSEDATE (a date
    // field, midnight in the portal's zone) is then earlier than DATE_CREATE the same day, as on a real portal.
    if (!isUpdate && sem !== 'P' && !has('CLOSEDATE')) rec.CLOSEDATE = phpDate(startOfDay(o.at));
  }
  if ('HAS_PHONE' in rec) {
    rec.HAS_PHONE = hasValues(rec, 'PHONE') ? 'Y' : 'N';
    rec.HAS_EMAIL = hasValues(rec, 'EMAIL') ? 'Y' : 'N';
    rec.HAS_IMOL = Array.isArray(rec.IM) && (rec.IM as BMulti[]).some((m) => m.VALUE_TYPE === 'OPENLINE' || m.VALUE_TYPE === 'IMOL') ? 'Y' : 'N';
  }
}

export function createRecord(portalState: BitrixState, kind: EntityKind, fields: Record<string, unknown>, o: WriteOptions): number {
  const id = portalState.seq[kind] + 1;
  const rec = blankRecord(kind, id, o);
  for (const uf of userFieldsOf(portalState, kind)) rec[uf.FIELD_NAME] = uf.MULTIPLE === 'Y' ? [] : uf.USER_TYPE_ID === 'boolean' ? false : null;
  applyFields(portalState, kind, rec, fields, false, o);
  if (!rec.TITLE && (kind === 'lead' || kind === 'deal')) rec.TITLE = `${kind === 'lead' ? 'Lead' : 'Deal'} #${id}`;
  nextId(portalState, kind);
  table(portalState, kind).set(id, rec);
  return id;
}

export function updateRecord(portalState: BitrixState, kind: EntityKind, id: number, fields: Record<string, unknown>, o: WriteOptions): void {
  const rec = table(portalState, kind).get(id);
  if (!rec) throw errors.notFound();
  const draft: BRecord = structuredClone(rec);
  applyFields(portalState, kind, draft, fields, true, o);
  Object.assign(draft, { MODIFY_BY_ID: String(o.by), DATE_MODIFY: phpDate(o.at) });
  table(portalState, kind).set(id, draft);
}

/** Deletes a record and the links pointing at it. */
export function deleteRecord(portalState: BitrixState, kind: EntityKind, id: number): void {
  if (!table(portalState, kind).delete(id)) throw errors.notFound();
  const sid = String(id);
  if (kind === 'contact') {
    for (const t of [portalState.deals, portalState.leads]) {
      for (const r of t.values()) {
        const ids = (r.CONTACT_IDS as string[]).filter((x) => x !== sid);
        if (ids.length !== (r.CONTACT_IDS as string[]).length) {
          r.CONTACT_IDS = ids;
          r.CONTACT_ID = ids[0] ?? null;
        }
      }
    }
  }
  if (kind === 'company') {
    for (const t of [portalState.deals, portalState.leads]) for (const r of t.values()) if (r.COMPANY_ID === sid) r.COMPANY_ID = null;
    for (const r of portalState.contacts.values()) {
      const ids = (r.COMPANY_IDS as string[]).filter((x) => x !== sid);
      r.COMPANY_IDS = ids;
      r.COMPANY_ID = ids[0] ?? null;
    }
  }
}

// ---------------------------------------------------------------- reads

/** Field accessors for filter/order: standard fields, user fields, multi-fields and link lists. */
export function resolver(state: BitrixState, kind: EntityKind): (name: string) => FieldAccess | undefined {
  const defs = fieldMap(kind);
  const ufs = new Map(userFieldsOf(state, kind).map((u) => [u.FIELD_NAME, u]));
  return (name) => {
    if (isMulti(name) && defs.has(name)) return { type: 'string', values: (r) => ((r[name] as BMulti[] | undefined) ?? []).map((m) => m.VALUE) };
    // CONTACT_ID of deals and leads is the primary contact only (core `CCrmDeal::GetFields` maps it to the
    // deal's own CONTACT_ID column; crm-deal-list docs send "filter by contacts" to crm.item.list; b24-rest-docs
    // issue #73: a deal is not found by its second contact). The scalar definition below does exactly that.
    if (name === 'COMPANY_ID' && kind === 'contact') return { type: 'crm_company', values: (r) => r.COMPANY_IDS as string[], noLike: true };
    const uf = ufs.get(name);
    if (uf) {
      const type = uf.USER_TYPE_ID === 'enumeration' ? 'integer' : uf.USER_TYPE_ID === 'boolean' ? 'boolean' : uf.USER_TYPE_ID;
      return { type, values: (r) => (Array.isArray(r[name]) ? (r[name] as unknown[]) : [r[name]]) };
    }
    const d = defs.get(name);
    if (!d || d.hidden) return undefined;
    return scalar(d.type, name, ['crm_status', 'crm_contact', 'crm_company', 'crm_category', 'user'].includes(d.type));
  };
}

/**
 * A `get`/`list` row (§7.3): `select` omitted = `*` + `UF_*`; `*` = standard fields, `UF_*` = user fields
 * (not multiple ones); multi-fields only when named; ID always.
 */
export function rowOf(state: BitrixState, kind: EntityKind, rec: BRecord, select: string[] | 'all'): BRecord {
  const ufs = userFieldsOf(state, kind);
  const row: BRecord = {};
  let std: Set<string>;
  let ufNames: Set<string>;
  let multi: MultiType[];
  if (select === 'all') {
    std = new Set(ENTITY_ROW[kind]);
    ufNames = new Set(ufs.map((u) => u.FIELD_NAME));
    multi = MULTI_FIELDS.filter((m) => hasValues(rec, m));
  } else {
    const sel = select.length ? select.map((s) => s.trim().toUpperCase()) : ['*', 'UF_*'];
    std = new Set(sel.includes('*') ? ENTITY_ROW[kind] : ENTITY_ROW[kind].filter((n) => sel.includes(n)));
    ufNames = new Set(ufs.filter((u) => (sel.includes('UF_*') && u.MULTIPLE !== 'Y') || sel.includes(u.FIELD_NAME)).map((u) => u.FIELD_NAME));
    multi = MULTI_FIELDS.filter((m) => sel.includes(m) && hasValues(rec, m));
  }
  row.ID = rec.ID;
  for (const n of ENTITY_ROW[kind]) if (std.has(n) && n !== 'ID') row[n] = rec[n] ?? null;
  for (const u of ufs) if (ufNames.has(u.FIELD_NAME)) row[u.FIELD_NAME] = rec[u.FIELD_NAME] ?? null;
  for (const m of multi) row[m] = structuredClone(rec[m]);
  return row;
}

function ufDescriptor(u: BUserField): Record<string, unknown> {
  const label = u.EDIT_FORM_LABEL.en ?? u.FIELD_NAME;
  const d: Record<string, unknown> = {
    type: u.USER_TYPE_ID,
    isRequired: u.MANDATORY === 'Y',
    isReadOnly: false,
    isImmutable: false,
    isMultiple: u.MULTIPLE === 'Y',
    isDynamic: true,
    title: u.FIELD_NAME,
    listLabel: u.LIST_COLUMN_LABEL.en ?? label,
    formLabel: label,
    filterLabel: u.LIST_FILTER_LABEL.en ?? label,
    settings: u.SETTINGS,
  };
  if (u.LIST) d.items = u.LIST.map((o) => ({ ID: o.ID, VALUE: o.VALUE }));
  return d;
}

/** `crm.*.userfield.list` rows; labels as strings when `filter[LANG]` is given, as the portal does. */
function userfieldRows(state: BitrixState, kind: EntityKind, p: Params): MethodResult {
  const filter = objectParam(p, 'filter') ?? {};
  const lang = typeof filter.LANG === 'string' ? filter.LANG : undefined;
  let rows = userFieldsOf(state, kind);
  for (const [k, v] of Object.entries(filter)) {
    const key = k.toUpperCase();
    if (key === 'LANG') continue;
    if (!['ID', 'FIELD_NAME', 'USER_TYPE_ID', 'XML_ID', 'MULTIPLE', 'MANDATORY', 'ENTITY_ID'].includes(key))
      throw errors.unsupported(`userfield.list filter "${k}" is not emulated.`);
    rows = rows.filter((u) => String((u as unknown as Record<string, unknown>)[key]) === String(v));
  }
  const out = rows.map((u) => {
    const { EDIT_FORM_LABEL, LIST_COLUMN_LABEL, LIST_FILTER_LABEL, ...rest } = structuredClone(u);
    const r: Record<string, unknown> = { ...rest };
    if (lang) {
      r.EDIT_FORM_LABEL = EDIT_FORM_LABEL[lang] ?? EDIT_FORM_LABEL.en ?? '';
      r.LIST_COLUMN_LABEL = LIST_COLUMN_LABEL[lang] ?? LIST_COLUMN_LABEL.en ?? '';
      r.LIST_FILTER_LABEL = LIST_FILTER_LABEL[lang] ?? LIST_FILTER_LABEL.en ?? '';
    }
    return r;
  });
  return { result: out, total: out.length };
}

// ---------------------------------------------------------------- methods

function actor(ctx: CallCtx): WriteOptions {
  return { by: ctx.auth.userId, at: ctx.portal.now() };
}

/** Simple CRM mode (crm.settings.mode.get = 2): leads are switched off, so lead methods are refused. */
function checkLeadsEnabled(kind: EntityKind, portal: Portal): void {
  if (kind === 'lead' && portal.state.mode === 'simple') throw errors.crm('Access denied.');
}

function fieldsParam(p: Params): Record<string, unknown> {
  const v = param(p, 'fields', false, 'array');
  if (v === undefined) throw errors.mustBeArray('fields');
  if (Array.isArray(v) && v.length === 0) return {};
  if (!isObject(v)) throw errors.mustBeArray('fields');
  return v;
}

function paramsParam(p: Params): Record<string, unknown> {
  const v = param(p, 'params');
  if (v === undefined || v === '') return {};
  if (!isObject(v) && !Array.isArray(v)) throw errors.mustBeArray('params');
  return isObject(v) ? v : {};
}

export function listEntity(state: BitrixState, kind: EntityKind, p: Params): MethodResult {
  const filter = objectParam(p, 'filter');
  const order = objectParam(p, 'order');
  const select = listParam(p, 'select') ?? [];
  const resolve = resolver(state, kind);
  const conds = compileFilter(filter, resolve, ['CHECK_PERMISSIONS']);
  // Without an order the portal returns rows by ID ascending (fixture crm.lead.list.json).
  const keys = compileOrder(order && Object.keys(order).length ? order : { ID: 'ASC' }, resolve);
  const rows = sortRecords(
    [...table(state, kind).values()].filter((r) => matches(r, conds)),
    keys,
  );
  const page = paginate(rows, param(p, 'start'));
  return { ...page, result: (page.result as BRecord[]).map((r) => rowOf(state, kind, r, select)) };
}

export function registerCrm(reg: Registry): void {
  for (const kind of ['lead', 'deal', 'contact', 'company'] as const) {
    const base = `crm.${kind}`;
    const ev = `ONCRM${EVENT_NAME[kind]}`;

    reg.set(`${base}.fields`, {
      scope: 'crm',
      handler: (_p, ctx) => {
        const out: Record<string, unknown> = {};
        for (const d of ENTITY_FIELDS[kind]) out[d.name] = describeField(d);
        for (const u of userFieldsOf(ctx.portal.state, kind)) out[u.FIELD_NAME] = ufDescriptor(u);
        return { result: out };
      },
    });

    reg.set(`${base}.list`, {
      scope: 'crm',
      handler: (p, ctx) => {
        checkLeadsEnabled(kind, ctx.portal);
        return listEntity(ctx.portal.state, kind, p);
      },
    });

    reg.set(`${base}.get`, {
      scope: 'crm',
      handler: (p, ctx) => {
        checkLeadsEnabled(kind, ctx.portal);
        const id = idParam(p);
        const rec = table(ctx.portal.state, kind).get(id);
        if (!rec) throw errors.notFound();
        return { result: rowOf(ctx.portal.state, kind, rec, 'all') };
      },
    });

    reg.set(`${base}.add`, {
      scope: 'crm',
      handler: (p, ctx) => {
        checkLeadsEnabled(kind, ctx.portal);
        const fields = fieldsParam(p);
        paramsParam(p); // REGISTER_SONET_EVENT etc. are accepted and have no visible effect here (§7.2)
        const id = createRecord(ctx.portal.state, kind, fields, actor(ctx));
        if (kind === 'lead' || kind === 'deal') automationsOf(ctx.portal.state).runs.push({ entity: kind, id });
        ctx.portal.emit(`${ev}ADD`, { FIELDS: { ID: String(id) } }, ctx.auth.userId);
        return { result: id };
      },
    });

    reg.set(`${base}.update`, {
      scope: 'crm',
      handler: (p, ctx) => {
        checkLeadsEnabled(kind, ctx.portal);
        const id = idParam(p);
        const fields = fieldsParam(p);
        paramsParam(p);
        if (!table(ctx.portal.state, kind).has(id)) throw kind === 'contact' ? errors.crm('Contact is not found') : errors.notFound();
        updateRecord(ctx.portal.state, kind, id, fields, actor(ctx));
        ctx.portal.emit(`${ev}UPDATE`, { FIELDS: { ID: String(id) } }, ctx.auth.userId);
        return { result: true };
      },
    });

    reg.set(`${base}.delete`, {
      scope: 'crm',
      handler: (p, ctx) => {
        checkLeadsEnabled(kind, ctx.portal);
        const id = idParam(p);
        deleteRecord(ctx.portal.state, kind, id);
        ctx.portal.emit(`${ev}DELETE`, { FIELDS: { ID: String(id) } }, ctx.auth.userId);
        return { result: true };
      },
    });

    reg.set(`${base}.userfield.list`, { scope: 'crm', handler: (p, ctx) => userfieldRows(ctx.portal.state, kind, p) });
  }

  reg.set('crm.item.list', { scope: 'crm', handler: (p, ctx) => itemList(ctx, p) });

  // Bound contacts of a deal/lead: [{CONTACT_ID, SORT, ROLE_ID, IS_PRIMARY}].
  for (const kind of ['deal', 'lead'] as const) {
    reg.set(`crm.${kind}.contact.items.get`, {
      scope: 'crm',
      handler: (p, ctx) => {
        checkLeadsEnabled(kind, ctx.portal);
        const rec = table(ctx.portal.state, kind).get(idParam(p));
        if (!rec) throw errors.notFound();
        const ids = rec.CONTACT_IDS as string[];
        return { result: ids.map((c, i) => ({ CONTACT_ID: Number(c), SORT: (i + 1) * 10, ROLE_ID: 0, IS_PRIMARY: i === 0 ? 'Y' : 'N' })) };
      },
    });
  }

  // Contacts bound to a company through any binding (b24restdocs crm-company-contact-items-get:
  // [{CONTACT_ID, SORT, ROLE_ID, IS_PRIMARY}], SORT 100, 110, …; id ≤ 0 → "The parameter ownerEntityID is
  // invalid or not defined."). The binding lives on the contact (COMPANY_IDS) in this emulator.
  reg.set('crm.contact.company.add', { scope: 'crm', handler: addContactCompany });

  reg.set('crm.company.contact.items.get', {
    scope: 'crm',
    handler: (p, ctx) => {
      const raw = Number(param(p, 'id') ?? param(p, 'ID'));
      if (!Number.isSafeInteger(raw) || raw <= 0) throw errors.crm('The parameter ownerEntityID is invalid or not defined.');
      if (!table(ctx.portal.state, 'company').has(raw)) throw errors.notFound();
      const sid = String(raw);
      const ids = [...ctx.portal.state.contacts.values()].filter((c) => ((c.COMPANY_IDS as string[] | undefined) ?? []).includes(sid)).map((c) => Number(c.ID));
      return { result: ids.map((c, i) => ({ CONTACT_ID: c, SORT: 100 + i * 10, ROLE_ID: 0, IS_PRIMARY: i === 0 ? 'Y' : 'N' })) };
    },
  });
}

// ---------------------------------------------------------------- contact ⇄ company bindings

/**
 * `crm.contact.company.add` (§7.2 `crm.contact.company.*`; b24 docs crm_contact_company_add: params `id` (the
 * contact) and `fields` {COMPANY_ID (required), SORT, IS_PRIMARY}; result `true`). A contact may have several
 * companies (COMPANY_IDS, the first is COMPANY_ID): the binding is added, the others stay; `IS_PRIMARY: 'Y'`
 * puts it first. The texts for a missing contact, company or COMPANY_ID are the compat errors' shape (§6) in
 * the emulator's own words; re-adding an existing binding changes nothing (UNVERIFIED: the docs do not say).
 */
function addContactCompany(p: Params, ctx: CallCtx): MethodResult {
  const id = idParam(p);
  const fields = fieldsParam(p);
  const state = ctx.portal.state;
  const rec = state.contacts.get(id);
  if (!rec) throw errors.notFound();
  const raw = Object.entries(fields).find(([k]) => k.toUpperCase() === 'COMPANY_ID')?.[1];
  const companyId = Number(raw);
  if (raw === undefined || raw === null || raw === '' || !Number.isSafeInteger(companyId) || companyId <= 0)
    throw errors.crm('The parameter fields must contain COMPANY_ID.');
  if (!state.companies.has(companyId)) throw errors.notFound();
  const primary = flag(Object.entries(fields).find(([k]) => k.toUpperCase() === 'IS_PRIMARY')?.[1], false);
  const sid = String(companyId);
  const ids = ((rec.COMPANY_IDS as string[] | undefined) ?? []).filter((x) => x !== sid);
  const had = ids.length !== ((rec.COMPANY_IDS as string[] | undefined) ?? []).length;
  const next = primary ? [sid, ...ids] : had ? (rec.COMPANY_IDS as string[]) : [...ids, sid];
  const o = actor(ctx);
  Object.assign(rec, { COMPANY_IDS: next, COMPANY_ID: next[0] ?? null, MODIFY_BY_ID: String(o.by), DATE_MODIFY: phpDate(o.at) });
  ctx.portal.emit('ONCRMCONTACTUPDATE', { FIELDS: { ID: String(id) } }, ctx.auth.userId);
  return { result: true };
}

// ---------------------------------------------------------------- crm.item.list

const ITEM_TYPES: Record<number, 'lead' | 'deal'> = { 1: 'lead', 2: 'deal' };

/** camelCase item fields (crm.item.* naming) the emulator serves, with the compat field they come from. */
const ITEM_FIELDS: Record<string, { from: string; type: string; list?: boolean }> = {
  id: { from: 'ID', type: 'integer' },
  title: { from: 'TITLE', type: 'string' },
  stageId: { from: 'STAGE_ID', type: 'string' },
  statusId: { from: 'STATUS_ID', type: 'string' },
  categoryId: { from: 'CATEGORY_ID', type: 'integer' },
  assignedById: { from: 'ASSIGNED_BY_ID', type: 'integer' },
  companyId: { from: 'COMPANY_ID', type: 'integer' },
  contactId: { from: 'CONTACT_ID', type: 'integer' },
  contactIds: { from: 'CONTACT_IDS', type: 'integer', list: true },
  opportunity: { from: 'OPPORTUNITY', type: 'double' },
  createdTime: { from: 'DATE_CREATE', type: 'datetime' },
  updatedTime: { from: 'DATE_MODIFY', type: 'datetime' },
};

/**
 * `crm.item.list` for deals (entityTypeId 2) and leads (1), the subset this project uses ([D] crm-item-list):
 * camelCase `select`/`filter`/`order`, `result.items`, 50 per page with `start` (`-1` skips the count). The
 * filter `contactIds` matches any bound contact (what crm-deal-list points to for "filter by contacts");
 * `contactId` is the primary contact only (the factory's CONTACT_ID, as in the compat lists). Other fields
 * are refused the way the portal refuses them: INVALID_ARG_VALUE "Invalid filter: field … is not allowed".
 */
function itemList(ctx: CallCtx, p: Params): MethodResult {
  const type = Number(param(p, 'entityTypeId') ?? param(p, 'ENTITY_TYPE_ID'));
  const kind = ITEM_TYPES[type];
  if (!kind) throw new BxError(400, 'NOT_FOUND', 'Smart process not found');
  checkLeadsEnabled(kind, ctx.portal);
  const access = (name: string): FieldAccess | undefined => {
    const f = ITEM_FIELDS[name] ?? Object.entries(ITEM_FIELDS).find(([k]) => k.toUpperCase() === name.replace(/_/g, ''))?.[1];
    if (!f || (kind === 'lead' && f.from === 'CATEGORY_ID') || (kind === 'lead' && f.from === 'STAGE_ID') || (kind === 'deal' && f.from === 'STATUS_ID'))
      return undefined;
    if (f.list) return { type: f.type, values: (r) => (r[f.from] as string[] | undefined) ?? [], noLike: true };
    return scalar(f.type, f.from);
  };
  const filter = objectParam(p, 'filter') ?? {};
  const conds: ReturnType<typeof compileFilter> = [];
  for (const [key, value] of Object.entries(filter)) {
    const m = /^(>=|<=|!=|!@|=%|%=|!%|[<>=@!%])?(.+)$/.exec(key.trim())!;
    const field = m[2]!;
    const a = access(field) ?? access(field.toUpperCase());
    if (!a) throw new BxError(400, 'INVALID_ARG_VALUE', `Invalid filter: field '${field}' is not allowed in filter`);
    conds.push(...compileFilter({ [`${m[1] ?? ''}F`]: value }, () => a));
  }
  const order = objectParam(p, 'order');
  const orderKeys = order && Object.keys(order).length ? order : { id: 'ASC' };
  const keys = compileOrder(Object.fromEntries(Object.entries(orderKeys).map(([k, v]) => [k.toUpperCase(), v])), (n) =>
    access(Object.keys(ITEM_FIELDS).find((k) => k.toUpperCase() === n) ?? n),
  );
  const rows = sortRecords(
    [...table(ctx.portal.state, kind).values()].filter((r) => matches(r, conds)),
    keys,
  );
  const select = listParam(p, 'select') ?? ['*'];
  const page = paginate(rows, param(p, 'start'));
  const items = (page.result as BRecord[]).map((r) => {
    const out: Record<string, unknown> = {};
    for (const [name, f] of Object.entries(ITEM_FIELDS)) {
      if (!select.includes('*') && !select.includes(name)) continue;
      if ((kind === 'lead' && (f.from === 'CATEGORY_ID' || f.from === 'STAGE_ID')) || (kind === 'deal' && f.from === 'STATUS_ID')) continue;
      const v = r[f.from];
      out[name] = f.list
        ? ((v as string[] | undefined) ?? []).map(Number)
        : f.type === 'integer'
          ? v === null || v === undefined || v === ''
            ? null
            : Number(v)
          : f.type === 'double'
            ? Number(v ?? 0)
            : (v ?? null);
    }
    return out;
  });
  return { ...page, result: { items } };
}
