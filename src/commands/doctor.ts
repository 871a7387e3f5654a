/**
 * `crm-mcp doctor`: checks every configured connection the way the server would use it (same config loader,
 * same providers, same store) and says, for each problem, what to do about it. Never prints a secret.
 *
 * Exit codes: 0 healthy; 1 at least one problem; 3 only warnings (e.g. a token expiring within 7 days), so a
 * cron job can tell "act soon" from "broken"; 2 bad command-line usage.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { configWarnings } from '../config/checks.js';
import { ConfigError, loadConfig, type AppConfig } from '../config/config.js';
import { configFix } from '../config/hints.js';
import { defaultRegistry } from '../crms/registry.js';
import type { CrmProvider } from '../crms/types.js';
import { openStoreBounded } from '../app.js';
import type { Store } from '../store/store.js';
import type { ApprovalSettings } from '../approvals/settings.js';
import { modeOf, safeUpdatesOf, type PolicyFlags } from '../policy/policy.js';
import { redact } from '../util/redact.js';
import { VERSION } from '../version.js';
import { deepProbe, deepProbeOf, renderDeep } from './doctor-deep.js';
import { eventsCheck } from './doctor-events.js';
import { type ConnectionReport, doctorBuildDeps, type DoctorReport, type Problem, type Severity, uncheckedReport, WARN_DAYS } from './doctor-common.js';
import { learntSettings, out, type Env } from './common.js';
import { startSandbox, type Sandbox } from './sandbox.js';
export type { Check, ConnectionReport, DoctorReport, Problem, Severity } from './doctor-common.js';

const USAGE = `Usage: crm-mcp doctor [--deep] [--json] [--config FILE | --sandbox]

Checks every configured connection: configuration, reaching the account, token type and expiry, granted
scopes, safety mode, rate-limit profile, the token store and the event receivers (a webhook secret or
token, offline events and their poller). Exit code 0 = healthy, 1 = problems found,
3 = warnings only (e.g. a token expiring within ${WARN_DAYS} days).

--sandbox  checks the built-in demo accounts instead (started as \`crm-mcp --sandbox\` starts them, with the
           safety settings of this environment), to see what a healthy report looks like before you connect
           your own CRM.

--deep  also checks, read-only and in at most 100 requests per connection, what only a real account can
        tell: which phone formats the CRM's search and crm-mcp's duplicate check find (on a few existing
        contacts), whether list filters are applied (Kommo), how many users and fields are read, the
        rate-limit and operating-time budget. An assumption that does not hold is a warning, with what
        crm-mcp does about it. Prints ids and counts only (no names, phones or emails): fit for a bug report.
        For a connection with a receiver, also whether the CRM's webhooks or event bindings point at this
        server (a webhook the CRM disabled is a warning).
`;

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      deep: { type: 'boolean', default: false },
      config: { type: 'string' },
      sandbox: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (values.sandbox && values.config) throw new ConfigError(['--sandbox and --config: give one (the sandbox brings its own connections)']);
  const sandbox = values.sandbox ? await startSandbox() : undefined;
  try {
    const report = await diagnose(env, values.config, { deep: values.deep, ...(sandbox ? { sandbox } : {}) });
    if (values.json) out(redact(JSON.stringify(report, null, 2)));
    else out(render(report));
    return report.exit_code;
  } finally {
    for (const close of sandbox?.close ?? []) await close().catch(() => undefined);
  }
}

export interface DiagnoseOptions {
  /** Run the read-only deep probe (doctor-deep.ts) on every reachable connection; names are left out. */
  deep?: boolean;
  /**
   * Origins of emulators the caller runs (tests): a credential may follow a redirect between two of them, as
   * under `--sandbox`. Never set by the command line: a real account has none.
   */
  trustedOrigins?: readonly string[];
  /** The emulators `--sandbox` started: their connections replace the configured ones, and a credential may follow a redirect between them. */
  sandbox?: Pick<Sandbox, 'connections' | 'origins'>;
}

