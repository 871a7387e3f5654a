/**
 * Bitrix24 notes of one record: its timeline comments, newest first (fact sheet §7.8 `crm.timeline.comment.list`:
 * `ENTITY_ID` and `ENTITY_TYPE` are the filter it needs; `order` by ID, CREATED or AUTHOR_ID; 50 a page, §4.1).
 */
import type { CallContext, ListNotesInput, NoteItem, Page } from '../types.js';
import { bxId } from './ids.js';
import { iso, recordUrl, str } from './map.js';
import type { BitrixParts } from './metadata.js';
import { getRow } from './records.js';
import { rowsOf } from './schemas.js';
import { offsetPage, rowName } from './tasks.js';

const SELECT = ['ID', 'CREATED', 'ENTITY_ID', 'ENTITY_TYPE', 'AUTHOR_ID', 'COMMENT'];

export async function listNotes(b: BitrixParts, ctx: CallContext, q: ListNotesInput): Promise<Page<NoteItem>> {
  const id = bxId(q.entity_id, 'entity_id');
  // The record is read first: it must exist (not_found, nothing else sent) and it gives the name.
  const record = await getRow(b, ctx, q.entity, id);
  const first = q.cursor ? { cursor: q.cursor } : { filter: { ENTITY_ID: id, ENTITY_TYPE: q.entity }, limit: q.limit };
  const page = await offsetPage(
    b,
    ctx,
    'crm.timeline.comment.list',
    `bn:${q.entity}:${id}`,
    (filter, start) => ({ filter, select: SELECT, order: { ID: 'DESC' }, start }),
    (result) => rowsOf(result, 'crm.timeline.comment.list'),
    first,
  );
  const l = await b.meta.lookups(ctx);
  const ref = { entity: q.entity, id, name: rowName(record), url: recordUrl(l.web, q.entity, id) };
  return {
    items: page.rows.map((r) => {
      const author = str(r.AUTHOR_ID);
      return {
        id: Number(r.ID),
        type: 'comment',
        text: str(r.COMMENT),
        record: ref,
        author: author ? { id: Number(author), name: l.users.get(author)?.name ?? null } : null,
        created_at: iso(r.CREATED),
      };
    }),
    has_more: page.cursor !== null,
    cursor: page.cursor,
    total: page.total,
  };
}
