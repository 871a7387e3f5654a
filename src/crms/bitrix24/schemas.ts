/**
 * Lenient schemas of the Bitrix24 payloads the provider reads (fact sheet §3–§7): loose objects with only
 * the fields the code uses. Bitrix24 sends ids and sorts as strings or numbers, and PHP sends an empty map
 * as `[]` (§3), so both are accepted where they occur. They replace casts at the API layer: an answer that
 * does not fit is an `upstream` error naming where, never a crash further on. The emulator's contract test
 * parses its answers and the vendored real fixtures with these same schemas.
 */
import { parsePayload } from '../payload.js';
import { z } from 'zod';

const idLike = z.union([z.string(), z.number()]);

/** A record as crm.*.get / crm.*.list return it: UPPER_CASE fields, read by the mappers field by field. */
export const BRow = z.record(z.string(), z.unknown());
export const BRows = z.array(BRow);

/** The envelope of every REST answer (§3). */
export const BEnvelope = z.looseObject({ result: z.unknown(), next: z.unknown().optional(), total: z.unknown().optional(), time: z.unknown().optional() });

/** PHP's empty map arrives as `[]` (§3): read it as an empty object. */
const phpMap = <T extends z.ZodType>(value: T) =>
  z.union([z.record(z.string(), value), z.array(z.never()).transform(() => ({}) as Record<string, z.infer<T>>)]);

/** The `result` of `batch` (§4.2): per-command results, errors, totals, next offsets and times. */
export const BBatch = z.looseObject({
  result: phpMap(z.unknown()).nullish(),
  result_error: phpMap(z.looseObject({ error: z.coerce.string(), error_description: z.coerce.string().default('') })).nullish(),
  result_total: phpMap(z.unknown()).nullish(),
  result_next: phpMap(z.unknown()).nullish(),
  result_time: z.unknown().optional(),
});

/** crm.category.list (entityTypeId 2): the deal pipelines. */
export const BCategoryList = z.looseObject({
  categories: z.array(z.looseObject({ id: idLike, name: z.string(), sort: idLike, isDefault: z.string().optional() })).nullish(),
});

/** crm.status.list: deal stages and lead statuses (§7.6). */
export const BStatus = z.looseObject({
  ID: idLike.optional(),
  ENTITY_ID: z.string(),
  STATUS_ID: z.string(),
  NAME: z.string(),
  SORT: idLike,
  CATEGORY_ID: idLike.nullish(),
  COLOR: z.string().nullish(),
  SEMANTICS: z.string().nullish(),
  EXTRA: z.looseObject({ SEMANTICS: z.string().optional(), COLOR: z.string().optional() }).nullish(),
});
export const BStatuses = z.array(BStatus);

/** crm.*.fields: field descriptions by name; list items (enum options) by ID (§7.5). */
export const BField = z.looseObject({
  type: z.string(),
  isRequired: z.boolean().optional(),
  isReadOnly: z.boolean().optional(),
  isMultiple: z.boolean().optional(),
  isDynamic: z.boolean().optional(),
  title: z.string().optional(),
  formLabel: z.string().optional(),
  listLabel: z.string().optional(),
  items: z.array(z.looseObject({ ID: idLike.transform(String), VALUE: z.string() })).optional(),
});
export const BFields = phpMap(BField);

/** tasks.task.add: the new task (its id as `id`, or `ID` on older portals). */
export const BTaskAdded = z.looseObject({ task: BRow.nullish() });

export type BRowT = z.infer<typeof BRow>;
export type BStatusT = z.infer<typeof BStatus>;
export type BFieldT = z.infer<typeof BField>;

/** Parses a Bitrix24 answer; one that does not fit is an `upstream` error saying where, not a crash later. */
export function parseBitrix<S extends z.ZodType>(schema: S, data: unknown, what: string): z.infer<S> {
  return parsePayload('Bitrix24', schema, data, what);
}

/** A list result: rows when it is a list (anything else reads as none, as before), each row an object. */
export function rowsOf(v: unknown, what: string): Array<Record<string, unknown>> {
  return Array.isArray(v) ? parseBitrix(BRows, v, what) : [];
}
