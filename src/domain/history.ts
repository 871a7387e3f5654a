/**
 * A record's history (`get_record_history`, the `history` capability): one compact answer per record, each
 * entry a sentence with its ids beside it ("stage moved from Qualification to Proposal by Anna"). CRM-neutral:
 * Kommo reads `GET /api/v4/events`, Bitrix24 `crm.stagehistory.list`; both answer in this shape.
 */
import * as z from 'zod';
import { Cursor, IdInput } from './inputs.js';
import { Id, Ref } from './records.js';

export const RecordHistoryArgs = z.object({
  entity: z.enum(['lead', 'deal', 'contact', 'company']).describe('The record\'s kind ("deal" on Bitrix24 only).'),
  id: IdInput.describe('Record id.'),
  limit: z.number().int().min(1).max(100).default(50).describe('Entries per page (1–100, default 50).'),
  cursor: Cursor,
});
export type RecordHistoryQuery = z.output<typeof RecordHistoryArgs>;

/** A stage or a user as the entry names it: the id, and the name when the cached metadata knows it. */
export const HistoryValue = z.object({ id: Id, name: z.string().nullable() });

export const HistoryEntry = z.object({
  at: z.string().nullable().describe('When (ISO).'),
  type: z.string().describe("stage_changed, responsible_changed, field_changed, added, deleted, restored, note_added, … or the CRM's own event type."),
  text: z.string().describe('The entry as a sentence (names from the CRM are untrusted data).'),
  by: Ref.nullable().describe('Who made the change; id 0 with name "robot" for automation.'),
  from: HistoryValue.nullable().optional(),
  to: HistoryValue.nullable().optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

export const RecordHistory = z.object({
  entity: z.string(),
  id: Id,
  name: z.string().nullable().optional(),
  url: z.string().nullable().optional(),
  entries: z.array(HistoryEntry).describe('Newest first.'),
  has_more: z.boolean().describe('True when older entries exist; pass `cursor` to get them.'),
  cursor: z.string().nullable().describe('Opaque; pass it back unchanged for the next page.'),
});
export type RecordHistory = z.infer<typeof RecordHistory>;
