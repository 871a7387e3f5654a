import * as z from 'zod';
import { defineTool, dryRunField, pageOf, UNTRUSTED } from './define.js';
import { Id, NoteItem, Ref, TaskItem } from '../domain/records.js';
import { AddNoteArgs, CompleteTaskArgs, CreateTaskArgs, ListNotesArgs, ListTasksArgs, PlannedRequests } from '../domain/inputs.js';

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

export const listNotes = defineTool({
  name: 'list_notes',
  title: 'List notes',
  description: `Lists the notes (Bitrix24: timeline comments) of one lead, deal, contact or company, newest first, with the record's name. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'followup',
  requires: ['notes'],
  input: ListNotesArgs,
  output: pageOf(NoteItem),
  async handler(args, { provider, ctx }) {
    return provider.listNotes(ctx, args);
  },
});

export const listTasks = defineTool({
  name: 'list_tasks',
  title: 'List tasks',
  description: `Lists tasks, earliest deadline first, by record, responsible user, status (open, done, overdue) and deadline range; each names its record and responsible user. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'followup',
  requires: ['tasks'],
  input: ListTasksArgs,
  output: pageOf(TaskItem),
  async handler(args, { provider, ctx }) {
    return provider.listTasks(ctx, args);
  },
});

export const completeTask = defineTool({
  name: 'complete_task',
  title: 'Complete a task',
  description: 'Marks a task done (list_tasks gives ids). A task already done is reported, not changed. Use dry_run to preview.',
  effect: 'update',
  // The one narrow update CRM_SAFE_UPDATES=task_done admits under safe mode; the HTTP core checks the request's shape.
  safeUpdate: 'task_done',
  toolset: 'followup',
  requires: ['tasks'],
  input: CompleteTaskArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    completed: z.boolean().describe('True when this call completed the task.'),
    dry_run: z.boolean().optional(),
    task: TaskItem.nullable(),
    reason: z.string().optional(),
    requests: PlannedRequests,
  }),
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    return provider.completeTask(ctx, input);
  },
});
