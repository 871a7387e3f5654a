/**
 * What a Kommo write body does beyond its path: the body rules of the classification (effects.ts).
 * Kommo is PHP: `json_decode($body, true)` cannot tell `{"0":{…}}` from `[{…}]`, nor `{}` from `[]`, so a
 * body is first given the shape Kommo sees (phpShape) and every rule reads that shape, never the JSON
 * spelling. Each rule says why, so a refusal names what in the body made the call stronger.
 */
import type { Effect } from '../../policy/policy.js';

export interface BodyFinding {
  effect: Effect;
  why: string;
}

/** Deeper than any Kommo payload: a body nested further is not classified and counts as the strongest effect. */
const MAX_DEPTH = 32;

/** A key PHP turns into an integer array key ("0", "17", "-3"; not "01" or "1.0"). */
function isIntKey(k: string): boolean {
  return /^(0|-?[1-9]\d{0,17})$/.test(k);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class TooDeep extends Error {}

/**
 * The body as PHP's decoder hands it to Kommo: an object whose keys are all integers (an empty object too)
 * is a list. Throws TooDeep past MAX_DEPTH levels.
 */
export function phpShape(v: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) throw new TooDeep();
  if (Array.isArray(v)) return v.map((x) => phpShape(x, depth + 1));
  if (!isPlainObject(v)) return v;
  const keys = Object.keys(v);
  const shaped = keys.map((k) => [k, phpShape(v[k], depth + 1)] as const);
  if (keys.every(isIntKey)) return shaped.map(([, x]) => x);
  return Object.fromEntries(shaped);
}

/**
 * The elements Kommo may take as records: a list's elements; for an object, the object itself and every
 * object inside it (a PHP array with some integer keys is iterated like a list, so `{"name":"x","7":{"id":1}}`
 * carries an element with an id).
 */
export function elementsOf(shaped: unknown): Array<Record<string, unknown>> {
  if (Array.isArray(shaped)) return shaped.filter(isPlainObject);
  if (!isPlainObject(shaped)) return [];
  return [shaped, ...Object.values(shaped).filter(isPlainObject)];
}

/** True when a create addresses an existing record by an item-level `id`, which Kommo may take as "update it". */
export function namesExisting(shaped: unknown): boolean {
  return elementsOf(shaped).some((it) => Object.keys(it).some((k) => k.toLowerCase() === 'id'));
}

const nonEmpty = (v: unknown) => v !== undefined && !(Array.isArray(v) && v.length === 0);

/**
 * §5.5: with the account's duplicate control on (a setting the API does not show), Kommo merges a complex
 * lead whose contact matches an existing one into that contact's open lead, and a contact given by id is
 * that contact: any embedded contact or company may change an existing lead.
 */
export function complexTouchesExisting(shaped: unknown): boolean {
  return elementsOf(shaped).some((it) => {
    const emb = it._embedded;
    return isPlainObject(emb) && (nonEmpty(emb.contacts) || nonEmpty(emb.companies));
  });
}

/** A custom field write that clears values: `values` null, empty or missing, or a value that is null or "". */
export function clearsCustomField(f: unknown): boolean {
  if (!isPlainObject(f)) return false;
  if (!Array.isArray(f.values) || f.values.length === 0) return true;
  return f.values.some((v) => isPlainObject(v) && (v.value === null || v.value === '') && v.enum_id === undefined && v.enum_code === undefined);
}

/**
 * What a PATCH of records removes (§5.4): `_embedded` replaces the whole set it names (tags not passed are
 * detached, `null` or `[]` detaches all; links likewise), `tags_to_delete` detaches tags, and a custom field
 * sent with no values (or `custom_fields_values: null`) is cleared. Removing data is a delete.
 */
