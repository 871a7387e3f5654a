/**
 * One tool call, end to end, as a chain of small wrappers, each one concern composed over the next:
 *
 *   classify (effect) → enforce (policy) → audited (fails closed) → [approval] → [journal] → runHandler
 *
 * and `invokeTool` turns what comes out into the MCP result and the metrics. Registration (server.ts) wires
 * this to the SDK; nothing here knows about transports, and nothing here names a tool or a CRM: what one tool
 * needs (its effect for these arguments, its audit target and prior values) comes with its definition.
 *
 * An allowed write is audited twice with one call id: a pending line before anything is sent (reads of prior
 * values included), and the outcome after. Only the pending append can refuse the call: it is the append that
 * can fail (a full disk), and when it does the call has not reached the CRM. Refusals (by the effect or the
 * policy) are recorded by the step that refuses.
 *
 * The two slots between the audit and the handler are the extension points for what decides or records a
 * write before it is sent: a human approval, and the journal of a resumable import. They run after the
 * pending audit line (so a write an approver refused or a journal could not record is still in the log) and
 * inside the request observer (so requests they send are counted as the call's). `approval` is a person's
 * approval (src/approvals/, when CRM_CONFIRM_WRITES is on); `journal` passes the call through today.
 */
import { auditEntry, newCallId, safePriorValues, targetOf, type AuditDraft, type AuditEntry, type AuditLog } from '../audit/audit-log.js';
import { observeRequests } from '../http/client.js';
import { CrmError } from '../domain/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { decide, Grant, safeUpdatesOf, type Effect, type PolicyFlags, type SafeUpdate } from '../policy/policy.js';
import type { CrmProvider } from '../crms/types.js';
import { log } from '../util/log.js';
import { processIdentityLocks, type IdentityLocks } from '../store/identity-lock.js';
import type { AnyTool, CallEffect, ChangeFeed, PolicyReport } from './define.js';
import { fail, ok, toCrmError } from './result.js';
import type { CallToolResult, InputRequiredResult } from '@modelcontextprotocol/server';
import { APPROVAL_FIELD, AskThePerson, gateWrite, type ApprovalNote } from '../approvals/gate.js';
import type { ApprovalChannel } from '../approvals/channel.js';
import type { ApprovalDesk } from '../approvals/desk.js';
import type { ImportDesk } from '../import/jobs.js';

export interface InvokeDeps {
  metrics?: Pick<Metrics, 'toolCall' | 'policyDenied'>;
  audit?: AuditLog;
  /** The flags a connection runs under (the operator's, narrowed per request). */
  flagsOf: (provider: CrmProvider) => PolicyFlags;
  /** The policy report get_account shows for a connection. */
  reportOf: (provider: CrmProvider, flags: PolicyFlags) => PolicyReport;
  /** The per-person locks (the store's, across processes); default: this process only. */
  identityLocks?: IdentityLocks;
  /** CRM_CONFIRM_WRITES: the desk where writes wait for a person (src/approvals/); absent = off. */
  approvals?: ApprovalDesk;
  /** Imports' journal and jobs (src/import/), in the app's store; absent: this process's memory. */
  imports?: ImportDesk;
  /** The change feed list_changes reads (ToolEnv `changes`). */
  changes?: ChangeFeed;
}

/** One call as it goes down the chain: what it is, and what the steps above decided about it. */
export interface ToolCall {
  readonly tool: AnyTool;
  readonly provider: CrmProvider;
  readonly args: Record<string, unknown>;
  readonly signal: AbortSignal | undefined;
  /** The flags this call runs under (InvokeDeps.flagsOf). */
  readonly flags: PolicyFlags;
  readonly started: number;
  /** Pairs the audit lines of this call. */
  readonly callId: string;
  /** Ids the audit line names beyond the arguments' record ids (the tool's ToolAudit `target`). */
  readonly target: Record<string, unknown> | undefined;
  /** Set by `classify`: the effect of this call (the tool's own, or its `effectOf` for these arguments). */
  decided?: CallEffect;
  /** When the call's fate was settled (refused, or the handler returned): the tool-call metric's duration. */
  settledAt?: number;
  /** The MCP request's side of an approval (who calls, whether the client can ask a person, its answer). */
  readonly channel?: ApprovalChannel;
  /** Set by `approval`: what the outcome line records about a person's approval. */
  approval?: ApprovalNote;
}

/** A step of the chain: runs the call (its own part, then the steps below) and returns the handler's output or throws. */
export type Step = (call: ToolCall) => Promise<unknown>;

/** One concern around the steps below it. */
export type Wrapper = (next: Step, deps: InvokeDeps) => Step;

/** The narrow update a call is (its tool's, or what its `effectOf` found in these arguments), if its effect is an update. */
function kindOf(call: Pick<ToolCall, 'tool' | 'decided'>): SafeUpdate | undefined {
  return call.decided?.effect === 'update' ? (call.decided.safeUpdate ?? call.tool.safeUpdate) : undefined;
}

/**
 * The grant of a call: its decided effect plus reads (a typed tool raised above its own effect also keeps its
 * own). A narrow update (move_lead, a raw stage-only request) gets reads plus that narrow update alone, in
 * every mode: the HTTP core then admits only requests the wing classifies as exactly that update.
 */
