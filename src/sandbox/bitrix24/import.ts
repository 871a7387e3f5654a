/**
 * `crm.item.batchImport` (§7.9; calls/bulk fact sheet 3.4): up to 20 leads, deals, contacts or companies per
 * call, camelCase `crm.item.*` fields (an unknown field is ignored, as documented), one `{item: {id}}` or
 * `{error, error_description}` per element in order. Imported records skip the portal's automation rules and
 * workflows; plain `crm.*.add` runs them. The emulator keeps that visible: every add that would start
 * automations is recorded (automations.ts), an import is not. The caller needs the import permission
 * (`importPermissionOf(state).allowed`, on by default): without it the whole call is 400 ACCESS_DENIED and
 * nothing is made.
 */
import type { CallCtx, MethodResult, Registry } from './context.js';
import { createRecord } from './crm.js';
import { BxError } from './errors.js';
import { param, type Params } from './params.js';
import type { EntityKind } from './schema.js';
import type { BitrixState } from './state.js';

/** §7.9: "You cannot import more than 20 items". */
export const MAX_IMPORT_ITEMS = 20;

const TYPES: Record<number, EntityKind> = { 1: 'lead', 2: 'deal', 3: 'contact', 4: 'company' };
const EVENT: Record<EntityKind, string> = { lead: 'ONCRMLEADADD', deal: 'ONCRMDEALADD', contact: 'ONCRMCONTACTADD', company: 'ONCRMCOMPANYADD' };

/** The documented camelCase fields the emulator stores, with the compat field each one is. */
const FIELDS: Record<string, string> = {
  title: 'TITLE',
  opportunity: 'OPPORTUNITY',
  currencyId: 'CURRENCY_ID',
  stageId: 'STAGE_ID',
  statusId: 'STATUS_ID',
  categoryId: 'CATEGORY_ID',
  assignedById: 'ASSIGNED_BY_ID',
  companyId: 'COMPANY_ID',
  contactId: 'CONTACT_ID',
  contactIds: 'CONTACT_IDS',
  sourceId: 'SOURCE_ID',
  comments: 'COMMENTS',
  name: 'NAME',
  lastName: 'LAST_NAME',
};

const permissions = new WeakMap<BitrixState, { allowed: boolean }>();

/** Whether the caller has the CRM "import" access permission (a role setting, not a scope). */
export function importPermissionOf(s: BitrixState): { allowed: boolean } {
  let p = permissions.get(s);
  if (!p) permissions.set(s, (p = { allowed: true }));
  return p;
}

/** One `data` element as compat fields: the documented names, custom fields by either spelling; the rest ignored. */
function compatFields(item: Record<string, unknown>, originalUf: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) {
    if (FIELDS[k]) out[FIELDS[k]] = v;
    else if (originalUf && /^UF_CRM_/.test(k)) out[k] = v;
    else if (!originalUf && /^ufCrm_/.test(k)) out[`UF_CRM_${k.slice('ufCrm_'.length)}`] = v;
  }
  return out;
}

function batchImport(p: Params, ctx: CallCtx): MethodResult {
  const kind = TYPES[Number(param(p, 'entityTypeId'))];
  if (!kind) throw new BxError(400, 'NOT_FOUND', 'Smart process not found');
  const data = p.data;
  const list = Array.isArray(data) ? data : data && typeof data === 'object' ? Object.values(data) : undefined;
  if (!list) throw new BxError(400, 'INVALID_ARG_VALUE', 'Parameter "data" is required');
  if (list.length > MAX_IMPORT_ITEMS) throw new BxError(400, 'MAX_IMPORT_BATCH_SIZE_EXCEEDED', `You cannot import more than ${MAX_IMPORT_ITEMS} items`);
  if (!importPermissionOf(ctx.portal.state).allowed) throw new BxError(400, 'ACCESS_DENIED', 'Access denied');
  const originalUf = String(param(p, 'useOriginalUfNames') ?? 'N').toUpperCase() === 'Y';
  const items = list.map((raw) => {
    const fields = compatFields(raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {}, originalUf);
    // The documented example: a lead or deal without a title is refused, the other items still go.
    if ((kind === 'lead' || kind === 'deal') && !String(fields.TITLE ?? '').trim())
      return { error: 'CRM_FIELD_ERROR_REQUIRED', error_description: 'The "Name" field is required' };
    try {
      const id = createRecord(ctx.portal.state, kind, fields, { by: ctx.auth.userId, at: ctx.portal.now() });
      ctx.portal.emit(EVENT[kind], { FIELDS: { ID: String(id) } }, ctx.auth.userId);
      return { item: { id } };
    } catch (e) {
      if (!(e instanceof BxError)) throw e;
      return { error: e.code, error_description: e.description };
    }
  });
  return { result: { items } };
}

export function registerImport(reg: Registry): void {
  reg.set('crm.item.batchimport', { scope: 'crm', handler: batchImport });
}