export async function diagnose(env: Env, configPath?: string, opts: DiagnoseOptions = {}): Promise<DoctorReport> {
  const problems: Problem[] = [];
  const connections: ConnectionReport[] = [];
  let storeDescription: string | null = null;
  let config: AppConfig | undefined;
  try {
    config = loadConfig({ env, configPath, ...(opts.sandbox ? { connections: opts.sandbox.connections } : {}) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // What a sign-in learnt (e.g. the account address a CRM named) may be the fix for a missing setting.
    const learnt = await learntSettings(env);
    for (const p of err.problems) {
      const fix = learnt.map((l) => l.fix(p)).find((f) => f !== undefined) ?? configFix(p);
      problems.push({ connection: '(config)', check: 'config', severity: 'error', message: redact(p), fix });
    }
  }
  if (config) {
    for (const w of configWarnings(config)) {
      problems.push({ connection: '(config)', check: 'config', severity: 'warn', message: w, fix: warningFix(w) });
    }
    let store: Store | undefined;
    try {
      // The default file lives under the CRM_MCP_HOME of the environment given (not only process.env's).
      // The sandbox keeps its tokens in memory, as the server does under --sandbox, unless a store is configured.
      const home = env.CRM_MCP_HOME ? join(env.CRM_MCP_HOME, 'store.json') : undefined;
      store = await openStoreBounded(config.store ?? (opts.sandbox ? 'memory' : home));
      storeDescription = store.description;
    } catch (err) {
      problems.push({
        connection: '(store)',
        check: 'store',
        severity: 'error',
        message: redact(`The token store cannot be opened: ${(err as Error).message}`),
        fix: 'Point CRM_MCP_STORE at a writable file (default ~/.crm-mcp/store.json), or fix the permissions of the one configured.',
      });
    }
    if (store) {
      try {
        await checkConnections(config, store, opts, connections, problems);
      } finally {
        await store.close();
      }
    }
  }
  const errors = problems.some((p) => p.severity === 'error');
  const exit = errors ? 1 : problems.length ? 3 : 0;
  return { version: VERSION, ok: exit === 0, exit_code: exit, store: storeDescription, connections, problems };
}

/**
 * Each connection through its CRM module's doctor part (contract.ts), which builds the provider through the
 * module as the server does; a CRM without one is listed as not checked. Then the deep probe, when asked.
 */
async function checkConnections(config: AppConfig, store: Store, opts: DiagnoseOptions, connections: ConnectionReport[], problems: Problem[]): Promise<void> {
  const deep = opts.deep === true;
  for (const c of config.connections) {
    const m = defaultRegistry.get(c.provider);
    const trusted = opts.sandbox?.origins ?? opts.trustedOrigins;
    const build = () => defaultRegistry.build(c, doctorBuildDeps(config, store, deep, trusted));
    const checked = m?.doctor ? await m.doctor.check(c, { store, deep, build }) : { report: uncheckedReport(c, m), provider: undefined };
    const r = checked.report;
    r.checks.push({ check: 'safety', status: 'ok', detail: safetyDetail(c.policy, config.approvals) });
    connections.push(r);
    for (const ch of r.checks) {
      if (ch.status === 'error' || ch.status === 'warn')
        problems.push({ connection: c.name, check: ch.check, severity: ch.status, message: ch.detail, fix: ch.fix ?? '' });
    }
    // The event receivers, through the module's events part (with --deep, where the CRM sends its events).
    problems.push(...(await eventsCheck(config, c, m, r, store, deep ? { provider: checked.provider } : undefined)));
    if (deep && m?.doctor) problems.push(...(await deepCheck(r, checked.provider)));
  }
}

/** The write settings a person should see at a glance: the mode, the narrow updates safe mode admits, approvals. */
function safetyDetail(flags: PolicyFlags, approvals: ApprovalSettings | undefined): string {
  const kinds = safeUpdatesOf(flags);
  const inert = kinds.length && !flags.allowWrites ? ' (not in effect: writes are off)' : '';
  return [
    `mode ${modeOf(flags)}`,
    `safe updates (CRM_SAFE_UPDATES): ${kinds.length ? kinds.join(', ') : 'none'}${inert}`,
    `confirmations (CRM_CONFIRM_WRITES): ${approvals?.on ? `on, via ${approvals.via} (CRM_CONFIRM_VIA)` : 'off'}`,
  ].join('; ');
}

// ---------------------------------------------------------------- configuration problems

// configFix (config/hints.ts) turns each problem into its fix, from the env table.

/** A setting that does nothing: either drop it or add what it needs. */
function warningFix(w: string): string {
  const name = /^(CRM_[A-Z_]+)=/.exec(w)?.[1] ?? 'the setting';
  return `Remove ${name}, or also set what it needs (named above) if you meant to allow more. See README → Safety first.`;
}

// ---------------------------------------------------------------- --deep

/** Runs the deep probe on a reached connection; each finding that does not hold is a warning whose fix is crm-mcp's answer. */
async function deepCheck(r: ConnectionReport, provider: CrmProvider | undefined): Promise<Problem[]> {
  if (!provider) {
    r.deep = null;
    r.checks.push({ check: 'deep probe', status: 'skipped', detail: 'not run: the account was not reached' });
    return [];
  }
  if (!(await deepProbeOf(provider))) {
    r.deep = null;
    r.checks.push({ check: 'deep probe', status: 'skipped', detail: `not run: crm-mcp has no deep probe for ${labelOf(r.provider)} connections` });
    return [];
  }
  try {
    const d = (r.deep = await deepProbe(provider));
    const failed = d.findings.filter((f) => f.holds === false);
    const unknown = d.findings.filter((f) => f.holds === null).length;
    r.checks.push({
      check: 'deep probe',
      status: failed.length ? 'warn' : 'ok',
      detail: `${d.findings.length - failed.length - unknown} of ${d.findings.length} assumptions hold${failed.length ? `, ${failed.length} do not` : ''}${unknown ? `, ${unknown} could not be checked` : ''} (${d.requests} read requests)`,
    });
    return failed.map((f) => ({ connection: r.name, check: `deep: ${f.id}`, severity: 'warn', message: `${f.assumption}: ${f.detail}`, fix: f.action }));
  } catch (err) {
    // A policy refusal means the probe tried something other than a read: a bug, reported as an error.
    r.deep = null;
    const detail = redact(`the deep probe failed: ${(err as Error)?.message ?? String(err)}`);
    const fix = 'Please report it with this output (crm-mcp doctor --deep --json).';
    r.checks.push({ check: 'deep probe', status: 'error', detail, fix });
    return [{ connection: r.name, check: 'deep probe', severity: 'error', message: detail, fix }];
  }
}

// ---------------------------------------------------------------- rendering

/** How the report names a CRM: its module's label. */
function labelOf(kind: string): string {
  return defaultRegistry.get(kind)?.label ?? kind;
}

const MARK: Record<Severity, string> = { ok: 'ok', warn: 'WARN', error: 'FAIL', skipped: '--' };

export function render(r: DoctorReport): string {
  const lines = [`crm-mcp ${r.version} doctor`, `Store: ${r.store ?? '(not opened)'}`, ''];
  for (const c of r.connections) {
    lines.push(`${c.name} (${labelOf(c.provider)}) ${c.address}`);
    const w = Math.max(...c.checks.map((x) => x.check.length));
    for (const ch of c.checks) lines.push(`  ${MARK[ch.status].padEnd(4)}  ${ch.check.padEnd(w)}  ${ch.detail}`);
    if (c.deep) lines.push(renderDeep(c.deep));
    lines.push('');
  }
  if (r.problems.length) {
    lines.push('Problems:');
    for (const p of r.problems) {
      lines.push(`  ${p.severity === 'error' ? 'FAIL' : 'WARN'}  ${p.connection}: ${p.message}`);
      lines.push(`        fix: ${p.fix}`);
    }
    lines.push('');
  }
  const errors = r.problems.filter((p) => p.severity === 'error').length;
  const warnings = r.problems.length - errors;
  lines.push(r.ok ? 'All checks passed.' : `${errors} problem${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}.`);
  return redact(lines.join('\n'));
}
