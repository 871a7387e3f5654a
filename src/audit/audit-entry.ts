/**
 * What goes into an audit entry: the schema of a line, and how one is built from a call. Lines carry ids,
 * effects, decisions and outcomes; free text (names, notes, bodies) is reduced to a short prefix plus a hash,
 * and every string passes through the redactor. Updates keep the prior values of the fields they change,
 * read from the CRM just before the write. An allowed write leaves two lines with one `call_id`: `pending`
 * before anything is sent, and its outcome after (audit-log.ts pairs them when reading). What only one tool
 * knows (a raw request's target, how to read an update's prior values) comes with the tool's definition
 * (tools/define.ts `audit`) through the draft: nothing here names a tool or a CRM.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as z from 'zod';
import { CrmError } from '../domain/errors.js';
import { StoreError } from '../store/store.js';
import { EFFECTS, type Effect } from '../policy/policy.js';
import { redact } from '../util/redact.js';

export const AuditEntry = z.object({
  time: z.string(),
  connection: z.string(),
  provider: z.string(),
  tool: z.string(),
  effect: z.enum(EFFECTS),
  decision: z.enum(['allow', 'deny']),
  reason: z.string().optional().describe('Why the policy refused the call.'),
  dry_run: z.boolean().optional(),
  target: z.record(z.string(), z.unknown()).describe('Ids the call was aimed at (record id, entity, API path template).'),
  args: z.record(z.string(), z.unknown()).describe('The arguments, with free text reduced to a prefix and a hash.'),
  prior: z.record(z.string(), z.unknown()).optional().describe('Updates: the values the changed fields had before the call.'),
  result_ids: z.record(z.string(), z.unknown()).optional().describe('Ids of what the call created or changed.'),
  crm_request_ids: z.array(z.string()),
  approval: z
    .object({
      id: z.string().optional(),
      decision: z.enum(['asked', 'approved', 'declined', 'refused']),
      via: z.string().optional(),
      by: z.string().optional(),
      at: z.string().optional(),
      sent: z.array(z.record(z.string(), z.unknown())).optional(),
    })
    .optional()
    .describe(
      'CRM_CONFIRM_WRITES: the approval record (id), what happened (asked a person, approved, declined, refused), who answered and how (terminal, http-page, client), when, and the requests approved.',
    ),
  duration_ms: z.number(),
  outcome: z
    .string()
    .describe(
      'ok, or the error code; "pending" while the call runs, "unknown" when it was sent but no outcome was recorded (the server stopped or could not write the log): check the CRM.',
    ),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

/**
 * A line of the file: an entry plus the id that pairs an allowed write's two lines, and which of them it is.
 * Lines written before pairing existed have neither and stand alone.
 */
export const AuditLine = AuditEntry.extend({
  call_id: z.string().optional(),
  phase: z.enum(['pending', 'done']).optional(),
});
export type AuditLine = z.infer<typeof AuditLine>;

/** Keys whose string values are structural (ids, enums, dates, API paths), kept verbatim. */
const STRUCTURAL = new Set([
  'id',
  'entity',
  'entity_id',
  'status_id',
  'pipeline_id',
  'responsible_user_id',
  'complete_till',
  'task_type_id',
  'method',
  'path',
  'field_id',
  'field_code',
  'field',
  'code',
]);

/** Free text reduced to a prefix (never the whole text) plus length and hash, so two entries can be compared. */
export function digestText(s: string): string {
  const keep = Math.min(16, Math.floor(s.length / 3));
  const hash = createHash('sha256').update(s).digest('hex').slice(0, 12);
  return `${s.slice(0, keep)}…[${s.length} chars, sha256:${hash}]`;
}

/** Arguments with free text digested; numbers, booleans and structural strings kept. */
export function summarize(value: unknown, key = '', depth = 0): unknown {
  if (typeof value === 'string') return STRUCTURAL.has(key) && value.length <= 200 ? redact(value) : digestText(value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (depth > 6) return '…';
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => summarize(v, key, depth + 1));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, 100)) out[k] = summarize(v, k, depth + 1);
    return out;
  }
  return undefined;
}

