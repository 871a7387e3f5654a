/**
 * import_leads and get_import_status (toolset `import`). An import is a job: the call checks the arguments,
 * writes the journal (src/import/journal.ts), starts the work in the background of this process and answers
 * within a few seconds with the job id and the progress so far; get_import_status reports it, with the
 * per-row results paged. `resume` picks an interrupted import up from its journal without sending a write twice.
 */
import * as z from 'zod';
import { CrmError, validationError } from '../domain/errors.js';
import { PlannedRequests } from '../domain/inputs.js';
import type { CallContext, ProviderWith } from '../crms/types.js';
import { isImportId, newImportId, type ImportMeta, type ImportOptions } from '../import/journal.js';
import { processImportDesk, type ImportDesk, type ImportStatus, type ProgressListener } from '../import/jobs.js';
import { progressSink } from '../import/progress.js';
import { MAX_ROWS } from '../import/rows.js';
import { runImport } from '../services/import-leads.js';
import type { PersonLock } from '../store/identity-lock.js';
import { log } from '../util/log.js';
import { defineTool } from './define.js';

/** How long the tool waits for the job before answering with its progress. */
export const IMPORT_ANSWER_WAIT_MS = 3000;

const RowResultOut = z.object({
  row: z.number().int(),
  status: z.enum(['created', 'existing', 'error', 'would_create']),
  lead_id: z.union([z.number(), z.string()]).nullable().optional(),
  contact_id: z.union([z.number(), z.string()]).nullable().optional(),
  company_id: z.union([z.number(), z.string()]).nullable().optional(),
  url: z.string().nullable().optional().describe("The lead's page in the CRM."),
  contact_url: z.string().nullable().optional().describe("The contact's page in the CRM."),
  reason: z.string().optional(),
});

export const ImportStatusOut = z.object({
  id: z.string(),
  state: z.enum(['running', 'done', 'failed', 'interrupted']).describe('"interrupted": nothing runs it any more; call import_leads with resume.'),
  live: z.boolean(),
  dry_run: z.boolean(),
  total: z.number().int(),
  done: z.number().int().describe('Rows with a result so far.'),
  counts: z.record(z.string(), z.number().int()),
  batches: z.number().int(),
  error: z.string().optional(),
  results: z.array(RowResultOut),
  next_offset: z.number().int().nullable().describe('Pass as offset to get_import_status for the next page of results.'),
  requests: PlannedRequests,
});

export interface StartImport {
  provider: ProviderWith<'leads' | 'bulk'>;
  ctx: CallContext;
  lock: PersonLock;
  desk: ImportDesk;
  rows?: unknown[];
  options?: ImportOptions;
  resume?: string;
  /** Largest import (the tool: 500; the CLI: more). */
  maxRows?: number;
  progress?: ProgressListener;
}

/** Writes the journal (or reads it, to resume) and starts the job; returns its id and its promise. */
export async function startImport(s: StartImport): Promise<{ id: string; job: Promise<{ requests: unknown[] }> }> {
  const { provider, desk } = s;
  let id: string;
  // The import's store lock, held until its job ends (ImportDesk.claim).
  let release: () => void;
  if (s.resume !== undefined) {
    if (!isImportId(s.resume)) throw validationError(`resume: "${s.resume}" is not an import id (imp_ and 16 hex digits).`);
    id = s.resume;
    const meta = await desk.journal(id).meta();
    if (!meta) throw new CrmError({ code: 'not_found', message: `No import ${id} in the store (journals are kept a week, in CRM_MCP_STORE).` });
    if (meta.connection !== provider.connection) throw validationError(`resume: import ${id} belongs to the connection "${meta.connection}".`);
    if (meta.options.dry_run) throw validationError(`resume: ${id} was a dry run; start a new import.`);
    if (desk.isRunning(id) || meta.state === 'done') return { id, job: Promise.resolve({ requests: [] }) };
    release = await desk.claim(id);
    // Read again under the lock: the process that held it may have finished the import meanwhile.
    const now = (await desk.journal(id).meta())!;
    if (now.state === 'done') {
      release();
      return { id, job: Promise.resolve({ requests: [] }) };
    }
    await desk
      .journal(id)
      .setMeta({ ...now, state: 'running' })
      .catch((e: unknown) => (release(), Promise.reject(e)));
  } else {
    const rows = s.rows ?? [];
    const max = s.maxRows ?? MAX_ROWS;
    if (!rows.length) throw validationError('rows: give at least one row.');
    if (rows.length > max)
      throw validationError(`rows: at most ${max} rows per import (got ${rows.length}); split the list, or use \`crm-mcp import FILE.csv\`.`);
    id = newImportId();
    release = await desk.claim(id);
    const now = new Date().toISOString();
    const meta: ImportMeta = {
      id,
      connection: provider.connection,
      options: s.options ?? { if_open_lead_exists: 'skip', run_automations: true, dry_run: false },
      total: rows.length,
      state: 'running',
      started_at: now,
      updated_at: now,
      batches: 0,
    };
    const j = desk.journal(id);
    try {
      await j.setRows(rows);
      await j.setMeta(meta);
    } catch (e) {
      release();
      throw e;
    }
  }
  const journal = desk.journal(id);
  let out: { requests: unknown[] } = { requests: [] };
  const total = await journal.meta().then(
    (m) => m!.total,
    (e: unknown) => (release(), Promise.reject(e)),
  );
  const job = desk
    .start(id, total, async (progress) => {
      try {
        out = await runImport({
          steps: provider.createLeadSteps,
          bulk: provider,
          ctx: s.ctx,
          lock: s.lock,
          journal,
          progress: (p) => (progress(p), s.progress?.(p)),
          ...(provider.capabilities.has('companies') ? { companies: (provider as ProviderWith<'companies'>).createCompanySteps } : {}),
        });
      } catch (e) {
        const meta = await journal.meta();
        const message = e instanceof Error ? e.message : String(e);
        log().warn({ import: id, err: message }, 'import stopped');
        if (meta) await journal.setMeta({ ...meta, state: 'failed', error: `${message} Resume with import_leads {resume: "${id}"}.` }).catch(() => undefined);
        throw e;
      }
    })
    .finally(release)
    .then(() => out);
  return { id, job };
}