function grantOf(tool: AnyTool, effect: Effect, kind: SafeUpdate | undefined): Grant {
  if (effect === 'update' && kind !== undefined) return Grant.narrowUpdate(kind);
  return tool.maxEffect && effect !== tool.effect ? new Grant(['read', tool.effect, effect]) : Grant.for(effect);
}

/** The audit draft of a call (`callId` left out for a refusal before the call had an effect). */
function draftOf(call: ToolCall, effect: Effect, withCallId = true): AuditDraft {
  const { provider, tool, args, started } = call;
  // The narrow update a call is goes on its audit line beside the effect (e.g. update + safe_update "stage").
  const kind = effect === 'update' ? kindOf(call) : undefined;
  const target = kind ? { ...call.target, safe_update: kind } : call.target;
  return {
    connection: provider.connection,
    provider: provider.kind,
    tool: tool.name,
    effect,
    args,
    started,
    target,
    ...(withCallId ? { callId: call.callId } : {}),
  };
}

/** Appends a line that records what already happened: a failure is logged, never the call's outcome. */
async function note(audit: AuditLog | undefined, line: Parameters<AuditLog['append']>[0], what: string): Promise<void> {
  await audit?.append(line).catch((ae: unknown) => log().error({ err: String(ae) }, what));
}

/**
 * The effect of this call: the tool's own, or the generic tool's classification of these arguments, which the
 * handler then receives (`env.decided`) instead of classifying again. A generic tool may refuse the arguments
 * before classifying them (a path off the API, a broken batch): a `policy_denied` refusal is audited as admin.
 */
export const classify: Wrapper = (next, deps) => async (call) => {
  try {
    call.decided = call.tool.effectOf ? call.tool.effectOf(call.args) : { effect: call.tool.effect };
  } catch (err) {
    call.settledAt = Date.now();
    const e = toCrmError(err);
    if (e.code === 'policy_denied') {
      await note(
        deps.audit,
        auditEntry(draftOf(call, 'admin', false), { decision: 'deny', reason: e.message, outcome: 'policy_denied' }),
        'could not write the audit log',
      );
    }
    throw e;
  }
  return next(call);
};

/** The policy decision on the decided effect; a refused write is audited (a refused read is not). */
export const enforce: Wrapper = (next, deps) => async (call) => {
  const { tool, provider } = call;
  const { effect, note: why } = call.decided!;
  const decision = decide(call.flags, effect, kindOf(call));
  if (decision.allow) return next(call);
  call.settledAt = Date.now();
  log().info({ tool: tool.name, connection: provider.connection, effect, decision: 'deny' }, 'policy denied a tool call');
  const reason = why ? `${why}; ${decision.reason}` : decision.reason;
  if (effect !== 'read') {
    await note(deps.audit, auditEntry(draftOf(call, effect), { decision: 'deny', reason, outcome: 'policy_denied' }), 'could not write the audit log');
  }
  throw new CrmError({ code: 'policy_denied', message: `${tool.name} refused: ${reason}` });
};

/**
 * The audit of an allowed write (reads pass through): the pending line first, failing closed (the call is
 * refused, nothing sent); an update's prior values (the tool's ToolAudit `prior`, read-only); then the steps
 * below under a request observer; then the outcome line with the CRM's request ids.
 */
export const audited: Wrapper = (next, deps) => async (call) => {
  const effect = call.decided!.effect;
  const audit = effect !== 'read' ? deps.audit : undefined;
  if (!audit) return next(call);
  const draft = draftOf(call, effect);
  try {
    await audit.begin(auditEntry(draft, { decision: 'allow', outcome: 'pending', phase: 'pending' }));
  } catch (err) {
    call.settledAt = Date.now();
    throw err;
  }
  const { tool, provider, args, signal } = call;
  const read = tool.audit?.prior;
  const prior: AuditEntry['prior'] =
    effect === 'update' && args.dry_run !== true && read ? await safePriorValues(() => read(args, provider, { grant: Grant.readOnly(), signal })) : undefined;
  const requestIds: string[] = [];
  try {
    const out = await observeRequests(
      (e) => {
        if (e.requestId) requestIds.push(e.requestId);
      },
      () => next(call),
    );
    await note(
      audit,
      auditEntry(draft, { decision: 'allow', outcome: 'ok', phase: 'done', prior, result: out, requestIds, approval: call.approval }),
      'could not write the audit log after a write',
    );
    return out;
  } catch (err) {
    const e = toCrmError(err);
    if (e.requestId) requestIds.push(e.requestId);
    await note(
      audit,
      auditEntry(draft, { decision: 'allow', outcome: e.code, phase: 'done', prior, requestIds, approval: call.approval }),
      'could not write the audit log after a write',
    );
    throw err;
  }
};

/**
 * A person's approval of a write (CRM_CONFIRM_WRITES; src/approvals/gate.ts): a write without one is planned as
 * a dry run and put to a person (through the client, or out of band as `approval_required`); a write with one
 * runs once. Reads and dry runs pass; the approval field never reaches the tool. Off (no desk): passes through.
 */
