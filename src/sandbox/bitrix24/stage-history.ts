/**
 * `crm.stagehistory.list` (b24restdocs api-reference/crm/crm-stage-history-list.md; events fact sheet, "Stage
 * history"): one row per stage move of a lead (entityTypeId 1) or a deal (2), recorded by the emulator on every
 * change of STATUS_ID / STAGE_ID / CATEGORY_ID. TYPE_ID: 1 created, 2 moved to an intermediate stage, 3 moved to
 * a final stage, 5 pipeline changed. Deals carry CATEGORY_ID, STAGE_SEMANTIC_ID, STAGE_ID; leads STATUS_ID and
 * STATUS_SEMANTIC_ID. Ids are JSON integers, as in the docs' example. The rows name no user: the API does not.
 */
import type { CallCtx, MethodResult, Registry } from './context.js';
import { paginate } from './context.js';
import { BxError } from './errors.js';
import { compileFilter, compileOrder, matches, scalar, sortRecords, type FieldAccess } from './filter.js';
import { listParam, objectParam, param, type Params } from './params.js';
import { findStatus, nextId, semanticOf, stageEntityId, type BitrixState, type BRecord, type BStageHistory } from './state.js';
import { phpDate } from './time.js';

const LEAD_FIELDS = ['ID', 'TYPE_ID', 'OWNER_ID', 'CREATED_TIME', 'STATUS_ID', 'STATUS_SEMANTIC_ID'];
const DEAL_FIELDS = ['ID', 'TYPE_ID', 'OWNER_ID', 'CREATED_TIME', 'CATEGORY_ID', 'STAGE_SEMANTIC_ID', 'STAGE_ID'];

function semantic(state: BitrixState, kind: 'lead' | 'deal', rec: BRecord): 'P' | 'S' | 'F' {
  if (kind === 'lead') return semanticOf(findStatus(state, 'STATUS', String(rec.STATUS_ID ?? '')));
  return semanticOf(findStatus(state, stageEntityId(Number(rec.CATEGORY_ID ?? 0)), String(rec.STAGE_ID ?? '')));
}

function lastRow(state: BitrixState, entityTypeId: 1 | 2, id: number): BStageHistory | undefined {
  for (let i = state.stageHistory.length - 1; i >= 0; i--) {
    const r = state.stageHistory[i]!;
    if (r.entityTypeId === entityTypeId && r.OWNER_ID === id) return r;
  }
  return undefined;
}

/**
 * Records what a change did to a lead's or deal's stage: a `created` row the first time the record is seen,
 * then a row whenever its stage or pipeline differs from the last row. Called after every add and update.
 */
export function observeStage(state: BitrixState, kind: 'lead' | 'deal', id: number, rec: BRecord | undefined, byUserId: number, at: number): void {
  if (!rec) return;
  const entityTypeId = kind === 'lead' ? 1 : 2;
  const prior = lastRow(state, entityTypeId, id);
  const sem = semantic(state, kind, rec);
  const row: BStageHistory = { ID: 0, TYPE_ID: 1, OWNER_ID: id, CREATED_TIME: phpDate(at, 0), byUserId, entityTypeId };
  if (kind === 'lead') {
    const status = String(rec.STATUS_ID ?? '');
    if (prior && prior.STATUS_ID === status) return;
    row.STATUS_ID = status;
    row.STATUS_SEMANTIC_ID = sem;
  } else {
    const stage = String(rec.STAGE_ID ?? '');
    const category = Number(rec.CATEGORY_ID ?? 0);
    if (prior && prior.STAGE_ID === stage && prior.CATEGORY_ID === category) return;
    row.CATEGORY_ID = category;
    row.STAGE_SEMANTIC_ID = sem;
    row.STAGE_ID = stage;
    if (prior && prior.CATEGORY_ID !== category) row.TYPE_ID = 5;
  }
  if (prior && row.TYPE_ID !== 5) row.TYPE_ID = sem === 'P' ? 2 : 3;
  row.ID = nextId(state, 'stagehistory');
  state.stageHistory.push(row);
}

