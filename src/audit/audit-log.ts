/**
 * The audit log: one JSON line per write decision (allowed or refused), so a human can see what an agent
 * changed and undo it. Lines carry ids, effects, decisions and outcomes; free text (names, notes, bodies)
 * is reduced to a short prefix plus a hash, and every string passes through the redactor. Updates keep the
 * prior values of the fields they change, read from the CRM just before the write. The file fails closed:
 * when it cannot be written, writes are refused before they reach the CRM (`ensureWritable`). It is rotated by
 * size (`<file>.1` … `<file>.N`), and `recent` reads across the rotated files.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdir, open, appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';
import { CrmError } from '../http/errors.js';
import { appendRotating, readTailLines } from './audit-file.js';
import { toCrmError } from '../tools/result.js';
import { EFFECTS, Grant, type Effect } from '../policy/policy.js';
import type { Contact, CrmProvider, CustomFieldValue, Id, Lead } from '../providers/types.js';
import { redact } from '../util/redact.js';
import { log } from '../util/log.js';

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
  outcome: z.string().describe('ok, or the error code.'),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export interface AuditQuery {
  limit: number;
  tool?: string;
  decision?: 'allow' | 'deny';
  connection?: string;
}

/** What get_audit_log needs. */
export interface AuditReader {
  recent(q: AuditQuery): Promise<AuditEntry[]>;
}

export interface AuditLogOptions {
  /** The JSON-lines file (created with mode 0600); without one entries are kept in memory only (sandbox, tests). */
  file?: string;
  /** Entries kept in memory when there is no file. */
  memoryLimit?: number;
  /** Size (bytes) past which the file is rotated to `<file>.1` before the next line; default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept (`<file>.1` … `<file>.N`, the oldest dropped); default 5, 0 = truncate instead. */
  keep?: number;
}

export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_AUDIT_KEEP = 5;

/** How much of each file's tail `recent` reads, and how much it reads at most in all. */
const TAIL_BYTES = 2 * 1024 * 1024;
const READ_BUDGET = 2 * TAIL_BYTES;

/**
 * The refusal when the audit file cannot be written. It names the variable, not the path: the path may
 * reveal a user name or layout the agent has no business seeing, and the operator knows where it points.
 */
function unwritable(err: unknown): CrmError {
  const why = (err as { code?: string })?.code ?? 'write failed';
  return new CrmError({
    code: 'config',
    retryable: false,
    cause: err,
    message:
      `The audit log cannot be written (${why}), so writes are refused: every write must leave an audit line. ` +
      'Point CRM_MCP_AUDIT_LOG at a writable file (or fix its directory), or set CRM_MCP_AUDIT_LOG=off to run without one.',
  });
}

/** Errors an open for appending reports by itself. */
const OPEN_FAILURES = new Set(['EACCES', 'EPERM', 'ENOENT', 'EISDIR', 'ENOTDIR', 'EROFS', 'ELOOP', 'ENAMETOOLONG']);

export class AuditLog implements AuditReader {
  private readonly memory: AuditEntry[] = [];
  private chain: Promise<void> = Promise.resolve();
  private prepared = false;
  /** The error of the last failed append, until an append succeeds again. */
  private lastFailure: unknown;

  constructor(private readonly o: AuditLogOptions = {}) {}

  get file(): string | undefined {
    return this.o.file;
  }

  get description(): string {
    return this.o.file ? `file ${this.o.file}` : 'memory (not persisted)';
  }

