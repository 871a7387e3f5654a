/**
 * Imports as jobs: the tool starts one and answers within seconds with its id and the progress so far; the
 * rest runs in the background of this server process, and get_import_status reads the journal (which outlives
 * the process) plus the live progress of the jobs running here. Listeners get every progress step (MCP
 * progress notifications while a client waits, the CLI's progress bar).
 */
import { CrmError } from '../domain/errors.js';
import { LockBusyError, openStore, type Store } from '../store/store.js';
import { ImportJournal, type ImportMeta, type RowResult } from './journal.js';

export interface Progress {
  done: number;
  total: number;
}

export type ProgressListener = (p: Progress) => void;

interface Running {
  promise: Promise<void>;
  progress: Progress;
  listeners: Set<ProgressListener>;
}

export interface ImportStatus {
  id: string;
  state: ImportMeta['state'];
  /** True while this process runs it; a `running` import nobody runs was interrupted: resume it. */
  live: boolean;
  dry_run: boolean;
  total: number;
  done: number;
  counts: Record<string, number>;
  batches: number;
  error?: string;
  results: RowResult[];
  next_offset: number | null;
}

/**
 * The store lock an import is run under, so two processes (two servers on one Redis or file store, a server and
 * the CLI) never run one import at once. Renewed while held; a crashed holder's lock goes with its process
 * (file store) or after the TTL (Redis).
 */
export const IMPORT_LOCK_TTL_MS = 30_000;
/** How long a second runner waits for the lock before answering "already running". */
export const IMPORT_LOCK_WAIT_MS = 1_000;

export class ImportDesk {
  private readonly running = new Map<string, Running>();

  constructor(readonly store: Store) {}

  journal(id: string): ImportJournal {
    return new ImportJournal(this.store, id);
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /**
   * Takes the store lock of import `id` (across processes) and holds it until the returned release is called;
   * refuses, sending nothing, when another process is running the import.
   */
  async claim(id: string): Promise<() => void> {
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    let got!: () => void;
    const taken = new Promise<void>((r) => (got = r));
    const held = this.store.withLock(
      `import:${id}`,
      IMPORT_LOCK_TTL_MS,
      async () => {
        got();
        await done;
      },
      IMPORT_LOCK_WAIT_MS,
      { renew: true },
    );
    held.catch(() => undefined);
    try {
      await Promise.race([taken, held]);
    } catch (e) {
      if (!(e instanceof LockBusyError)) throw e;
      throw new CrmError({
        code: 'validation',
        message: `Import ${id} is already running in another crm-mcp process; nothing was sent. Follow it with get_import_status there; if that process stopped, resume it in ${IMPORT_LOCK_TTL_MS / 1000} s.`,
        cause: e,
      });
    }
    return release;
  }

  /** Starts `work` as the job `id` (one at a time per id in this process). */
  start(id: string, total: number, work: (progress: ProgressListener) => Promise<void>): Promise<void> {
    const listeners = new Set<ProgressListener>();
    const job: Running = { promise: Promise.resolve(), progress: { done: 0, total }, listeners };
    const report: ProgressListener = (p) => {
      job.progress = p;
      for (const l of listeners) l(p);
    };
    job.promise = work(report).finally(() => this.running.delete(id));
    this.running.set(id, job);
    return job.promise;
  }

  /** Follows a running job's progress; returns the unsubscribe. */
  follow(id: string, l: ProgressListener): () => void {
    const job = this.running.get(id);
    job?.listeners.add(l);
    return () => job?.listeners.delete(l);
  }

  /** Resolves when the job ends here or after `ms`, whichever is first. */
  async wait(id: string, ms: number): Promise<void> {
    const job = this.running.get(id);
    if (!job) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([job.promise.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  async status(id: string, offset = 0, limit = 100): Promise<ImportStatus | undefined> {
    const j = this.journal(id);
    const meta = await j.meta();
    if (!meta) return undefined;
    const all = Object.values(await j.results()).sort((a, b) => a.row - b.row);
    const counts: Record<string, number> = {};
    for (const r of all) counts[r.status] = (counts[r.status] ?? 0) + 1;
    const live = this.running.has(id);
    const page = all.slice(offset, offset + limit);
    return {
      id,
      state: meta.state === 'running' && !live ? 'interrupted' : meta.state,
      live,
      dry_run: meta.options.dry_run,
      total: meta.total,
      done: all.length,
      counts,
      batches: meta.batches,
      ...(meta.error ? { error: meta.error } : {}),
      results: page,
      next_offset: offset + page.length < all.length ? offset + page.length : null,
    };
  }
}

let fallback: Promise<ImportDesk> | undefined;

/** Servers built without a desk (tests, embedders): one in memory for this process. */
export function processImportDesk(): Promise<ImportDesk> {
  fallback ??= openStore('memory').then((s) => new ImportDesk(s));
  return fallback;
}
