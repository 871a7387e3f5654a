/**
 * The approval gate every write passes when CRM_CONFIRM_WRITES is on (tools/invoke.ts `approval` step). A
 * call without an approval is planned (the tool run as a dry run: nothing is sent), recorded, and then
 * either put to a person through the client (an `input_required` result with a form elicitation and a
 * signed request state) or answered `approval_required` with the id a person approves out of band. A call
 * with an approval runs only when the id is this server's, for this principal and these exact arguments,
 * approved, unexpired and unused, and it is marked used before it runs. Nothing the agent can put in the
 * arguments approves anything: the only approvals are a person's, recorded in the store.
 */
import { acceptedContent, inputRequired, type InputRequiredResult } from '@modelcontextprotocol/server';
import { CrmError } from '../domain/errors.js';
import type { PlannedRequest } from '../domain/records.js';
import { questionCodec, type ApprovalChannel } from './channel.js';
import { approvalError, type ApprovalDesk, type ApprovalRecord, type ApprovalVia } from './desk.js';
import { argsDigest } from './ids.js';
import { plannedRequests, summarize } from './plan.js';

/** The name of the input field a repeated call carries its approval in (listed only when approvals are on). */
export const APPROVAL_FIELD = 'approval_id';

/** What the audit line's `approval` field records. */
export interface ApprovalNote {
  id?: string;
  decision: 'asked' | 'approved' | 'declined' | 'refused';
  via?: ApprovalVia | 'operator';
  by?: string;
  at?: string;
  /** The requests the person approved (the dry run's plan). */
  sent?: PlannedRequest[];
}

/** A question for the client: the step answers it as an `input_required` result (the SDK serves both eras). */
export class AskThePerson extends CrmError {
  constructor(readonly result: InputRequiredResult) {
    super({ code: 'approval_required', message: 'Asked a person through the MCP client.' });
  }
}

export interface GatedCall {
  tool: string;
  title: string;
  effect: string;
  connection: string;
  /** The arguments the tool receives (without the approval field). */
  args: Record<string, unknown>;
  /** The approval field as the call carried it, if it did. */
  approvalId?: unknown;
  target: Record<string, unknown>;
  /** The tool takes `dry_run` (every write tool does): the plan is its dry run. */
  canPlan: boolean;
  channel?: ApprovalChannel;
  /** Receives what the audit line records. */
  note(n: ApprovalNote): void;
}

const FORM = {
  type: 'object' as const,
  properties: { approve: { type: 'boolean' as const, title: 'Approve this write', description: 'Check to let crm-mcp send it now.', default: false } },
  required: ['approve'],
};

function approvedNote(rec: ApprovalRecord): ApprovalNote {
  return {
    id: rec.nonce,
    decision: 'approved',
    via: rec.decided?.via,
    by: rec.decided?.by,
    at: rec.decided ? new Date(rec.decided.at).toISOString() : undefined,
    sent: rec.requests,
  };
}

/** Runs `run` with the call's arguments once a person approved it; plans and asks otherwise (throws). */
export async function gateWrite(desk: ApprovalDesk, c: GatedCall, run: (args: Record<string, unknown>) => Promise<unknown>): Promise<unknown> {
  const ch = c.channel;
  const principal = ch?.principal ?? 'stdio';
  const digest = argsDigest(c.tool, c.connection, c.args);

  if (c.approvalId !== undefined) {
    let rec: ApprovalRecord;
    try {
      rec = await desk.consume(typeof c.approvalId === 'string' ? c.approvalId : '', principal, digest);
    } catch (err) {
      c.note({ decision: 'refused' });
      throw err;
    }
    c.note(approvedNote(rec));
    return run(c.args);
  }

  if (ch && typeof ch.state === 'string') {
    let nonce: string;
    try {
      nonce = (await (await questionCodec(desk)).verify(ch.state, ch.ctx)).n;
    } catch {
      c.note({ decision: 'refused' });
      throw approvalError('approval_invalid', 'The answer came with a request state this server did not issue (or it expired); nothing was sent.');
    }
    const content = acceptedContent<{ approve?: unknown }>(ch.responses, 'approve');
    const accepted = content?.approve === true;
    const rec = await desk.answer(nonce, principal, digest, accepted, `MCP client ${ch.client}`).catch((err: unknown) => {
      c.note({ id: nonce, decision: 'refused' });
      throw err;
    });
    if (!accepted) {
      c.note({ id: nonce, decision: 'declined', via: 'client', by: rec.decided?.by, at: new Date(rec.decided!.at).toISOString() });
      throw approvalError('approval_declined', 'The person declined this write (or closed the question); nothing was sent.');
    }
    c.note(approvedNote(rec));
    return run(c.args);
  }

  const out = c.canPlan ? await run({ ...c.args, dry_run: true }) : undefined;
  const requests = plannedRequests(out);
  const reason = typeof (out as { reason?: unknown } | undefined)?.reason === 'string' ? (out as { reason: string }).reason : undefined;
  const summary = summarize({
    tool: c.tool,
    title: c.title,
    effect: c.effect,
    connection: c.connection,
    target: c.target,
    requests,
    reason,
    planned: c.canPlan,
  });
  const via = desk.settings.via;
  const askClient = via !== 'operator' && ch?.canAsk === true;
  if (via === 'client' && !askClient) {
    c.note({ decision: 'refused' });
    throw approvalError(
      'approval_unavailable',
      "Writes need a person's approval through the MCP client (CRM_CONFIRM_VIA=client), and this client cannot ask one (it did not declare elicitation). Nothing was sent.",
    );
  }
  const rec = await desk.create({
    principal,
    digest,
    tool: c.tool,
    connection: c.connection,
    effect: c.effect,
    target: c.target,
    summary,
    requests,
    channel: askClient ? 'client' : 'operator',
  });
  if (askClient) {
    c.note({ id: rec.nonce, decision: 'asked', via: 'client' });
    const requestState = await (await questionCodec(desk)).mint({ n: rec.nonce }, ch!.ctx);
    const lines = requests.slice(0, 5).map((r) => `• ${r.method} ${r.url}`);
    const message = [`crm-mcp asks before it writes to the CRM.`, summary, ...lines, 'Approve this write?'].join('\n');
    throw new AskThePerson(inputRequired({ inputRequests: { approve: inputRequired.elicit({ mode: 'form', message, requestedSchema: FORM }) }, requestState }));
  }
  c.note({ id: rec.nonce, decision: 'asked', via: 'operator' });
  const expiresAt = new Date(rec.expires).toISOString();
  throw approvalError(
    'approval_required',
    `Nothing was sent: this write waits for a person's approval. Show the person this summary and ask them to run \`crm-mcp approve ${rec.id}\` ` +
      `(or to approve it on the server's /approvals page), then repeat exactly the same call with approval_id "${rec.id}" before ${expiresAt}. ` +
      `Summary: ${summary}`,
    { approval_id: rec.id, summary, requests, expires_at: expiresAt },
  );
}
