/**
 * The audit log: JSON lines of write decisions (allowed or refused), so a human can see what an agent changed
 * and undo it; what a line holds is in audit-entry.ts. An allowed write leaves two lines with one call id:
 * `pending` before anything is sent to the CRM, and its outcome after. The pending append is the one that
 * fails closed: when it cannot be written (a directory in the way, a full disk, a quota) the call is refused
 * before it reaches the CRM (`begin`). `recent` pairs the two lines into one entry per call, and shows a
 * pending line whose outcome never came (a crash, a disk that filled in between) as outcome "unknown". The
 * file is rotated by size (`<file>.1` … `<file>.N`), and `recent` reads across the rotated files.
 */
import { chmod, mkdir, open, appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { CrmError } from '../domain/errors.js';
import { appendRotating, readTailLines } from './audit-file.js';
import { AuditLine, type AuditEntry } from './audit-entry.js';
import { redact } from '../util/redact.js';
import { log } from '../util/log.js';

export { AuditEntry, AuditLine, auditEntry, digestText, newCallId, resultIdsOf, safePriorValues, summarize, targetOf, type AuditDraft } from './audit-entry.js';

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
  /** The file layer's append (tests: a disk that fills up); default appendRotating. */
  appendLine?: (file: string, line: string, maxBytes: number, keep: number) => Promise<void>;
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
  private readonly memory: AuditLine[] = [];
  /** Call ids whose pending line this process wrote and whose outcome line it has not written yet. */
  private readonly inflight = new Set<string>();
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
   * Throws a CrmError (code `config`) unless the file (or its directory) can be created and opened for
   * appending right now. Start-up calls it with writes on, so a server that could not audit does not start;
   * each call is then guarded by its own pending line (`begin`), which also catches what only a write shows.
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

  /** One line, redacted, appended (serialised); rejects with the file system's error. */
  private write(entry: AuditLine): Promise<void> {
    const line = `${redact(JSON.stringify(entry))}\n`;
    if (!this.o.file) {
      this.memory.push(JSON.parse(line) as AuditLine);
      const over = this.memory.length - (this.o.memoryLimit ?? 1000);
      if (over > 0) this.memory.splice(0, over);
      return Promise.resolve();
    }
    const file = this.o.file;
    const appendLine = this.o.appendLine ?? appendRotating;
    return this.queue(async () => {
      try {
        await this.prepare(file);
        await appendLine(file, line, this.o.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES, this.o.keep ?? DEFAULT_AUDIT_KEEP);
        this.lastFailure = undefined;
      } catch (err) {
        this.prepared = false;
        this.lastFailure = err;
        throw err;
      }
    });
  }

  /**
   * The pending line of an allowed write (outcome "pending", with its call id), appended before anything is
   * sent. Throws a CrmError (code `config`) when it cannot be written: the caller refuses the call, so no
   * write reaches the CRM without its line.
   */
  async begin(entry: AuditLine): Promise<void> {
    if (entry.call_id) this.inflight.add(entry.call_id);
    try {
      await this.write({ ...entry, phase: 'pending', outcome: 'pending' });
    } catch (err) {
      if (entry.call_id) this.inflight.delete(entry.call_id);
      log().error({ err: String(err), file: this.o.file }, 'could not write the audit log; the write is refused');
      throw unwritable(err);
    }
  }

  /**
   * Appends an outcome line (same call id as its pending line) or a refusal. A failed append is logged, not
   * thrown: the call it records has already happened, and its pending line is there (read as "unknown").
   */
  async append(entry: AuditLine): Promise<void> {
    try {
      await this.write(entry);
    } catch (err) {
      log().error({ err: String(err), file: this.o.file }, 'could not write the audit log');
    } finally {
      if (entry.call_id) this.inflight.delete(entry.call_id);
    }
  }

  /** Newest first, one entry per call, across the current file and then the rotated ones, within a bounded read. */
  async recent(q: AuditQuery): Promise<AuditEntry[]> {
    await this.chain;
    const out: AuditEntry[] = [];
    const pair = pairing(this.inflight);
    const take = (all: AuditLine[]) => {
      for (let i = all.length - 1; i >= 0 && out.length < q.limit; i--) {
        const e = pair(all[i]!);
        if (!e) continue;
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

/**
 * Reading newest first, the entry a line stands for, or undefined: an outcome line stands for its call (its
 * pending line, met later, is skipped); a pending line without an outcome is the call as far as it is known,
 * "pending" while this process still runs it, "unknown" otherwise (the process stopped, or the outcome line
 * could not be written): the CRM may or may not have applied it.
 */
function pairing(inflight: ReadonlySet<string>): (line: AuditLine) => AuditEntry | undefined {
  const finished = new Set<string>();
  return ({ call_id: id, phase, ...entry }) => {
    if (phase === 'pending') {
      if (id !== undefined && finished.has(id)) return undefined;
      return { ...entry, outcome: id !== undefined && inflight.has(id) ? 'pending' : 'unknown' };
    }
    if (id !== undefined) finished.add(id);
    return entry;
  };
}

/** Lines of the file; a torn or foreign line is skipped. */
function parseLines(lines: string[]): AuditLine[] {
  const out: AuditLine[] = [];
  for (const l of lines) {
    try {
      const p = AuditLine.safeParse(JSON.parse(l));
      if (p.success) out.push(p.data);
    } catch {
      // not JSON: skip it
    }
  }
  return out;
}
