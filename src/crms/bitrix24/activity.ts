/** Bitrix24 timeline comments (notes), tasks and deletes: each on a record that exists, checked first. */
import { parseDeadline } from '../../domain/dates.js';
import { checkTaskTarget, noteText, taskText } from '../../domain/validate.js';
import type { CallContext, Id, Note, NoteInput, Task, TaskInput, WriteResult } from '../types.js';
import { bxId } from './ids.js';
import { iso, num } from './map.js';
import type { BitrixParts, Entity } from './metadata.js';
import { getRow } from './records.js';
import { BRow, BTaskAdded, parseBitrix } from './schemas.js';

export async function addNote(b: BitrixParts, ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>> {
  const id = bxId(input.entity_id);
  const text = noteText(input.text);
  await getRow(b, ctx, input.entity, id);
  const params = { fields: { ENTITY_ID: id, ENTITY_TYPE: input.entity, COMMENT: text } };
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [b.api.plan('crm.timeline.comment.add', params)] };
  const r = await b.api.call<unknown>(ctx, 'crm.timeline.comment.add', params);
  return { item: { id: num(r.result)!, entity: input.entity, entity_id: id, text, created_at: new Date().toISOString() } };
}

export async function createTask(b: BitrixParts, ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>> {
  const text = taskText(input.text);
  const due = parseDeadline(input.complete_till, 'complete_till');
  checkTaskTarget(input);
  const l = await b.meta.lookups(ctx);
  const me = parseBitrix(BRow, (await b.api.call<unknown>(ctx, 'profile')).result ?? {}, 'profile');
  const responsible = (await b.meta.checkUser(ctx, input.responsible_user_id)) ?? Number(me.ID);
  let binding: string | undefined;
  if (input.entity && input.entity_id !== undefined) {
    const id = bxId(input.entity_id);
    await getRow(b, ctx, input.entity, id);
    binding = `${{ lead: 'L', deal: 'D', contact: 'C', company: 'CO' }[input.entity]}_${id}`;
  }
  const params = {
    fields: {
      TITLE: text.slice(0, 250),
      DESCRIPTION: text,
      RESPONSIBLE_ID: responsible,
      DEADLINE: new Date(due).toISOString(),
      ...(binding ? { UF_CRM_TASK: [binding] } : {}),
    },
  };
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [b.api.plan('tasks.task.add', params)] };
  const r = await b.api.call<unknown>(ctx, 'tasks.task.add', params);
  const task = parseBitrix(BTaskAdded, r.result ?? {}, 'tasks.task.add').task ?? {};
  return {
    item: {
      id: num(task.id) ?? num(task.ID) ?? 0,
      text,
      complete_till: iso(new Date(due).toISOString()),
      entity: input.entity ?? null,
      entity_id: input.entity_id !== undefined ? bxId(input.entity_id) : null,
      responsible: { id: responsible, name: l.users.get(String(responsible))?.name ?? null },
      is_completed: false,
    },
  };
}

export async function deleteRecord(b: BitrixParts, ctx: CallContext, entityIn: Entity | undefined, id: Id): Promise<WriteResult<{ id: Id; entity: string }>> {
  const entity = entityIn ?? (await b.meta.defaultEntity(ctx, undefined));
  const n = bxId(id);
  await getRow(b, ctx, entity, n);
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [b.api.plan(`crm.${entity}.delete`, { id: n })] };
  await b.api.call(ctx, `crm.${entity}.delete`, { id: n });
  return { item: { id: n, entity } };
}
