/** Kommo notes and tasks: attached to a record that exists, sent once (creates are never blindly re-sent). */
import { randomUUID } from 'node:crypto';
import { CrmError, validationError } from '../../domain/errors.js';
import { parseDeadline } from '../../domain/dates.js';
import { checkTaskTarget, noteText, taskText } from '../../domain/validate.js';
import type { CallContext, Note, NoteInput, Task, TaskInput, WriteResult } from '../types.js';
import type { EntityPath } from './api.js';
import { toId } from './ids.js';
import { iso } from './map.js';
import type { KommoParts } from './metadata.js';
import { rawEntity, rawLead } from './records.js';
import { createdId } from './schemas.js';

function entityPath(entity: 'lead' | 'contact' | 'company'): EntityPath {
  return `${entity === 'company' ? 'companie' : entity}s` as EntityPath;
}

/** The record a note or task is attached to must exist: read it first (404 → not_found, nothing sent). */
async function mustExist(k: KommoParts, ctx: CallContext, entity: EntityPath, id: number): Promise<void> {
  if (entity === 'leads') await rawLead(k, ctx, id);
  else await rawEntity(k, ctx, entity, id, entity === 'contacts' ? 'leads' : 'contacts');
}

/** The id of the record a HAL create made, or an upstream error saying what was accepted. */
function newId(data: unknown, key: 'notes' | 'tasks', what: string): number {
  const id = createdId(data, key);
  if (!id) throw new CrmError({ code: 'upstream', message: `Kommo accepted the ${what} but returned no id.` });
  return id;
}

export async function addNote(k: KommoParts, ctx: CallContext, input: NoteInput): Promise<WriteResult<Note>> {
  if (input.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
  const entity = entityPath(input.entity);
  const id = toId(input.entity_id, 'entity_id');
  const text = noteText(input.text);
  await mustExist(k, ctx, entity, id);
  const body = [{ entity_id: id, note_type: 'common', params: { text }, request_id: `crm-mcp-${randomUUID()}` }];
  const path = `/api/v4/${entity}/notes`;
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [k.api.plan('POST', path, body)] };
  const noteId = newId(await k.api.call<unknown>(ctx, 'POST', path, { body, op: 'create' }), 'notes', 'note');
  return { item: { id: noteId, entity: input.entity, entity_id: id, text, created_at: new Date().toISOString() } };
}

export async function createTask(k: KommoParts, ctx: CallContext, input: TaskInput): Promise<WriteResult<Task>> {
  if (input.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
  const text = taskText(input.text);
  const due = Math.floor(parseDeadline(input.complete_till, 'complete_till') / 1000);
  const acc = await k.meta.account(ctx);
  // Kommo requires a responsible user (§9): default to the token's user.
  const responsible = (await k.meta.checkUser(ctx, input.responsible_user_id)) ?? (typeof acc.current_user_id === 'number' ? acc.current_user_id : undefined);
  checkTaskTarget(input);
  let target: { entity_type: string; entity_id: number } | undefined;
  if (input.entity && input.entity_id !== undefined) {
    const entity = entityPath(input.entity);
    const id = toId(input.entity_id, 'entity_id');
    await mustExist(k, ctx, entity, id);
    target = { entity_type: entity, entity_id: id };
  }
  const body = [
    {
      text,
      complete_till: due,
      task_type_id: input.task_type_id ?? 1,
      ...(responsible ? { responsible_user_id: responsible } : {}),
      ...target,
      request_id: `crm-mcp-${randomUUID()}`,
    },
  ];
  if (ctx.dryRun) return { dry_run: true, item: null, requests: [k.api.plan('POST', '/api/v4/tasks', body)] };
  const id = newId(await k.api.call<unknown>(ctx, 'POST', '/api/v4/tasks', { body, op: 'create' }), 'tasks', 'task');
  const l = await k.meta.lookups(ctx);
  return {
    item: {
      id,
      text,
      complete_till: iso(due),
      entity: input.entity ?? null,
      entity_id: target?.entity_id ?? null,
      responsible: responsible ? { id: responsible, name: l.users.get(responsible)?.name ?? null } : null,
      is_completed: false,
    },
  };
}
