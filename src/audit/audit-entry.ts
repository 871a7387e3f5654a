/**
 * What goes into an audit entry: the schema of a line, and how one is built from a call. Lines carry ids,
 * effects, decisions and outcomes; free text (names, notes, bodies) is reduced to a short prefix plus a hash,
 * and every string passes through the redactor. Updates keep the prior values of the fields they change,
 * read from the CRM just before the write. An allowed write leaves two lines with one `call_id`: `pending`
 * before anything is sent, and its outcome after (audit-log.ts pairs them when reading).
 */
import { createHash, randomUUID } from 'node:crypto';
import * as z from 'zod';
import { CrmError } from '../domain/errors.js';
import { StoreError } from '../store/store.js';
import { EFFECTS, Grant, type Effect } from '../policy/policy.js';
import type { Contact, CrmProvider, CustomFieldValue, Id, Lead } from '../crms/types.js';
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

/** The ids a call aims at, from its arguments. */
export function targetOf(tool: string, args: Record<string, unknown>): Record<string, unknown> {
  const t: Record<string, unknown> = {};
  for (const k of ['id', 'entity', 'entity_id'] as const) if (args[k] !== undefined && typeof args[k] !== 'object') t[k] = args[k];
  if (tool === 'kommo_request' && typeof args.path === 'string') {
    t.path = redact(args.path).replace(/\/\d+(?=\/|$)/g, '/:id');
    const ids = [...args.path.matchAll(/\/(\d+)(?=\/|$)/g)].map((m) => Number(m[1]));
    if (ids.length) t.ids = ids;
  }
  if (tool === 'bitrix_call') {
    const p = (args.params ?? {}) as Record<string, unknown>;
    if (typeof args.method === 'string') t.method = args.method.toLowerCase();
    const id = p.id ?? p.ID;
    if (typeof id === 'number' || typeof id === 'string') t.id = id;
  }
  return t;
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

function priorCustomFields(have: CustomFieldValue[], wanted: unknown): unknown[] {
  const list = Array.isArray(wanted) ? (wanted as Array<Record<string, unknown>>) : [];
  return list.map((w) => {
    const match = have.find(
      (f) =>
        (w.field_id !== undefined && String(f.id) === String(w.field_id)) ||
        (typeof w.field_code === 'string' && f.code === w.field_code) ||
        (typeof w.field_name === 'string' && f.name.toLowerCase() === w.field_name.toLowerCase()),
    );
    return {
      field: match?.id ?? w.field_id ?? w.field_code ?? (typeof w.field_name === 'string' ? digestText(w.field_name) : null),
      values: match ? match.values : [],
    };
  });
}

const LEAD_FIELDS: Record<string, (l: Lead, args: Record<string, unknown>) => [string, unknown]> = {
  name: (l) => ['name', l.name],
  price: (l) => ['price', l.price],
  status_id: (l) => ['status_id', l.stage?.id ?? null],
  pipeline_id: (l) => ['pipeline_id', l.pipeline?.id ?? null],
  responsible_user_id: (l) => ['responsible_user_id', l.responsible?.id ?? null],
  tags_to_add: (l) => ['tags', l.tags],
  tags_to_delete: (l) => ['tags', l.tags],
  custom_fields: (l, a) => ['custom_fields', priorCustomFields(l.custom_fields, a.custom_fields)],
};

const CONTACT_FIELDS: Record<string, (c: Contact, args: Record<string, unknown>) => [string, unknown]> = {
  name: (c) => ['name', c.name],
  first_name: (c) => ['first_name', c.first_name],
  last_name: (c) => ['last_name', c.last_name],
  responsible_user_id: (c) => ['responsible_user_id', c.responsible?.id ?? null],
  phones_to_add: (c) => ['phones', c.phones],
  phones_to_remove: (c) => ['phones', c.phones],
  emails_to_add: (c) => ['emails', c.emails],
  emails_to_remove: (c) => ['emails', c.emails],
  tags_to_add: (c) => ['tags', c.tags],
  tags_to_delete: (c) => ['tags', c.tags],
  custom_fields: (c, a) => ['custom_fields', priorCustomFields(c.custom_fields, a.custom_fields)],
};

/** Prior values kept verbatim (ids, prices, phones, emails and tags are needed to undo); names are digested. */
const PRIOR_VERBATIM = new Set(['price', 'status_id', 'pipeline_id', 'responsible_user_id', 'tags', 'phones', 'emails']);

/**
 * For the typed update tools: the current values of exactly the fields the call will change, read from the
 * CRM with a read-only grant just before the update. Undefined for tools without a typed record.
 */
export async function priorValues(
  tool: string,
  args: Record<string, unknown>,
  provider: CrmProvider,
  signal?: AbortSignal,
): Promise<Record<string, unknown> | undefined> {
  const ctx = { grant: Grant.readOnly(), signal };
  let fields: Array<[string, unknown]>;
  // The update tools require the leads / contacts capability, whose members include these reads.
  if (tool === 'update_lead' && provider.getLead) {
    const { lead } = await provider.getLead(ctx, args.id as Id, args.entity as 'lead' | 'deal' | undefined);
    fields = Object.keys(args)
      .filter((k) => LEAD_FIELDS[k])
      .map((k) => LEAD_FIELDS[k]!(lead, args));
  } else if (tool === 'update_contact' && provider.getContact) {
    const contact = await provider.getContact(ctx, args.id as Id);
    fields = Object.keys(args)
      .filter((k) => CONTACT_FIELDS[k])
      .map((k) => CONTACT_FIELDS[k]!(contact, args));
  } else return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of fields) out[k] = PRIOR_VERBATIM.has(k) ? v : summarize(v, k);
  return out;
}

/** Prior values, or the error code when the read failed (the update still runs: only an audit file that cannot be written blocks a write). */
export async function safePriorValues(
  tool: string,
  args: Record<string, unknown>,
  provider: CrmProvider,
  signal?: AbortSignal,
): Promise<Record<string, unknown> | undefined> {
  try {
    return await priorValues(tool, args, provider, signal);
  } catch (err) {
    // The code the tool result would show for this error (tools/result.ts), without importing the tool layer.
    return { unavailable: err instanceof CrmError ? err.code : err instanceof StoreError ? 'network' : 'upstream' };
  }
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
    target: targetOf(d.tool, d.args),
    args: summarize(d.args) as Record<string, unknown>,
    ...(r.prior ? { prior: r.prior } : {}),
    ...(resultIds ? { result_ids: resultIds } : {}),
    crm_request_ids: [...new Set(r.requestIds ?? [])],
    duration_ms: r.phase === 'pending' ? 0 : Date.now() - d.started,
    outcome: r.outcome,
  };
}