export function updateRemoves(shaped: unknown): BodyFinding | undefined {
  for (const it of elementsOf(shaped)) {
    if ('_embedded' in it && nonEmpty(it._embedded)) {
      const what = isPlainObject(it._embedded) ? Object.keys(it._embedded).join(', ') : 'everything it names';
      return { effect: 'delete', why: `replaces the record's ${what} (\`_embedded\` on a PATCH detaches whatever it does not list)` };
    }
    if ('tags_to_delete' in it && nonEmpty(it.tags_to_delete)) return { effect: 'delete', why: 'removes tags from records (`tags_to_delete`)' };
    const cfv = it.custom_fields_values;
    if ('custom_fields_values' in it && (cfv === null || (Array.isArray(cfv) ? cfv.some(clearsCustomField) : cfv !== undefined && !isPlainObject(cfv)))) {
      return { effect: 'delete', why: 'clears custom field values (a field sent with no values, or null)' };
    }
  }
  return undefined;
}

/** A tag reference that can only be an existing tag: `{ "id": <integer> }` and nothing else. */
function isTagById(t: unknown): boolean {
  return isPlainObject(t) && Object.keys(t).length === 1 && Number.isInteger(t.id);
}

/**
 * §9: a tag given by name that the account does not have is created in the account's tag list, which is
 * configuration (admin), whatever the request is for. Only tags given by id alone are sure to exist; the
 * whole body is searched, so a tag list nested in an incoming lead counts too.
 */
export function namesTags(shaped: unknown, depth = 0): boolean {
  if (depth > MAX_DEPTH) return true;
  if (Array.isArray(shaped)) return shaped.some((x) => namesTags(x, depth + 1));
  if (!isPlainObject(shaped)) return false;
  for (const [k, v] of Object.entries(shaped)) {
    const key = k.toLowerCase();
    if ((key === 'tags' || key === 'tags_to_add') && v !== null && v !== undefined) {
      if (!(Array.isArray(v) ? v : [v]).every(isTagById)) return true;
    }
    if (namesTags(v, depth + 1)) return true;
  }
  return false;
}

// ---------------------------------------------------------------- narrow updates (CRM_SAFE_UPDATES)

/** A Kommo id as a narrow update may carry it: a positive integer number (a string, a float or null is not). */
const isPositiveId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** The keys a stage move may carry (§5.4: `status_id`, with `pipeline_id` across pipelines; `loss_reason_id` when lost). */
const STAGE_KEYS: ReadonlySet<string> = new Set(['status_id', 'pipeline_id', 'loss_reason_id']);

/** True when one lead's body changes its stage and nothing else: `status_id`, and at most `pipeline_id` and `loss_reason_id`. */
function stageOnly(it: Record<string, unknown>): boolean {
  return isPositiveId(it.status_id) && Object.entries(it).every(([k, v]) => STAGE_KEYS.has(k) && isPositiveId(v));
}

/** True when one task's body completes it and nothing else: `is_completed: true`, and at most `result: {text}`. */
function completesOnly(it: Record<string, unknown>): boolean {
  if (it.is_completed !== true) return false;
  return Object.entries(it).every(
    ([k, v]) => k === 'is_completed' || (k === 'result' && isPlainObject(v) && Object.keys(v).length === 1 && typeof v.text === 'string'),
  );
}

/**
 * The body of a PATCH to one record (`/{entity}/{id}`: an object without `id`, §5.4) or to the collection
 * (`/{entity}`: a list of exactly one object with its `id`), as the one element whose fields `check` reads.
 * Anything else (two records, an `id` beside the path's, a list on the single path) is not a narrow update.
 */
function oneRecord(shaped: unknown, single: boolean, check: (it: Record<string, unknown>) => boolean): boolean {
  if (single) return isPlainObject(shaped) && !('id' in shaped) && check(shaped);
  if (!Array.isArray(shaped) || shaped.length !== 1 || !isPlainObject(shaped[0])) return false;
  const { id, ...rest } = shaped[0];
  return isPositiveId(id) && check(rest);
}

/** `stage` when the body (as PHP reads it) moves one lead and changes nothing else, else undefined. */
export function stageMoveBody(shaped: unknown, single: boolean): 'stage' | undefined {
  return oneRecord(shaped, single, stageOnly) ? 'stage' : undefined;
}

/** `task_done` when the body (as PHP reads it) completes one task and changes nothing else, else undefined. */
export function taskDoneBody(shaped: unknown, single: boolean): 'task_done' | undefined {
  return oneRecord(shaped, single, completesOnly) ? 'task_done' : undefined;
}
