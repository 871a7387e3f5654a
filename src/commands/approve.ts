/**
 * `crm-mcp approve [<id>]` and `crm-mcp decline <id>`: a person's answer to a write waiting for approval
 * (CRM_CONFIRM_WRITES), from a terminal, against the same store the server uses (CRM_MCP_STORE: the file, or
 * Redis shared by every instance). Without an id, lists what is waiting. The summary and the exact requests
 * are printed before anything changes; on a terminal the person confirms once more.
 */
import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { openStoreBounded } from '../app.js';
import { ApprovalDesk, type ApprovalRecord } from '../approvals/desk.js';
import { approvalSettingsFrom } from '../approvals/settings.js';
import { ConfigError } from '../config/config.js';
import { V } from '../config/env-table.js';
import { readVar } from '../config/env-types.js';
import { CrmError } from '../domain/errors.js';
import { out, type Env } from './common.js';

const USAGE = `Usage: crm-mcp approve [<id>] [--yes]
       crm-mcp decline <id>

With CRM_CONFIRM_WRITES=true every write an agent asks for waits for a person. The agent shows you an
approval id (apr_…); \`crm-mcp approve <id>\` prints what the write would send and approves it, after which
the agent repeats its call and the write runs once. \`crm-mcp decline <id>\` refuses it. Without an id,
\`crm-mcp approve\` lists the writes waiting. Reads the store CRM_MCP_STORE names (default ~/.crm-mcp/store.json),
so run it with the server's settings; an in-memory store (--sandbox without CRM_MCP_STORE) cannot be reached.
--yes skips the terminal's confirmation question.
`;

/** Who answers from this terminal, for the audit line. */
function terminalUser(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `${user}@${hostname()}`;
}

function describe(rec: ApprovalRecord): string {
  const lines = [
    `${rec.id}  (${rec.status}, expires ${new Date(rec.expires).toISOString()})`,
    `  ${rec.summary}`,
    ...rec.requests.map((r) => `  ${r.method} ${r.url}${r.body !== undefined ? `\n    ${JSON.stringify(r.body)}` : ''}`),
  ];
  return lines.join('\n');
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export async function run(argv: string[], approve: boolean, env: Env = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { yes: { type: 'boolean', short: 'y', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new ConfigError([`${approve ? 'approve' : 'decline'}: give one approval id`]);
  const problems: string[] = [];
  const settings = approvalSettingsFrom(env, problems);
  if (problems.length) throw new ConfigError(problems);
  const store = await openStoreBounded(readVar(env, V.CRM_MCP_STORE)?.value);
  try {
    const desk = new ApprovalDesk(store, settings);
    const id = positionals[0];
    if (id === undefined) {
      if (!approve) throw new ConfigError(['decline: give the approval id to decline']);
      const waiting = await desk.pending();
      out(waiting.length ? waiting.map(describe).join('\n\n') : `No write is waiting for approval (store: ${store.description}).`);
      return 0;
    }
    const rec = await desk.get(id);
    if (!rec) {
      out(`No such approval id: ${id} (store: ${store.description}). It may be mistyped, expired long ago, or kept in another store.`);
      return 1;
    }
    out(describe(rec));
    if (approve && !values.yes && process.stdin.isTTY && !(await confirm('Approve this write? [y/N] '))) {
      out('Not approved.');
      return 1;
    }
    try {
      const done = await desk.decide(rec.id, approve, { by: terminalUser(), via: 'terminal' });
      out(approve ? `Approved: the agent may now repeat its call with approval_id "${done.id}" (once).` : 'Declined: the write will not be sent.');
      return 0;
    } catch (err) {
      if (err instanceof CrmError) {
        out(`${err.message}`);
        return 1;
      }
      throw err;
    }
  } finally {
    await store.close();
  }
}
