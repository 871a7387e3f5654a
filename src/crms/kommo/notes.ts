/** Kommo notes of one record, newest first (fact sheet §9: `GET /api/v4/{entity}/{id}/notes`). */
import { z } from 'zod';
import { validationError } from '../../domain/errors.js';
import type { CallContext, ListNotesInput, NoteItem, Page } from '../types.js';
import { toId } from './ids.js';
import { iso, recordUrl } from './map.js';
import type { KommoParts } from './metadata.js';
import { rawEntity, rawLead } from './records.js';

const opt = <T extends z.ZodType>(t: T) => t.nullish();

/** One note of a `GET …/notes` page (§9); `params` depends on `note_type`. */
export const KNote = z.looseObject({
  id: z.number(),
  entity_id: opt(z.number()),
  note_type: opt(z.string()),
  params: opt(z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())])),
  created_by: opt(z.number()),
  created_at: opt(z.number()),
});
type KNote = z.infer<typeof KNote>;

/** The readable part of a note: its text, else what a call or message note carries. */
function noteText(n: KNote): string | null {
  const p = n.params && !Array.isArray(n.params) ? n.params : {};
  if (typeof p.text === 'string' && p.text) return p.text;
  const bits = [p.phone, p.duration !== undefined ? `${String(p.duration)} s` : undefined, p.service, p.file_name].filter(
    (x): x is string | number => typeof x === 'string' || typeof x === 'number',
  );
  return bits.length ? bits.join(', ') : null;
}

export async function listNotes(k: KommoParts, ctx: CallContext, q: ListNotesInput): Promise<Page<NoteItem>> {
  if (q.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
  const id = toId(q.entity_id, 'entity_id');
  // The record is read first: it must exist (404/204 → not_found, nothing else sent) and it gives the name.
  const record =
    q.entity === 'lead'
      ? await rawLead(k, ctx, id)
      : q.entity === 'contact'
        ? await rawEntity(k, ctx, 'contacts', id, 'leads')
        : await rawEntity(k, ctx, 'companies', id, 'contacts');
  const entity = q.entity === 'company' ? 'companies' : `${q.entity}s`;
  const path = `/api/v4/${entity}/${id}/notes`;
  const page = await k.api.listPage(ctx, path, 'notes', KNote, [['order[id]', 'desc']], q.limit, q.cursor);
  const l = await k.meta.lookups(ctx);
  const ref = { entity: q.entity, id, name: record.name ?? null, url: recordUrl(l.web, q.entity, id) };
  return {
    items: page.items.map((n) => ({
      id: n.id,
      type: n.note_type ?? 'common',
      text: noteText(n),
      record: ref,
      author: n.created_by ? { id: n.created_by, name: l.users.get(n.created_by)?.name ?? null } : null,
      created_at: iso(n.created_at),
    })),
    has_more: page.has_more,
    cursor: page.cursor,
    total: null,
  };
}
