/**
 * One tool call, end to end: connection → effect → policy decision → audit (fails closed) → handler under
 * a grant → result. Registration (server.ts) wires this to the SDK; nothing here knows about transports.
 *
 * An allowed write is audited twice with one call id: a pending line before anything is sent (reads of
 * prior values included), and the outcome after. Only the pending append can refuse the call: it is the
 * append that can fail (a full disk), and when it does the call has not reached the CRM.
 */
import { auditEntry, newCallId, safePriorValues, type AuditEntry, type AuditLog } from '../audit/audit-log.js';
import { observeRequests } from '../http/client.js';
import { CrmError } from '../domain/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { decide, Grant, type Effect, type PolicyFlags } from '../policy/policy.js';
import type { CrmProvider } from '../crms/types.js';
import { log } from '../util/log.js';
import type { AnyTool, CallEffect, PolicyReport } from './define.js';
import { fail, ok, toCrmError } from './result.js';
import type { CallToolResult } from '@modelcontextprotocol/server';

export interface InvokeDeps {
  metrics?: Pick<Metrics, 'toolCall' | 'policyDenied'>;
  audit?: AuditLog;
  /** The flags a connection runs under (the operator's, narrowed per request). */
  flagsOf: (provider: CrmProvider) => PolicyFlags;
  /** The policy report get_account shows for a connection. */
  reportOf: (provider: CrmProvider, flags: PolicyFlags) => PolicyReport;
}

/** The effect of this call: the tool's own, or the generic tool's classification of these arguments. */
function effectOfCall(tool: AnyTool, args: Record<string, unknown>): CallEffect {
  return tool.effectOf ? tool.effectOf(args) : { effect: tool.effect };
}

/**
 * The grant of a call: its decided effect plus reads. A typed tool whose call rose above the tool's own effect
 * (update_contact removing a phone: a delete) still sends the tool's own kind of request besides.
 */
function grantOf(tool: AnyTool, effect: Effect): Grant {
  return tool.maxEffect && effect !== tool.effect ? new Grant(['read', tool.effect, effect]) : Grant.for(effect);
}

export async function invokeTool(
  tool: AnyTool,
  provider: CrmProvider,
  args: Record<string, unknown>,
  signal: AbortSignal | undefined,
  deps: InvokeDeps,
): Promise<CallToolResult> {
  const started = Date.now();
  const done = (outcome: string) => deps.metrics?.toolCall(tool.name, outcome, (Date.now() - started) / 1000);
  const flags = deps.flagsOf(provider);

  let call: CallEffect;
  try {
    call = effectOfCall(tool, args);
  } catch (err) {
    // A generic tool refused the arguments before classifying them (a path off the API, a broken batch).
    const e = toCrmError(err);
    if (e.code === 'policy_denied') {
      deps.metrics?.policyDenied(provider.connection, tool.name, 'admin');
      await deps.audit
        ?.append(
          auditEntry(
            { connection: provider.connection, provider: provider.kind, tool: tool.name, effect: 'admin', args, started },
            { decision: 'deny', reason: e.message, outcome: 'policy_denied' },
          ),
        )
        .catch((ae: unknown) => log().error({ err: String(ae) }, 'could not write the audit log'));
    }
    done(e.code);
    return fail(e);
  }
  const effect: Effect = call.effect;
  // Every write decision, allowed or refused, goes to the audit log (generic tools: when this call writes).
  const audit = effect !== 'read' ? deps.audit : undefined;
  const draft = { connection: provider.connection, provider: provider.kind, tool: tool.name, effect, args, started, callId: newCallId() };
  const record = async (r: Parameters<typeof auditEntry>[1]) => {
    if (audit) await audit.append(auditEntry(draft, r));
  };

  const decision = decide(flags, effect);
  if (!decision.allow) {
    log().info({ tool: tool.name, connection: provider.connection, effect, decision: 'deny' }, 'policy denied a tool call');
    deps.metrics?.policyDenied(provider.connection, tool.name, effect);
    done('policy_denied');
    const reason = call.note ? `${call.note}; ${decision.reason}` : decision.reason;
    await record({ decision: 'deny', reason, outcome: 'policy_denied' }).catch((ae: unknown) =>
      log().error({ err: String(ae) }, 'could not write the audit log'),
    );
    return fail(new CrmError({ code: 'policy_denied', message: `${tool.name} refused: ${reason}` }));
  }
  // The audit log fails closed: a write whose pending line could not be appended is refused before it is sent.
  const unaudited = audit
    ? await audit.begin(auditEntry(draft, { decision: 'allow', outcome: 'pending', phase: 'pending' })).then(
        () => undefined,
        (err: unknown) => err,
      )
    : undefined;
  if (unaudited) {
    done('config');
    return fail(unaudited);
  }
  const dryRun = args.dry_run === true;
  const prior: AuditEntry['prior'] = audit && effect === 'update' && !dryRun ? await safePriorValues(tool.name, args, provider, signal) : undefined;
  const requestIds: string[] = [];
  try {
    const out = await observeRequests(
      (e) => {
        if (e.requestId) requestIds.push(e.requestId);
      },
      () =>
        tool.handler(args, {
          provider,
          // The grant is derived from the decision taken on the narrowed flags, so the HTTP core enforces those.
          ctx: { grant: grantOf(tool, effect), signal, dryRun },
          policy: deps.reportOf(provider, flags),
          audit: deps.audit,
        }),
    );
    done('ok');
    await record({ decision: 'allow', outcome: 'ok', phase: 'done', prior, result: out, requestIds }).catch((ae: unknown) =>
      log().error({ err: String(ae) }, 'could not write the audit log after a write'),
    );
    return ok(out as Record<string, unknown>);
  } catch (err) {
    if (!(err instanceof CrmError)) log().error({ tool: tool.name, err: String((err as Error)?.stack ?? err) }, 'tool failed unexpectedly');
    const e = toCrmError(err);
    if (e.code === 'policy_denied') deps.metrics?.policyDenied(provider.connection, tool.name, effect);
    done(e.code);
    if (e.requestId) requestIds.push(e.requestId);
    await record({ decision: 'allow', outcome: e.code, phase: 'done', prior, requestIds }).catch((ae: unknown) =>
      log().error({ err: String(ae) }, 'could not write the audit log after a write'),
    );
    return fail(err);
  }
}
