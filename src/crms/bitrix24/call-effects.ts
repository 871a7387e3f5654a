/**
 * What a Bitrix24 call's parameters make the portal do, read the way the portal reads them. The method table
 * (methods.ts) gives a method's effect; the parameters can only raise it:
 * - parameter names are case-insensitive on the portal: the batch handler upper-cases them
 *   (`array_change_key_case(…, CASE_UPPER)`, the later of two wins, §4.2) and the CRM compat methods try
 *   `FIELDS`, `fields`, `Fields` and `arFields` in turn (§1.4). A request in which two names fold to one is
 *   therefore ambiguous and refused, at the top level and anywhere inside `fields`;
 * - a create naming an existing record by `id` may change it: update;
 * - an activity that delivers a message (an outgoing e-mail is sent by the portal at once, §7.8) is admin;
 * - a record update that replaces its contacts or companies, empties a collection, or removes a phone,
 *   e-mail, site or messenger value (`DELETE: "Y"`, an `ID` without a value, §7.4) is a delete.
 * Batch commands are parsed like PHP's `parse_str` (§4.2); anything the parse would read differently
 * (odd names, repeats, `$result[…]` names) is refused, and a `$result[…]` value counts as the worst case.
 */
import { strongestEffect, type Effect, type SafeUpdate } from '../../policy/policy.js';

/** Options of one reading. */
export interface ReadOptions {
  /** Parameters of a batch command: `$result[…]` values are only known when the batch runs (§4.2). */
  inBatch?: boolean;
  /**
   * The HTTP core's reading: a multi-field value removal counts as an update there, because update_contact
   * (a typed update tool) removes phones and e-mails that way; bitrix_call counts it as a delete.
   */
  core?: boolean;
}