export const importLeads = defineTool({
  name: 'import_leads',
  title: 'Import leads in bulk (resumable)',
  description: `Imports up to ${MAX_ROWS} leads in batches, each row checked like create_lead (a person with an open lead → "existing"; a returning customer → a new lead on the existing contact) and against the other rows (the same person twice → one contact and one lead unless if_open_lead_exists is "create"); a bad row is an "error" and is never sent. Runs as a job: answers within seconds with its id and progress; follow it with get_import_status. resume: an interrupted import's id, finished without creating anything twice; dry_run: the plan, nothing sent.`,
  effect: 'create',
  toolset: 'import',
  requires: ['leads', 'bulk'],
  input: z.object({
    rows: z
      .array(z.record(z.string(), z.unknown()))
      .max(MAX_ROWS)
      .optional()
      .describe(
        'Each: {name?, price?, pipeline_id?, status_id?, contact: {name?, first_name?, last_name?, phone?, email?}, company?: {name, phone?, email?}, tags?, custom_fields?, responsible_user_id?}.',
      ),
    if_open_lead_exists: z
      .enum(['skip', 'create'])
      .default('skip')
      .describe('A person with an open lead: skip the row (default, "existing") or create another lead.'),
    run_automations: z
      .boolean()
      .default(true)
      .describe("false: the CRM's robots and workflows do not run for the new leads (Bitrix24 only, through its import, which needs the import permission)."),
    dry_run: z.boolean().optional().describe('Plan only: what would be created and what matched; nothing is sent.'),
    resume: z.string().optional().describe('The id of an interrupted import, to finish it (rows and options come from its journal).'),
  }),
  output: ImportStatusOut,
  async handler(args, { provider, ctx, identityLock, imports }) {
    if (args.run_automations === false && args.resume === undefined && !provider.bulkCanSkipAutomations)
      throw validationError(
        "run_automations: false: this CRM's API has no way to create leads without running their automations, so nothing was sent. Import with run_automations: true, or switch the automations off in the CRM for the import.",
      );
    if (args.resume === undefined && !args.rows) throw validationError('Give `rows`, or `resume` with an import id.');
    const desk = imports ?? (await processImportDesk());
    const lock = identityLock ?? ((_k, fn) => fn());
    // The job outlives this call: its own context keeps the call's grant, not its abort signal.
    const own: CallContext = { grant: ctx.grant, dryRun: args.dry_run === true };
    const { id, job } = await startImport({
      provider,
      ctx: own,
      lock,
      desk,
      rows: args.rows,
      resume: args.resume,
      options: { if_open_lead_exists: args.if_open_lead_exists, run_automations: args.run_automations, dry_run: args.dry_run === true },
    });
    let requests: unknown[] = [];
    // While the client waits: MCP progress notifications, if it asked for them (a progressToken).
    const sink = progressSink();
    const unfollow = sink ? desk.follow(id, (p) => sink(p.done, p.total)) : () => undefined;
    try {
      // A dry run sends nothing and is answered whole, with its plan; an import answers with its progress.
      if (args.dry_run) requests = (await job).requests;
      else {
        job.catch(() => undefined);
        await desk.wait(id, IMPORT_ANSWER_WAIT_MS);
      }
    } finally {
      unfollow();
    }
    return { ...(await statusOf(desk, id, 0)), ...(requests.length ? { requests: requests as z.infer<typeof PlannedRequests> } : {}) };
  },
});

async function statusOf(desk: ImportDesk, id: string, offset: number, limit = 100): Promise<ImportStatus> {
  const st = await desk.status(id, offset, limit);
  if (!st) throw new CrmError({ code: 'not_found', message: `No import ${id} in the store (journals are kept a week).` });
  return st;
}

export const getImportStatus = defineTool({
  name: 'get_import_status',
  title: 'Progress and results of an import',
  description:
    'Reports an import_leads job: its state, progress and counts by outcome. The per-row results (created with ids, existing with the id and why, error with the reason) are paged by offset; state "interrupted" means: resume it with import_leads.',
  effect: 'read',
  toolset: 'import',
  requires: ['leads', 'bulk'],
  input: z.object({
    id: z.string().describe('The import id import_leads returned.'),
    offset: z.number().int().min(0).default(0).describe('Results from this row position on (next_offset of the previous page).'),
    limit: z.number().int().min(1).max(500).default(100).describe('Results per page.'),
  }),
  output: ImportStatusOut,
  async handler({ id, offset, limit }, { imports }) {
    if (!isImportId(id)) throw validationError(`id: "${id}" is not an import id.`);
    return statusOf(imports ?? (await processImportDesk()), id, offset, limit);
  },
});