/** The ids a call aims at: the record ids in its arguments, then what the tool adds (ToolAudit `target`). */
export function targetOf(args: Record<string, unknown>, extra?: Record<string, unknown>): Record<string, unknown> {
  const t: Record<string, unknown> = {};
  for (const k of ['id', 'entity', 'entity_id'] as const) if (args[k] !== undefined && typeof args[k] !== 'object') t[k] = args[k];
  return extra ? Object.assign(t, extra) : t;
}

/** Ids of what a successful call created or changed, from its result. */
export function resultIdsOf(out: unknown): Record<string, unknown> | undefined {
  if (!out || typeof out !== 'object') return undefined;
  const o = out as Record<string, unknown>;
  const ids: Record<string, unknown> = {};
  for (const k of ['lead', 'contact', 'note', 'task', 'deleted']) {
    const v = o[k] as { id?: unknown; entity?: unknown } | null | undefined;
    if (v && (typeof v.id === 'number' || typeof v.id === 'string')) ids[`${k}_id`] = v.id;
  }
  for (const k of ['contact_id', 'company_id', 'created']) if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'object') ids[k] = o[k];
  if (typeof o.result === 'number' || (typeof o.result === 'string' && /^\d+$/.test(o.result))) ids.result = o.result;
  if (typeof o.status === 'number') ids.status = o.status;
  return Object.keys(ids).length ? ids : undefined;
}

/** Prior values kept verbatim (ids, prices, phones, emails and tags are needed to undo); names are digested. */
const PRIOR_VERBATIM = new Set(['price', 'status_id', 'pipeline_id', 'responsible_user_id', 'tags', 'phones', 'emails']);

/**
 * The prior values of an update as the line keeps them, read by `read` (the tool's ToolAudit `prior`), or the
 * error code when the read failed: the update still runs, only an audit file that cannot be written blocks a write.
 */
export async function safePriorValues(read: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  let values: Record<string, unknown>;
  try {
    values = await read();
  } catch (err) {
    // The code the tool result would show for this error (tools/result.ts), without importing the tool layer.
    return { unavailable: err instanceof CrmError ? err.code : err instanceof StoreError ? 'network' : 'upstream' };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) out[k] = PRIOR_VERBATIM.has(k) ? v : summarize(v, k);
  return out;
}

export interface AuditDraft {
  connection: string;
  provider: string;
  tool: string;
  effect: Effect;
  args: Record<string, unknown>;
  started: number;
  /** Pairs the pending line of an allowed write with its outcome line. */
  callId?: string;
  /** Ids beyond the arguments' record ids that the tool names (ToolAudit `target`). */
  target?: Record<string, unknown>;
}

/** A fresh call id: short, random, unique enough within one log's lifetime. */
export function newCallId(): string {
  return randomUUID();
}

/**
 * Builds a line from what the server knows about the call. `phase` marks the two lines of an allowed write:
 * `pending` (written before anything is sent, outcome "pending") and `done` (the outcome).
 */
export function auditEntry(
  d: AuditDraft,
  r: {
    decision: 'allow' | 'deny';
    reason?: string;
    outcome: string;
    phase?: 'pending' | 'done';
    prior?: Record<string, unknown>;
    result?: unknown;
    requestIds?: string[];
    /** A person's approval of the call (tools/invoke.ts `approval`), as approvals/gate.ts notes it. */
    approval?: AuditLine['approval'];
  },
): AuditLine {
  const resultIds = resultIdsOf(r.result);
  return {
    time: new Date(d.started).toISOString(),
    ...(d.callId ? { call_id: d.callId } : {}),
    ...(r.phase ? { phase: r.phase } : {}),
    connection: d.connection,
    provider: d.provider,
    tool: d.tool,
    effect: d.effect,
    decision: r.decision,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(d.args.dry_run === true ? { dry_run: true } : {}),
    target: targetOf(d.args, d.target),
    args: summarize(d.args) as Record<string, unknown>,
    ...(r.prior ? { prior: r.prior } : {}),
    ...(resultIds ? { result_ids: resultIds } : {}),
    crm_request_ids: [...new Set(r.requestIds ?? [])],
    ...(r.approval
      ? {
          approval: {
            ...r.approval,
            ...(r.approval.sent
              ? { sent: r.approval.sent.map((q) => ({ method: q.method, url: redact(String(q.url)).slice(0, 300), body: summarize(q.body) })) }
              : {}),
          },
        }
      : {}),
    duration_ms: r.phase === 'pending' ? 0 : Date.now() - d.started,
    outcome: r.outcome,
  };
}