export interface ParamsCheck {
  effect: Effect;
  /** Set when the portal's reading is ambiguous: the call is refused. */
  problem?: string;
  /** Why the effect was raised, for the refusal message. */
  reasons: string[];
  /** Set when the call is exactly one narrow update (narrowUpdateOf). */
  safeUpdate?: SafeUpdate;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A name as the portal compares it: ASCII upper case (PHP does not fold other letters), `_` ignored. */
export function foldName(k: string): string {
  return k.replace(/[a-z]+/g, (s) => s.toUpperCase()).replace(/_/g, '');
}

/** A top-level name: also `arFields`/`arFilter`… (the compat methods' Hungarian spelling, §1.4). */
export function foldTop(k: string): string {
  const f = foldName(k);
  const m = /^AR(FIELDS|PARAMS|FILTER|ORDER|SELECT)$/.exec(f);
  return m ? m[1]! : f;
}

/** The first pair of names in `o` that fold to one name, if any. */
function collision(o: Obj, fold: (k: string) => string): [string, string] | undefined {
  const seen = new Map<string, string>();
  for (const k of Object.keys(o)) {
    const f = fold(k);
    const prior = seen.get(f);
    if (prior !== undefined) return [prior, k];
    seen.set(f, k);
  }
  return undefined;
}

/** A collision anywhere inside `v` (objects and lists), with the path to it. */
function deepCollision(v: unknown, path: string, depth = 0): string | undefined {
  if (depth > 64) return `${path} is nested too deeply`;
  const kids: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : isObj(v) ? Object.entries(v) : [];
  if (isObj(v)) {
    const c = collision(v, foldName);
    if (c) return `${path} has both "${c[0]}" and "${c[1]}", which the portal reads as one name`;
  }
  for (const [k, x] of kids) {
    const found = deepCollision(x, `${path}.${k}`, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** The value of the one name in `o` that folds to `name` (collisions are refused before this is asked). */
export function valueOf(o: Obj, name: string, fold: (k: string) => string = foldName): unknown {
  for (const k of Object.keys(o)) if (fold(k) === name) return o[k];
  return undefined;
}

/** True for a batch value the portal replaces with an earlier command's result (§4.2). */
const REF_RE = /\$(result|next|total|time|error)/i;
export function isRef(v: unknown, o: ReadOptions): boolean {
  return !!o.inBatch && typeof v === 'string' && REF_RE.test(v);
}

/** A plain non-negative integer (number, or digits with spaces around), else undefined: anything odd is unknown. */
function intOf(v: unknown, o: ReadOptions): number | undefined {
  if (isRef(v, o)) return undefined;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^[ \t\n\r]*\d{1,9}[ \t\n\r]*$/.test(v)) return Number(v);
  return undefined;
}

// ---------------------------------------------------------------- activities (§7.8)

const ACTIVITY_ADDS = new Set(['crm.activity.add', 'crm.activity.todo.add']);
/** Fields that hand an activity to a provider (mail, SMS, open lines, an application…). */
const PROVIDER_FIELDS = ['PROVIDERID', 'PROVIDERTYPEID', 'PROVIDERPARAMS', 'PROVIDERDATA', 'PROVIDERGROUPID'];
/** The meeting provider's id (a Bitrix24 constant, not one of our settings). */
const CRM_MEETING = 'CRM_MEETING';
/** Providers that only record something: a call record (TYPE_ID 2) and a meeting (TYPE_ID 1). */
const RECORD_PROVIDERS: Record<number, { id: string; type: string }> = {
  1: { id: CRM_MEETING, type: 'MEETING' },
  2: { id: 'VOXIMPLANT_CALL', type: 'CALL' },
};

/**
 * Why adding this activity may deliver a message, or undefined for a plain call or meeting record (or an
 * incoming e-mail record). Unknown or odd values count as sending.
 */
function activitySends(f: Obj, requireType: boolean, o: ReadOptions): string | undefined {
  const rawType = valueOf(f, 'TYPEID');
  const type = rawType === undefined ? undefined : intOf(rawType, o);
  if (rawType === undefined && requireType) return 'it names no TYPE_ID, so what it does is unknown';
  if (rawType !== undefined && type === undefined) return `its TYPE_ID ${JSON.stringify(rawType)} is not a plain number`;
  const providers = PROVIDER_FIELDS.filter((p) => valueOf(f, p) !== undefined);
  if (providers.length) {
    const rec = type === undefined ? undefined : RECORD_PROVIDERS[type];
    const id = valueOf(f, 'PROVIDERID');
    const pt = valueOf(f, 'PROVIDERTYPEID');
    const same = (v: unknown, want: string) => typeof v === 'string' && v.trim().toUpperCase() === want;
    const recordOnly =
      !!rec && providers.every((p) => p === 'PROVIDERID' || p === 'PROVIDERTYPEID') && same(id, rec.id) && (pt === undefined || same(pt, rec.type));
    if (!recordOnly) return `it hands the activity to a provider (${JSON.stringify(id ?? pt ?? 'PROVIDER_*')}), which may deliver a message`;
  }
  if (type === undefined || type === 1 || type === 2) return undefined;
  if (type === 4) {
    const dir = intOf(valueOf(f, 'DIRECTION'), o);
    return dir === 1 ? undefined : 'an outgoing e-mail activity (TYPE_ID 4) is sent by the portal from its mailbox';
  }
  return `TYPE_ID ${type} is not a call (2) or meeting (1) record`;
}

// ---------------------------------------------------------------- record updates (§7.2, §7.4)

const RECORD_UPDATES = /^crm\.(lead|deal|contact|company|quote|item)\.update$/;
/** Link lists: on update the value replaces the list, so links not named are removed. */
const LINK_LISTS = new Set(['CONTACTIDS', 'CONTACTID', 'COMPANYIDS', 'OBSERVERS', 'OBSERVERIDS']);
/** Multi-fields (§7.4) and crm.item's `fm`. */
const MULTI_FIELDS = new Set(['PHONE', 'EMAIL', 'WEB', 'IM', 'LINK', 'FM']);

/** `[]`, `{}` or a list of blanks (`fields[UF_CRM_1][]=` in a batch): the collection is emptied. */
const isEmptyList = (v: unknown) => (Array.isArray(v) && v.every((x) => x === '' || x === null)) || (isObj(v) && Object.keys(v).length === 0);

/** Why this multi-field value removes something, or undefined when it only adds or overwrites. */
function multiRemoves(name: string, v: unknown, o: ReadOptions): string | undefined {
  const items = Array.isArray(v) ? v : isObj(v) ? Object.values(v) : undefined;
  if (!items) return `${name} is not a list of values (the portal cannot be trusted to only add)`;
  for (const it of items) {
    if (!isObj(it)) return `${name} has an entry that is not a {VALUE, VALUE_TYPE} object`;
    const id = valueOf(it, 'ID');
    if (id === undefined || id === null || id === '') continue; // a new value
    if (isRef(id, o)) return `${name} names a value by an earlier result`;
    const del = valueOf(it, 'DELETE');
    if (del !== undefined && !(del === false || del === 0 || (typeof del === 'string' && /^\s*(n|0|)\s*$/i.test(del))))
      return `${name} removes value ${String(id)} (DELETE)`;
    const value = valueOf(it, 'VALUE');
    if (typeof value !== 'string' && typeof value !== 'number') return `${name} removes value ${String(id)} (an ID without a value)`;
    if (String(value).trim() === '' || isRef(value, o)) return `${name} removes value ${String(id)} (an empty value)`;
  }
  return undefined;
}

/** Why this record update removes or replaces data (a delete), if it does. */
function updateRemoves(method: string, fields: unknown, o: ReadOptions): { reason: string; multi: boolean } | undefined {
  if (fields === undefined) return undefined;
  if (!isObj(fields)) {
    if (Array.isArray(fields) && fields.length === 0) return undefined;
    return { reason: 'its fields are not known before it runs', multi: false };
  }
  const links = new Set(LINK_LISTS);
  if (method === 'crm.contact.update' || method === 'crm.item.update') links.add('COMPANYID');
  // A value removal is remembered, not returned: another field may make the update a delete at the core too.
  let removal: string | undefined;
  for (const [k, v] of Object.entries(fields)) {
    const name = foldName(k);
    if (links.has(name)) {
      const what = name.startsWith('COMPANY') ? 'companies' : name.startsWith('OBSERVER') ? 'observers' : 'contacts';
      return { reason: `${k} replaces the record's linked ${what} (those not listed are unlinked)`, multi: false };
    }
    if (isRef(v, o)) return { reason: `${k} comes from an earlier result and may empty or replace it`, multi: false };
    if (MULTI_FIELDS.has(name)) removal ??= multiRemoves(k, v, o);
    else if (isEmptyList(v)) return { reason: `${k} is set to an empty list, which empties it`, multi: false };
  }
  return removal ? { reason: removal, multi: true } : undefined;
}

// ---------------------------------------------------------------- one call

/**
 * The effect of calling `method` (whose table effect is `base`) with `params`, as the portal will read them.
 * `params` is the JSON body of a call or the parsed query of a batch command.
 */
export function checkParams(method: string, base: Effect, params: unknown, o: ReadOptions = {}): ParamsCheck {
  const reasons: string[] = [];
  if (params === undefined || params === null) params = {};
  if (!isObj(params)) return { effect: 'admin', problem: 'params must be an object of named parameters', reasons };
  const top = collision(params, foldTop);
  if (top) return { effect: 'admin', problem: `params has both "${top[0]}" and "${top[1]}", which the portal reads as one name`, reasons };
  const fields = valueOf(params, 'FIELDS', foldTop);
  const inner = deepCollision(fields, 'fields');
  if (inner) return { effect: 'admin', problem: inner, reasons };
  const refName = o.inBatch ? nameFromResult(params) : undefined;
  if (refName) return { effect: 'admin', problem: `parameter name ${JSON.stringify(refName.slice(0, 80))} is made from an earlier result`, reasons };
  const effects: Effect[] = [base];
  if (base === 'create' && namesExisting(params, fields, o)) {
    effects.push('update');
    reasons.push(`${method} names an existing record by id, so it counts as an update`);
  }
  if (ACTIVITY_ADDS.has(method)) {
    // crm.activity.todo.add takes its values at the top level; both places are read, to be sure.
    const todo = method === 'crm.activity.todo.add';
    const why = isObj(fields)
      ? ((todo ? activitySends(params, false, o) : undefined) ?? activitySends(fields, !todo, o))
      : fields === undefined
        ? todo
          ? activitySends(params, false, o)
          : 'it has no fields, so what it does is unknown'
        : 'its fields are not known before it runs';
    if (why) {
      effects.push('admin');
      reasons.push(`${method} may deliver a message: ${why}`);
    }
  }
  if (RECORD_UPDATES.test(method)) {
    const r = updateRemoves(method, fields, o);
    if (r) {
      effects.push('delete');
      reasons.push(`${method} removes data: ${r.reason}`);
    }
  }
  const effect = strongestEffect(effects);
  const safeUpdate = effect === 'update' ? narrowUpdateOf(method, params, o) : undefined;
  return { effect, reasons, ...(safeUpdate ? { safeUpdate } : {}) };
}

/** A parameter name (at any depth) that the batch replaces with an earlier result (§4.2: names too). */
function nameFromResult(v: unknown, depth = 0): string | undefined {
  if (depth > 64 || (!isObj(v) && !Array.isArray(v))) return undefined;
  for (const [k, x] of Object.entries(v)) {
    if (REF_RE.test(k)) return k;
    const inner = nameFromResult(x, depth + 1);
    if (inner) return inner;
  }
  return undefined;
}

/** True when create params address an existing record (`id` at the top or in `fields`), which may update it. */
function namesExisting(params: Obj, fields: unknown, o: ReadOptions): boolean {
  if (valueOf(params, 'ID', foldTop) !== undefined) return true;
  if (isRef(fields, o)) return true;
  return isObj(fields) && valueOf(fields, 'ID') !== undefined;
}

// ---------------------------------------------------------------- narrow updates (CRM_SAFE_UPDATES)

/** A stage or status id as a narrow update may carry it: plain letters, digits, `_`, `:` and `-` (`C1:WON`, `JUNK`). */
const isStageId = (v: unknown, o: ReadOptions) => typeof v === 'string' && !isRef(v, o) && /^[A-Za-z0-9_:-]{1,50}$/.test(v);

/** The fields each narrow update may set, by method (folded names): the first listed is required. */
const NARROW_FIELDS: Record<string, { kind: SafeUpdate; fields: Record<string, (v: unknown, o: ReadOptions) => boolean> }> = {
  // §7.2: a deal's stage (CATEGORY_ID too: crm.deal.update does not move a deal between pipelines, but it changes nothing else).
  'crm.deal.update': { kind: 'stage', fields: { STAGEID: isStageId, CATEGORYID: (v, o) => intOf(v, o) !== undefined } },
  'crm.lead.update': { kind: 'stage', fields: { STATUSID: isStageId } },
  // An activity (a CRM to-do) marked done and nothing else.
  'crm.activity.update': { kind: 'task_done', fields: { COMPLETED: (v) => v === 'Y' } },
};

/**
 * The narrow update a call is, or undefined: `crm.deal.update`/`crm.lead.update` with `id` and `fields` that
 * set only the stage (deal `STAGE_ID`, at most `CATEGORY_ID`; lead `STATUS_ID`); `crm.activity.update` with
 * only `COMPLETED: "Y"`; `tasks.task.complete` with only `taskId`. Names are read folded, as the portal reads
 * them (a collision is refused before this is asked); any other parameter, or a value from an earlier batch
 * result, makes it a plain update.
 */
export function narrowUpdateOf(method: string, params: unknown, o: ReadOptions = {}): SafeUpdate | undefined {
  if (!isObj(params)) return undefined;
  const positiveId = (v: unknown) => (intOf(v, o) ?? 0) > 0;
  // `auth_connector` (sent with writes while offline events are bound) only names the caller's event queue.
  const keys = Object.keys(params).filter((k) => foldTop(k) !== 'AUTHCONNECTOR' || typeof params[k] !== 'string');
  const names = keys.map(foldTop);
  if (method === 'tasks.task.complete') return names.length === 1 && names[0] === 'TASKID' && positiveId(params[keys[0]!]) ? 'task_done' : undefined;
  const rule = NARROW_FIELDS[method];
  if (!rule || names.length !== 2 || !names.includes('ID') || !names.includes('FIELDS')) return undefined;
  if (!positiveId(valueOf(params, 'ID', foldTop))) return undefined;
  const fields = valueOf(params, 'FIELDS', foldTop);
  if (!isObj(fields)) return undefined;
  const allowed = Object.keys(rule.fields);
  const set = Object.entries(fields).map(([k, v]) => [foldName(k), v] as const);
  if (!set.some(([k]) => k === allowed[0])) return undefined;
  return set.every(([k, v]) => Object.hasOwn(rule.fields, k) && rule.fields[k]!(v, o)) ? rule.kind : undefined;
}

/** A batch's narrow update: every write in it is the same narrow update (one wider write, or a create, and it is not). */
export function narrowBatch(effect: Effect, commands: ReadonlyArray<{ effect: Effect; safeUpdate?: SafeUpdate }>): { safeUpdate?: SafeUpdate } {
  const kinds = new Set(commands.filter((c) => c.effect !== 'read').map((c) => c.safeUpdate));
  const [kind] = kinds;
  return effect === 'update' && kinds.size === 1 && kind !== undefined ? { safeUpdate: kind } : {};
}

// ---------------------------------------------------------------- batch commands (§4.2)

/** PHP's urldecode: `+` is a space and %XX escapes are bytes (read as UTF-8); other `%` stay as they are. */
function phpUrlDecode(s: string): string {
  return s.replace(/\+/g, ' ').replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8'));
}

const MAX_PAIRS = 1000; // PHP's max_input_vars: the rest would be dropped
const MAX_DEPTH = 64; // PHP's max_input_nesting_level

/**
 * Parses a batch command's query the way PHP's `parse_str` does for plain bracket names (`fields[PHONE][0][VALUE]=…`,
 * `select[]=ID`). Names PHP would rewrite or cut (spaces, dots, unclosed or nested brackets, text after `]`,
 * NUL), a name given twice, a name used both as a value and as a list, and more pairs than PHP keeps are
 * refused, so the parse is always what the portal reads.
 */
export function parseBatchQuery(query: string): { params: Obj } | { problem: string } {
  const params: Obj = {};
  const pairs = query.split('&').filter((p) => p !== '');
  if (pairs.length > MAX_PAIRS) return { problem: `more than ${MAX_PAIRS} parameters (the portal drops the rest)` };
  const seen = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const rawName = phpUrlDecode(eq < 0 ? pair : pair.slice(0, eq)).replace(/^ +/, '');
    const value = phpUrlDecode(eq < 0 ? '' : pair.slice(eq + 1));
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawName);
    if (!m || /[ .\0]/.test(m[1]!) || rawName.includes('\0'))
      return { problem: `parameter name ${JSON.stringify(rawName.slice(0, 80))} is not plain PHP bracket notation` };
    const path = [m[1]!, ...[...m[2]!.matchAll(/\[([^\]]*)\]/g)].map((x) => x[1]!)];
    if (path.length > MAX_DEPTH) return { problem: `parameter ${m[1]} is nested too deeply` };
    const key = path.join('\u0000');
    if (!path.includes('') && seen.has(key)) return { problem: `parameter ${JSON.stringify(rawName.slice(0, 80))} is given twice` };
    seen.add(key);
    let node: Obj | unknown[] = params;
    for (let i = 0; i < path.length; i++) {
      const last = i === path.length - 1;
      const container = node as Obj;
      const k = path[i] === '' ? String(Object.keys(container).length) : path[i]!;
      const cur = container[k];
      if (last) {
        if (cur !== undefined) return { problem: `parameter ${JSON.stringify(rawName.slice(0, 80))} is given both as a value and as a list` };
        container[k] = value;
      } else {
        if (cur !== undefined && !isObj(cur)) return { problem: `parameter ${JSON.stringify(rawName.slice(0, 80))} is given both as a value and as a list` };
        if (cur === undefined) container[k] = {};
        node = container[k] as Obj;
      }
    }
  }
  return { params: listify(params) as Obj };
}

/** `{0: a, 1: b}` → `[a, b]`, as PHP arrays with keys 0..n-1 are lists. */
function listify(v: unknown): unknown {
  if (!isObj(v)) return v;
  const keys = Object.keys(v);
  for (const k of keys) v[k] = listify(v[k]);
  return keys.length > 0 && keys.every((k, i) => k === String(i)) ? keys.map((k) => v[k]) : v;
}