  /** Runs `op` after every queued write (writes and checks are serialised: rotation must not race an append). */
  private queue<T>(op: () => Promise<T>): Promise<T> {
    const next = this.chain.then(op);
    this.chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async prepare(file: string): Promise<void> {
    if (this.prepared) return;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await appendFile(file, '', { mode: 0o600 });
    await chmod(file, 0o600);
    this.prepared = true;
  }

  /**
   * Throws a CrmError (code `config`) unless an audit line could be appended right now: the file (or its
   * directory) is created if need be and opened for appending. The server calls it before every allowed
   * write, so a write that could not be audited is never sent. An open + close is cheap next to a CRM call,
   * and it notices a file removed or made unwritable while the server runs.
   */
  ensureWritable(): Promise<void> {
    const file = this.o.file;
    if (!file) return Promise.resolve();
    return this.queue(async () => {
      try {
        await this.prepare(file);
        const fh = await open(file, 'a', 0o600);
        await fh.close();
      } catch (err) {
        this.prepared = false; // a directory removed meanwhile is created again on the next try
        throw unwritable(err);
      }
      // The open worked. A failure an open would have shown (permissions, a missing directory) is over; one
      // only a write shows (a full disk, a quota, an I/O error) is not known to be: keep refusing.
      const code = (this.lastFailure as { code?: string } | undefined)?.code ?? '';
      if (this.lastFailure !== undefined && !OPEN_FAILURES.has(code)) throw unwritable(this.lastFailure);
      this.lastFailure = undefined;
    });
  }

  /**
   * Appends one entry; writes are serialised. A failed write is logged and remembered (the next
   * `ensureWritable` refuses), but does not fail the call it records: that call has already reached the CRM.
   */
  append(entry: AuditEntry): Promise<void> {
    const line = `${redact(JSON.stringify(entry))}\n`;
    if (!this.o.file) {
      this.memory.push(JSON.parse(line) as AuditEntry);
      const over = this.memory.length - (this.o.memoryLimit ?? 1000);
      if (over > 0) this.memory.splice(0, over);
      return Promise.resolve();
    }
    const file = this.o.file;
    return this.queue(async () => {
      try {
        await this.prepare(file);
        await appendRotating(file, line, this.o.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES, this.o.keep ?? DEFAULT_AUDIT_KEEP);
        this.lastFailure = undefined;
      } catch (err) {
        this.prepared = false;
        this.lastFailure = err;
        log().error({ err: String(err), file }, 'could not write the audit log');
      }
    });
  }

  /** Newest first, across the current file and then the rotated ones, within a bounded read. */
  async recent(q: AuditQuery): Promise<AuditEntry[]> {
    await this.chain;
    const out: AuditEntry[] = [];
    const take = (all: AuditEntry[]) => {
      for (let i = all.length - 1; i >= 0 && out.length < q.limit; i--) {
        const e = all[i]!;
        if (q.tool && e.tool !== q.tool) continue;
        if (q.decision && e.decision !== q.decision) continue;
        if (q.connection && e.connection !== q.connection) continue;
        out.push(e);
      }
    };
    if (!this.o.file) {
      take(this.memory);
      return out;
    }
    const files = [this.o.file];
    for (let i = 1; i <= (this.o.keep ?? DEFAULT_AUDIT_KEEP); i++) files.push(`${this.o.file}.${i}`);
    let budget = READ_BUDGET;
    for (const f of files) {
      if (out.length >= q.limit || budget <= 0) break;
      const tail = await readTailLines(f, Math.min(TAIL_BYTES, budget));
      if (!tail) break; // no such file: nothing older either
      budget -= tail.bytes;
      take(parseLines(tail.lines));
    }
    return out;
  }
}

/** Entries from lines; a torn or foreign line is skipped. */
function parseLines(lines: string[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const l of lines) {
    try {
      const p = AuditEntry.safeParse(JSON.parse(l));
      if (p.success) out.push(p.data);
    } catch {
      // not JSON: skip it
    }
  }
  return out;
}

// ---------------------------------------------------------------- what goes into an entry

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
    return { unavailable: toCrmError(err).code };
  }
}

export interface AuditDraft {
  connection: string;
  provider: string;
  tool: string;
  effect: Effect;
  args: Record<string, unknown>;
  started: number;
}

/** Builds an entry from what the server knows about the call. */
export function auditEntry(
  d: AuditDraft,
  r: { decision: 'allow' | 'deny'; reason?: string; outcome: string; prior?: Record<string, unknown>; result?: unknown; requestIds?: string[] },
): AuditEntry {
  const resultIds = resultIdsOf(r.result);
  return {
    time: new Date(d.started).toISOString(),
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
    duration_ms: Date.now() - d.started,
    outcome: r.outcome,
  };
}
