/**
 * `crm-mcp events bind|unbind|status [--connection NAME] [--url PUBLIC_BASE_URL] [--rotate] [--config FILE]`:
 * points a CRM's webhooks (or offline events) at this server, removes them, or says what is bound. It loops
 * over the modules with an `events` part (events-contract.ts) and names no CRM. Binding changes the CRM
 * account's configuration, an **admin** effect: it needs CRM_ALLOW_WRITES=true, CRM_SAFE_MODE=false and
 * CRM_ALLOW_ADMIN=true, is refused before anything is sent otherwise, and its requests run under an admin grant
 * that the HTTP core checks again. `status` is a read.
 */
import { parseArgs } from 'node:util';
import { buildApp, type App } from '../app.js';
import { auditEntry, newCallId, type AuditDraft } from '../audit/audit-log.js';
import { ConfigError, loadConfig } from '../config/config.js';
import type { CallContext } from '../crms/call-context.js';
import { defaultRegistry } from '../crms/registry.js';
import { CrmError } from '../domain/errors.js';
import { observeRequests } from '../http/client.js';
import { decide, Grant } from '../policy/policy.js';
import { createLogger, setLogger, type LogLevel } from '../util/log.js';
import { redact } from '../util/redact.js';
import { out, type Env } from './common.js';

const USAGE = `Usage: crm-mcp events bind|unbind|status [--connection NAME] [--url PUBLIC_BASE_URL] [--rotate] [--config FILE]

bind     registers this server's receiver with the CRM (Kommo: an account webhook to
         <url>/hooks/kommo/<secret>; the secret is generated, printed once, and only its hash is stored).
         Needs CRM_ALLOW_WRITES=true, CRM_SAFE_MODE=false and CRM_ALLOW_ADMIN=true (it changes the account's
         configuration). --rotate issues a new secret; the previous one keeps working for 24 hours.
unbind   removes what bind registered and forgets the stored secret (same settings as bind).
status   says what the CRM has bound for this server (a read).
--url    the public address the CRM can reach the HTTP service at (crm-mcp --http), without /hooks.
Run it with the server's settings (CRM_MCP_STORE especially: the receiver reads the secret's hash there).
`;

const SUBS = ['bind', 'unbind', 'status'] as const;
type Sub = (typeof SUBS)[number];

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      connection: { type: 'string' },
      url: { type: 'string' },
      rotate: { type: 'boolean', default: false },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const sub = positionals[0] as Sub | undefined;
  if (!sub || !SUBS.includes(sub) || positionals.length > 1) throw new ConfigError([`events: give one of ${SUBS.join(', ')}\n\n${USAGE}`]);
  if (values.rotate && sub !== 'bind') throw new ConfigError(['events: --rotate goes with bind']);

  const config = loadConfig({ env, configPath: values.config });
  const logger = createLogger({ level: config.logLevel as LogLevel });
  setLogger(logger);
  const modules = new Map(defaultRegistry.modules().map((m) => [m.kind, m] as const));
  const conns = config.connections.filter((c) => !values.connection || c.name === values.connection);
  if (!conns.length) throw new ConfigError([`--connection ${values.connection}: no such connection`]);

  // The policy is checked before anything is built or sent: a refused bind never reaches the CRM.
  let code = 0;
  const allowed = conns.filter((c) => {
    const part = modules.get(c.provider)?.events?.[sub];
    if (!part) {
      if (values.connection) {
        out(`${c.name}: ${modules.get(c.provider)?.label ?? c.provider} has no \`events ${sub}\``);
        code = 1;
      }
      return false;
    }
    if (sub === 'status') return true;
    const d = decide(c.policy, 'admin');
    if (!d.allow) {
      out(`${c.name}: events ${sub} refused: ${d.reason}. It changes the CRM account's configuration (where it sends its events).`);
      code = 1;
    }
    return d.allow;
  });
  if (!allowed.length) {
    if (code === 0) out(`No connection here has events to ${sub}.`);
    return code || 1;
  }

  const app = await buildApp({ ...config, connections: allowed }, { logger });
  try {
    for (const provider of app.providers) {
      const conn = allowed.find((c) => c.name === provider.connection)!;
      const part = modules.get(conn.provider)!.events!;
      const ctx: CallContext = { grant: sub === 'status' ? Grant.readOnly() : Grant.for('admin') };
      const o = { url: values.url, rotate: values.rotate, secretStore: app.store };
      try {
        const r =
          sub === 'status'
            ? await part[sub]!(provider, ctx, o)
            : await audited(app, { provider, sub, hook: part.hookPath, o }, () => part[sub]!(provider, ctx, o));
        for (const line of r.lines) out(line);
      } catch (err) {
        if (!(err instanceof CrmError)) throw err;
        out(`${conn.name}: events ${sub} failed: ${err.message}`);
        code = 1;
      }
    }
  } finally {
    await app.close();
  }
  return code;
}

/**
 * bind and unbind change where the CRM sends its events, so they are audited as the invoke chain audits a
 * write (tools/invoke.ts `audited`): a pending line before anything is sent, which fails closed (the command
 * stops, nothing sent), then the outcome with the CRM's request ids. The target is the receiver and the public
 * address given; never the secret, which exists only inside bind.
 */
async function audited<T>(
  app: App,
  c: { provider: { connection: string; kind: string }; sub: 'bind' | 'unbind'; hook: string; o: { url?: string; rotate?: boolean } },
  fn: () => Promise<T>,
): Promise<T> {
  const audit = app.audit;
  if (!audit) return fn();
  const draft: AuditDraft = {
    connection: c.provider.connection,
    provider: c.provider.kind,
    tool: `events_${c.sub}`,
    effect: 'admin',
    args: { rotate: c.o.rotate === true },
    target: { hook: c.hook, ...(c.o.url ? { url: redact(c.o.url) } : {}) },
    started: Date.now(),
    callId: newCallId(),
  };
  await audit.begin(auditEntry(draft, { decision: 'allow', outcome: 'pending', phase: 'pending' }));
  const requestIds: string[] = [];
  let outcome = 'ok';
  try {
    return await observeRequests((e) => {
      if (e.requestId) requestIds.push(e.requestId);
    }, fn);
  } catch (err) {
    outcome = err instanceof CrmError ? err.code : 'error';
    if (err instanceof CrmError && err.requestId) requestIds.push(err.requestId);
    throw err;
  } finally {
    // The change happened (or not) whatever this line does: a failure to write it leaves the pending line, read as "unknown".
    await audit.append(auditEntry(draft, { decision: 'allow', outcome, phase: 'done', requestIds })).catch(() => undefined);
  }
}