/** Every existing lead and deal gets its `created` row (the demo portal's records were made before the emulator started). */
export function seedStageHistory(state: BitrixState): void {
  for (const [id, rec] of state.leads) observeStage(state, 'lead', id, rec, Number(rec.CREATED_BY_ID ?? 1), createdAt(rec));
  for (const [id, rec] of state.deals) observeStage(state, 'deal', id, rec, Number(rec.CREATED_BY_ID ?? 1), createdAt(rec));
}

function createdAt(rec: BRecord): number {
  const t = Date.parse(String(rec.DATE_CREATE ?? ''));
  return Number.isNaN(t) ? Date.now() : t;
}

function out(r: BStageHistory, select: string[]): Record<string, unknown> {
  const fields = r.entityTypeId === 1 ? LEAD_FIELDS : DEAL_FIELDS;
  const keep = select.length && !select.includes('*') ? fields.filter((f) => select.map((s) => s.toUpperCase()).includes(f)) : fields;
  return Object.fromEntries(keep.map((f) => [f, (r as unknown as Record<string, unknown>)[f] ?? null]));
}

function stageHistoryList(p: Params, ctx: CallCtx): MethodResult {
  const raw = param(p, 'entityTypeId');
  const typeId = Number(raw);
  if (typeId !== 1 && typeId !== 2) {
    // Old invoices (5), new invoices (31) and SPAs exist on a portal but not in the emulator: refused loudly
    // with the documented code, naming what is emulated.
    throw new BxError(
      400,
      'ENTITY_TYPE_NOT_SUPPORTED',
      `Entity type ${String(raw ?? '')} is not supported (the emulator keeps stage history for leads (1) and deals (2))`,
    );
  }
  const fields = typeId === 1 ? LEAD_FIELDS : DEAL_FIELDS;
  const numeric = new Set(['ID', 'TYPE_ID', 'OWNER_ID', 'CATEGORY_ID']);
  const resolve = (name: string): FieldAccess | undefined => {
    if (!fields.includes(name)) throw new BxError(400, 'INVALID_ARG_VALUE', `Invalid filter: field '${name}' is not allowed in filter`);
    return scalar(numeric.has(name) ? 'integer' : name === 'CREATED_TIME' ? 'datetime' : 'string', name);
  };
  const conds = compileFilter(objectParam(p, 'filter'), resolve);
  const order = objectParam(p, 'order');
  for (const [k, v] of Object.entries(order ?? {})) {
    if (!fields.includes(k.toUpperCase())) throw new BxError(400, 'INVALID_ARG_VALUE', `Invalid order: field '${k}' is not allowed in order`);
    if (!/^(asc|desc)$/i.test(String(v)))
      throw new BxError(400, 'INVALID_ARG_VALUE', `Invalid order: allowed sort directions are ASC, DESC. But got '${String(v)}' for field '${k}'`);
  }
  const keys = compileOrder(order && Object.keys(order).length ? order : { ID: 'ASC' }, (n) => scalar(numeric.has(n) ? 'integer' : 'string', n));
  const rows = ctx.portal.state.stageHistory.filter((r) => r.entityTypeId === typeId);
  const view = rows.map((r) => ({ row: r, rec: out(r, []) }));
  const hit = sortRecords(
    view.filter((v) => matches(v.rec, conds)).map((v) => Object.assign(v.rec, { __row: v.row })),
    keys,
  );
  const page = paginate(hit, param(p, 'start'));
  const select = listParam(p, 'select') ?? [];
  return { ...page, result: { items: (page.result as Array<{ __row: BStageHistory }>).map((v) => out(v.__row, select)) } };
}

export function registerStageHistory(reg: Registry): void {
  reg.set('crm.stagehistory.list', { scope: 'crm', handler: stageHistoryList });
}
