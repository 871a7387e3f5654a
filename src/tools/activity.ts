import * as z from 'zod';
import { defineTool, dryRunField } from './define.js';
import { Id, Ref } from '../providers/types.js';
import { IdInput, PlannedRequests } from './common.js';

const Entity = z.enum(['lead', 'contact', 'company', 'deal']).describe('What the record is attached to ("deal" on Bitrix24 only).');

/** add_note's arguments; NoteInput (providers/types.ts) is this without dry_run. */
export const AddNoteArgs = z.object({
  entity: Entity,
  entity_id: IdInput.describe('Id of that record.'),
  text: z.string().min(1).max(20_000).describe('Note text.'),
  dry_run: dryRunField,
});

export const addNote = defineTool({
  name: 'add_note',
  title: 'Add a note',
  description:
    'Adds a text note (Bitrix24: a timeline comment) to an existing lead, deal, contact or company. It creates a new note and never changes the record itself, so safe mode allows it. Use dry_run to preview.',
  effect: 'create',
  toolset: 'activity',
  requires: ['notes'],
  input: AddNoteArgs,
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

/** create_task's arguments; TaskInput (providers/types.ts) is this without dry_run. */
export const CreateTaskArgs = z.object({
  text: z.string().min(1).max(5_000).describe('What to do.'),
  complete_till: z.string().max(40).describe('Deadline, ISO 8601 (e.g. 2026-12-01T15:00:00Z).'),
  entity: Entity.optional(),
  entity_id: IdInput.optional().describe('Id of that record.'),
  responsible_user_id: IdInput.optional().describe("Responsible user id (default: the token's user)."),
  task_type_id: z.number().int().positive().optional().describe('Kommo: 1 = follow-up (default), 2 = meeting.'),
  dry_run: dryRunField,
});

export const createTask = defineTool({
  name: 'create_task',
  title: 'Create a task',
  description:
    "Creates a task (a follow-up by default) with a deadline, optionally attached to a lead, deal, contact or company and assigned to a user (default: the token's user). Use dry_run to preview.",
  effect: 'create',
  toolset: 'activity',
  requires: ['tasks'],
  input: CreateTaskArgs,
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
