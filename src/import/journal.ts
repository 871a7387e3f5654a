/**
 * The journal of a resumable import, in the store (file, memory or Redis: the same store as the tokens), so an
 * import survives the process that ran it. Keys, all under `import:<id>:`:
 *
 *   meta     who, what, how far (ImportMeta)
 *   rows     the rows as given (written once, before anything is sent), so a resume needs only the id
 *   results  each row's outcome (row number → RowResult), rewritten after every batch
 *   pending  the batch being sent: its rows, the `request_id`s it carries and when it started; written before
 *            the batch is sent and cleared only after its outcomes are in `results`
 *
 * A crash, a timeout or a lost answer leaves `pending` set: the resume looks for each of its rows' leads (made
 * since `started`) before sending anything again (services/import-leads.ts). Entries expire after a week.
 */
import { randomUUID } from 'node:crypto';
import type { Store } from '../store/store.js';

export const JOURNAL_TTL_MS = 7 * 24 * 3600_000;

export type ImportState = 'running' | 'done' | 'failed' | 'interrupted';

export interface ImportOptions {
  if_open_lead_exists: 'skip' | 'create';
  run_automations: boolean;
  dry_run: boolean;
}

export interface ImportMeta {
  id: string;
  /** The connection the import writes to; a resume on another one is refused. */
  connection: string;
  options: ImportOptions;
  total: number;
  state: ImportState;
  started_at: string;
  updated_at: string;
  /** Batches sent so far (dry run: planned). */
  batches: number;
  error?: string;
}

export type RowStatus = 'created' | 'existing' | 'error' | 'would_create';

export interface RowResult {
  /** The row's number in the input, from 1. */
  row: number;
  status: RowStatus;
  lead_id?: string | number | null;
  contact_id?: string | number | null;
  company_id?: string | number | null;
  /** The lead's and the contact's pages in the CRM's web interface, so a person can click through. */
  url?: string | null;
  contact_url?: string | null;
  /** Why: the duplicate matched, the link made, the error. */
  reason?: string;
}

export interface PendingBatch {
  /** Row numbers (from 1). */
  rows: number[];
  request_ids: string[];
  /** ms since the epoch, just before the batch was sent. */
  started: number;
}

export function newImportId(): string {
  return `imp_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
}

/** An import id as given by a caller: a name the journal made, nothing else reaches a store key. */
export function isImportId(id: string): boolean {
  return /^imp_[0-9a-f]{16}$/.test(id);
}

export class ImportJournal {
  constructor(
    private readonly store: Store,
    readonly id: string,
  ) {}

  private key(part: string): string {
    return `import:${this.id}:${part}`;
  }

  meta(): Promise<ImportMeta | undefined> {
    return this.store.get<ImportMeta>(this.key('meta'));
  }

  async setMeta(m: ImportMeta): Promise<void> {
    await this.store.set(this.key('meta'), { ...m, updated_at: new Date().toISOString() }, JOURNAL_TTL_MS);
  }

  async rows(): Promise<unknown[]> {
    return (await this.store.get<unknown[]>(this.key('rows'))) ?? [];
  }

  setRows(rows: readonly unknown[]): Promise<void> {
    return this.store.set(this.key('rows'), rows, JOURNAL_TTL_MS);
  }

  async results(): Promise<Record<string, RowResult>> {
    return (await this.store.get<Record<string, RowResult>>(this.key('results'))) ?? {};
  }

  setResults(r: Record<string, RowResult>): Promise<void> {
    return this.store.set(this.key('results'), r, JOURNAL_TTL_MS);
  }

  async pending(): Promise<PendingBatch | undefined> {
    return (await this.store.get<PendingBatch | null>(this.key('pending'))) ?? undefined;
  }

  /** Written (durably: the store resolves when it is) before the batch is sent. */
  setPending(p: PendingBatch | null): Promise<void> {
    return this.store.set(this.key('pending'), p, JOURNAL_TTL_MS);
  }
}
