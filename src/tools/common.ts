/** Input pieces shared by several tools. */
import * as z from 'zod';
import { Id } from '../providers/types.js';

/**
 * A record id. The schema is kept loose (number or short string, ~60 bytes instead of ~110 in every tool's
 * schema the model reads); the providers check that ids are whole numbers (Bitrix24 numbers deal categories
 * from 0, the General pipeline; its stage ids are strings such as "C1:NEW").
 */
export const IdInput = z.union([z.number(), z.string().min(1).max(64)]);
export const Limit = z.number().int().min(1).max(250).default(50).describe('Page size (1–250, default 50).');
export const ListSortInput = z
  .enum(['created_desc', 'created_asc', 'updated_desc'])
  .default('created_desc')
  .describe('Order: newest created first (default), oldest created first, or last updated first.');
export const Cursor = z.string().max(4096).optional().describe('Cursor from a previous call; omit for the first page.');
export const ShortText = z.string().max(255);
export const RecordId = IdInput.describe('Record id.');
export const ResponsibleId = IdInput.describe('Responsible user id (list_users).');
export const Price = z.number().min(0).max(1e12).describe('Amount in the account currency.');
export const FirstName = ShortText.describe('First name.');
export const LastName = ShortText.describe('Last name.');
export const FullName = ShortText.describe('Full name, when first/last are not given (split at the last space).');
export const Phone = z
  .string()
  .min(3)
  .max(40)
  .refine((v) => (v.match(/\d/g)?.length ?? 0) >= 5, 'a phone number needs at least 5 digits')
  .describe('Phone number in any format; include the country code where you can (e.g. +7 912 345-67-89).');
export const Email = z.string().min(3).max(254).describe('Email address (matched case-insensitively).');
export const Tags = z.array(z.string().min(1).max(100)).max(50).describe('Tag names (Kommo).');

export const CustomFieldsInput = z
  .array(
    z
      .object({
        field_id: IdInput.optional().describe('Field id.'),
        field_code: z.string().max(100).optional().describe('Field code, e.g. PHONE.'),
        field_name: z.string().max(255).optional().describe('Field label as shown in the CRM.'),
        value: z
          .union([z.string().max(10_000), z.number(), z.boolean(), z.array(z.union([z.string().max(10_000), z.number(), z.boolean()])).max(50)])
          .describe('Value(s); select options by label or id.'),
      })
      .strict(),
  )
  .max(40)
  .describe('Custom field values, each addressed by field_id, field_code or field_name.');

export const PlannedRequests = z
  .array(z.object({ method: z.string(), url: z.string(), body: z.unknown().optional() }))
  .optional()
  .describe('With dry_run: the exact requests that would be sent.');

export { Id };

export const WithCustomFields = z.boolean().optional().describe('Include custom fields (default false; get_* tools always include them).');

/** Drops custom fields from list items unless the caller asked for them. */
export function listItems<P extends { items: Array<{ custom_fields?: unknown }> }>(page: P, withCustomFields: boolean | undefined): P {
  if (withCustomFields) return page;
  return { ...page, items: page.items.map(({ custom_fields: _c, ...rest }) => rest) };
}
