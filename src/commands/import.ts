/**
 * `crm-mcp import FILE [--connection NAME] [--dry-run] [--resume ID]`: import_leads from a file, in this
 * process, with the server's settings (the policy, the store that keeps the journal, the audit log). A progress
 * bar on a terminal, plain lines otherwise. Exit 0 when every row was created or already there, 1 when some
 * rows failed or the import stopped (resume it with --resume), 2 for usage and configuration errors.
 */
import { parseArgs } from 'node:util';
import { buildApp } from '../app.js';
import { auditEntry, newCallId } from '../audit/audit-log.js';
import { ConfigError, loadConfig } from '../config/config.js';
import type { CallContext, ProviderWith } from '../crms/types.js';
import { CrmError } from '../domain/errors.js';
import { readLeadsFile, type LeadsFile } from '../import/csv.js';
import { ImportDesk, type Progress } from '../import/jobs.js';
import { decide, Grant } from '../policy/policy.js';
import { startImport } from '../tools/import.js';
import { createLogger, setLogger, type LogLevel } from '../util/log.js';
import { out, type Env } from './common.js';

const USAGE = `Usage: crm-mcp import FILE [--connection NAME] [--dry-run] [--resume ID] [--if-open-lead-exists skip|create]
                          [--no-automations] [--config FILE]

FILE     CSV with a header row (name, price, pipeline_id, status_id, responsible_user_id, contact_name,
         first_name, last_name, phone, email, company, company_phone, company_email, tags, cf:<field>), or a
         JSON array of import_leads rows.
--no-automations  the CRM's robots and workflows do not run for the new leads (Bitrix24: its import, which
         needs the import permission).
Needs CRM_ALLOW_WRITES=true. Each row is checked like create_lead (a person with an open lead is skipped as
"existing"); an interrupted import is finished with --resume ID (the id is printed first), creating nothing twice.
`;

/** Up to this many rows per file. */
const MAX_FILE_ROWS = 10_000;

function progressPrinter(tty: boolean): { step(p: Progress): void; end(): void } {
  let last = -1;
  return {
    step({ done, total }) {
      if (done === last) return;
      last = done;
      if (tty) {
        const width = 30;
        const fill = total ? Math.round((done / total) * width) : width;
        process.stdout.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total}`);
      } else out(`progress ${done}/${total}`);
    },
    end() {
      if (tty && last >= 0) process.stdout.write('\n');
    },
  };
}

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      connection: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      resume: { type: 'string' },
      'if-open-lead-exists': { type: 'string', default: 'skip' },
      'no-automations': { type: 'boolean', default: false },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const file = positionals[0];
  if (positionals.length > 1 || (!file && !values.resume)) throw new ConfigError([`import: give one FILE (or --resume ID)\n\n${USAGE}`]);
  const ifOpen = values['if-open-lead-exists'];
  if (ifOpen !== 'skip' && ifOpen !== 'create') throw new ConfigError(['import: --if-open-lead-exists is skip or create']);

  const config = loadConfig({ env, configPath: values.config });
  const logger = createLogger({ level: config.logLevel as LogLevel });
  setLogger(logger);
  const conns = config.connections.filter((c) => !values.connection || c.name === values.connection);
  if (!conns.length) throw new ConfigError([`--connection ${values.connection}: no such connection`]);
  if (conns.length > 1) throw new ConfigError([`import: several connections (${conns.map((c) => c.name).join(', ')}); pick one with --connection`]);
  const conn = conns[0]!;
  const dry = values['dry-run'];
  // The policy first: a refused import reads no file and reaches no CRM.
  const d = dry ? { allow: true as const } : decide(conn.policy, 'create');
  if (!d.allow) {
    out(`import refused: ${d.reason}`);
    return 1;
  }
  let rows: unknown[] | undefined;
  let lines: number[] = [];
  let skipped: LeadsFile['skipped'] = [];
  if (!values.resume) {
    try {
      ({ rows, lines, skipped } = await readLeadsFile(file!));
    } catch (e) {
      out(`import: ${(e as Error).message}`);
      return 2;
    }
    // Read, never sent: said first, so a person can fix the file while the rest goes in.
    for (const s of skipped) out(`line ${s.line}: error: ${s.reason} (not imported)`);
    if (!rows.length) {
      out('import: no rows to import.');
      return skipped.length ? 1 : 2;
    }
  }
  const where = (row: number) => (lines[row - 1] ? `row ${row} (line ${lines[row - 1]})` : `row ${row}`);

  const app = await buildApp({ ...config, connections: [conn] }, { logger });
  const provider = app.providers[0]!;
  try {
    if (!provider.capabilities.has('bulk') || !provider.capabilities.has('leads')) {
      out(`${conn.name}: this CRM has no bulk import.`);
      return 1;
    }
    if (values['no-automations'] && !(provider as ProviderWith<'bulk'>).bulkCanSkipAutomations) {
      out(`${conn.name}: --no-automations: this CRM's API cannot create leads without running their automations; nothing was sent.`);
      return 1;
    }
    const ctx: CallContext = { grant: dry ? Grant.readOnly() : Grant.for('create'), dryRun: dry };
    const bar = progressPrinter(process.stdout.isTTY === true);
    const started = Date.now();
    const draft = { connection: conn.name, provider: provider.kind, tool: 'import_leads', effect: 'create' as const, started, callId: newCallId() };
    const args = { file: file ?? null, rows: rows?.length ?? null, resume: values.resume ?? null, dry_run: dry };
    if (!dry) await app.audit?.begin(auditEntry({ ...draft, args }, { decision: 'allow', outcome: 'pending', phase: 'pending' }));
    let outcome = 'ok';
    try {
      const { id, job } = await startImport({
        provider: provider as ProviderWith<'leads' | 'bulk'>,
        ctx,
        lock: app.identityLocks.for(provider),
        desk: new ImportDesk(app.store),
        rows,
        resume: values.resume,
        maxRows: MAX_FILE_ROWS,
        options: { if_open_lead_exists: ifOpen, run_automations: !values['no-automations'], dry_run: dry },
        progress: (p) => bar.step(p),
      });
      out(`import ${id}${dry ? ' (dry run)' : ''}: if it stops, finish it with: crm-mcp import --resume ${id}`);
      try {
        await job;
      } finally {
        bar.end();
      }
      const st = (await new ImportDesk(app.store).status(id, 0, MAX_FILE_ROWS))!;
      const c = st.counts;
      out(`done: ${c.created ?? 0} created, ${c.existing ?? 0} existing, ${c.would_create ?? 0} would be created, ${c.error ?? 0} errors (of ${st.total})`);
      if (skipped.length) out(`${skipped.length} lines of the file were not rows (see above)`);
      for (const r of st.results.filter((x) => x.status === 'error')) out(`${where(r.row)}: error: ${r.reason ?? ''}`);
      if (c.error || skipped.length) outcome = 'partial';
      return c.error || skipped.length ? 1 : 0;
    } catch (e) {
      outcome = e instanceof CrmError ? e.code : 'error';
      out(`import stopped: ${(e as Error).message}`);
      return 1;
    } finally {
      if (!dry) await app.audit?.append(auditEntry({ ...draft, args }, { decision: 'allow', outcome, phase: 'done' })).catch(() => undefined);
    }
  } finally {
    await app.close();
  }
}