export const approval: Wrapper = (next, deps) => {
  const desk = deps.approvals;
  if (!desk) return next;
  return async (call) => {
    const { [APPROVAL_FIELD]: approvalId, ...args } = call.args;
    const inner = (a: Record<string, unknown>): Promise<unknown> => {
      const sub: ToolCall = { ...call, args: a };
      return next(sub).finally(() => (call.settledAt ??= sub.settledAt));
    };
    const effect = call.decided!.effect;
    if (effect === 'read' || args.dry_run === true) return inner(args);
    return gateWrite(
      desk,
      {
        tool: call.tool.name,
        title: call.tool.title,
        effect,
        connection: call.provider.connection,
        args,
        approvalId,
        target: targetOf(args, call.target),
        canPlan: 'dry_run' in (call.tool.input.shape as Record<string, unknown>),
        channel: call.channel,
        note: (n) => (call.approval = n),
      },
      (a) => inner(a),
    ).catch((err: unknown) => {
      call.settledAt ??= Date.now();
      throw err;
    });
  };
};

/**
 * Slot: the journal of a resumable import. A later issue records each write here before it is sent and its
 * outcome after, so an interrupted import resumes without sending a write twice. Empty: passes through.
 */
export const journal: Wrapper = (next) => next;

/** The tool's handler under the call's grant, with the effect `classify` decided. */
export function runHandler(deps: InvokeDeps): Step {
  return async (call) => {
    const { tool, provider, args, signal, flags } = call;
    const decided = call.decided!;
    try {
      return await tool.handler(args, {
        provider,
        // The grant is derived from the decision taken on the narrowed flags, so the HTTP core enforces those.
        ctx: { grant: grantOf(tool, decided.effect, kindOf(call)), signal, dryRun: args.dry_run === true },
        // What get_account shows beside the report: the safe updates these (narrowed) flags admit, and approvals.
        policy: {
          ...deps.reportOf(provider, flags),
          safe_updates: safeUpdatesOf(flags),
          confirmations: deps.approvals?.settings.on ? { on: true, via: deps.approvals.settings.via } : { on: false, via: null },
        },
        audit: deps.audit,
        decided,
        identityLock: (deps.identityLocks ?? processIdentityLocks).for(provider),
        imports: deps.imports,
        changes: deps.changes,
      });
    } catch (err) {
      if (!(err instanceof CrmError)) log().error({ tool: tool.name, err: String((err as Error)?.stack ?? err) }, 'tool failed unexpectedly');
      throw err;
    } finally {
      call.settledAt ??= Date.now();
    }
  };
}

/** The chain, outermost first. */
export const CHAIN: readonly Wrapper[] = [classify, enforce, audited, approval, journal];

/** The chain composed over the handler; built once per server (its deps), not per call. */
const composed = new WeakMap<InvokeDeps, Step>();

function compose(deps: InvokeDeps): Step {
  let run = composed.get(deps);
  if (!run) composed.set(deps, (run = CHAIN.reduceRight<Step>((next, wrap) => wrap(next, deps), runHandler(deps))));
  return run;
}

/**
 * Runs one call down the chain and answers it as MCP does: the result, or the error with its code; with the
 * MCP request's approval channel, also a question for the person (`input_required`).
 */
export async function invokeTool(
  tool: AnyTool,
  provider: CrmProvider,
  args: Record<string, unknown>,
  signal: AbortSignal | undefined,
  deps: InvokeDeps,
): Promise<CallToolResult>;
export async function invokeTool(
  tool: AnyTool,
  provider: CrmProvider,
  args: Record<string, unknown>,
  signal: AbortSignal | undefined,
  deps: InvokeDeps,
  channel: ApprovalChannel | undefined,
): Promise<CallToolResult | InputRequiredResult>;
export async function invokeTool(
  tool: AnyTool,
  provider: CrmProvider,
  args: Record<string, unknown>,
  signal: AbortSignal | undefined,
  deps: InvokeDeps,
  channel?: ApprovalChannel,
): Promise<CallToolResult | InputRequiredResult> {
  const call: ToolCall = {
    tool,
    provider,
    args,
    signal,
    flags: deps.flagsOf(provider),
    started: Date.now(),
    callId: newCallId(),
    target: tool.audit?.target?.(args),
    channel,
  };
  const done = (outcome: string) => deps.metrics?.toolCall(tool.name, outcome, ((call.settledAt ?? Date.now()) - call.started) / 1000);
  try {
    const out = await compose(deps)(call);
    done('ok');
    return ok(out as Record<string, unknown>);
  } catch (err) {
    // A question for the person, put through the client: the SDK answers input_required (or, on a 2025
    // connection, asks with elicitation/create and calls again).
    if (err instanceof AskThePerson) {
      done('input_required');
      return err.result;
    }
    const e = toCrmError(err);
    // A refusal before the call was classified counts against admin, the effect it is treated as.
    if (e.code === 'policy_denied') deps.metrics?.policyDenied(provider.connection, tool.name, call.decided?.effect ?? 'admin');
    done(e.code);
    return fail(err);
  }
}
