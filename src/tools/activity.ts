import * as z from 'zod';
import { defineTool, dryRunField } from './define.js';
import { Id, Ref } from '../domain/records.js';
import { AddNoteArgs, CreateTaskArgs, PlannedRequests } from '../domain/inputs.js';

export const addNote = defineTool({
  name: 'add_note',
  title: 'Add a note',
  description:
    'Adds a text note (Bitrix24: a timeline comment) to an existing lead, deal, contact or company. It creates a new note and never changes the record itself, so safe mode allows it. Use dry_run to preview.',
  effect: 'create',
  toolset: 'activity',
  requires: ['notes'],
  input: AddNoteArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    dry_run: z.boolean().optional(),
    note: z.object({ id: Id, entity: z.string(), entity_id: Id, text: z.string(), created_at: z.string().nullable() }).nullable(),
    requests: PlannedRequests,
  }),
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    const r = await provider.addNote(ctx, input);
    return { ...(r.dry_run ? { dry_run: true } : {}), note: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});

export const createTask = defineTool({
  name: 'create_task',
  title: 'Create a task',
  description:
    "Creates a task (a follow-up by default) with a deadline, optionally attached to a lead, deal, contact or company and assigned to a user (default: the token's user). Use dry_run to preview.",
  effect: 'create',
  toolset: 'activity',
  requires: ['tasks'],
  input: CreateTaskArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    dry_run: z.boolean().optional(),
    task: z
      .object({
        id: Id,
        text: z.string(),
        complete_till: z.string().nullable(),
        entity: z.string().nullable(),
        entity_id: Id.nullable(),
        responsible: Ref.nullable(),
        is_completed: z.boolean(),
      })
      .nullable(),
    requests: PlannedRequests,
  }),
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    const r = await provider.createTask(ctx, input);
    return { ...(r.dry_run ? { dry_run: true } : {}), task: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});
