/**
 * Lenient schemas of the Kommo payloads the provider reads (fact sheet §4–§9): loose objects (unknown keys
 * kept) with only the fields the mappers use, every optional one nullable, since Kommo sends `null` for unset
 * values. They replace casts at the API layer: an answer that does not fit is an `upstream` error naming
 * where, never a crash further on. The emulator's contract test parses its answers and the vendored real
 * fixtures with these same schemas.
 */
import { parsePayload } from '../payload.js';
import { z } from 'zod';

const id = z.number();
const opt = <T extends z.ZodType>(t: T) => t.nullish();

export const KEmbeddedRef = z.looseObject({ id, is_main: opt(z.boolean()) });
export const KTag = z.looseObject({ id, name: z.string(), color: opt(z.string()) });

export const KCustomFieldValue = z.looseObject({
  field_id: id,
  field_name: opt(z.string()),
  field_code: opt(z.string()),
  field_type: opt(z.string()),
  values: opt(z.array(z.looseObject({ value: z.unknown(), enum_id: opt(z.number()), enum_code: opt(z.string()), enum: opt(z.string()) }))),
});

const records = {
  id,
  name: opt(z.string()),
  responsible_user_id: opt(z.number()),
  created_at: opt(z.number()),
  updated_at: opt(z.number()),
  custom_fields_values: opt(z.array(KCustomFieldValue)),
};

/** GET /api/v4/leads and /leads/{id} (§5.1). */
export const KLead = z.looseObject({
  ...records,
  price: opt(z.number()),
  status_id: opt(z.number()),
  pipeline_id: opt(z.number()),
  closed_at: opt(z.number()),
  _embedded: opt(z.looseObject({ tags: opt(z.array(KTag)), contacts: opt(z.array(KEmbeddedRef)), companies: opt(z.array(KEmbeddedRef)) })),
});

/** GET /api/v4/contacts and /companies, one or a page (§6): the two share a shape. */
export const KContact = z.looseObject({
  ...records,
  first_name: opt(z.string()),
  last_name: opt(z.string()),
  _embedded: opt(
    z.looseObject({ tags: opt(z.array(KTag)), companies: opt(z.array(KEmbeddedRef)), leads: opt(z.array(KEmbeddedRef)), contacts: opt(z.array(KEmbeddedRef)) }),
  ),
});

export const KStatus = z.looseObject({ id, name: z.string(), sort: z.number(), type: opt(z.number()), color: opt(z.string()), pipeline_id: opt(z.number()) });

/** GET /api/v4/leads/pipelines (§7). */
export const KPipeline = z.looseObject({
  id,
  name: z.string(),
  sort: z.number(),
  is_main: opt(z.boolean()),
  is_archive: opt(z.boolean()),
  _embedded: opt(z.looseObject({ statuses: opt(z.array(KStatus)) })),
});

/** GET /api/v4/users (§9). */
export const KUser = z.looseObject({
  id,
  name: z.string(),
  email: opt(z.string()),
  rights: opt(z.looseObject({ is_admin: opt(z.boolean()), is_active: opt(z.boolean()) })),
});

/** GET /api/v4/{entity}/custom_fields (§8). */
export const KCustomField = z.looseObject({
  id,
  name: z.string(),
  code: opt(z.string()),
  type: z.string(),
  entity_type: opt(z.string()),
  is_api_only: opt(z.boolean()),
  enums: opt(z.array(z.looseObject({ id, value: z.string(), sort: opt(z.number()) }))),
});

/** GET /api/v4/account (§1): read field by field with type checks, so only "an object" is required. */
export const KAccount = z.record(z.string(), z.unknown());

/** A HAL list page (§4): `_embedded[key]` holds the items; `_links.next` says another page follows. */
export const KHalPage = z.looseObject({
  _page_count: z.unknown().optional(),
  _links: opt(z.looseObject({ next: z.unknown().optional() })),
  _embedded: opt(z.record(z.string(), z.unknown())),
});

/** The answer to a create through HAL (POST /contacts, /notes, /tasks): `_embedded[key]` lists the new records. */
export const KCreated = z.looseObject({ _embedded: z.record(z.string(), z.unknown()) });
const KCreatedList = z.array(z.looseObject({ id })).min(1);

/** The first new record's id in a HAL create's answer, or undefined when the answer carries none. */
export function createdId(data: unknown, key: string): number | undefined {
  const env = KCreated.safeParse(data);
  const list = env.success ? KCreatedList.safeParse(env.data._embedded[key]) : undefined;
  return list?.success ? list.data[0]!.id : undefined;
}

/** POST /api/v4/leads/complex (§5.5): one entry per lead, `merged` when duplicate control merged it. */
export const KComplexCreated = z
  .array(z.looseObject({ id, contact_id: opt(z.number()), company_id: opt(z.number()), merged: opt(z.boolean()), request_id: z.unknown().optional() }))
  .min(1);

export type KEmbeddedRef = z.infer<typeof KEmbeddedRef>;
export type KCustomFieldValue = z.infer<typeof KCustomFieldValue>;
export type KLead = z.infer<typeof KLead>;
export type KContact = z.infer<typeof KContact>;
export type KStatus = z.infer<typeof KStatus>;
export type KPipeline = z.infer<typeof KPipeline>;
export type KUser = z.infer<typeof KUser>;
export type KCustomField = z.infer<typeof KCustomField>;
export type KTag = z.infer<typeof KTag>;

/** Parses a Kommo answer; one that does not fit is an `upstream` error saying where, not a crash later. */
export function parseKommo<S extends z.ZodType>(schema: S, data: unknown, what: string): z.infer<S> {
  return parsePayload('Kommo', schema, data, what);
}
