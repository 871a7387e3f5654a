/**
 * How far a listing may read ahead on this portal, from the `time` figures the portal itself returns (§3, §5).
 * Two limits bound a batch of `*.list` pages: one request must finish within 60 s ([D-LIM] "Request Execution
 * Time Limit"), and each method has 480 s of processing per 10 minutes (`time.operating`, OPERATION_TIME_LIMIT).
 * On a large portal a `*.list` page with `UF_*` selects can take seconds, so a fixed 50-page read-ahead can be
 * cut off or spend a method's budget. The sizer keeps a batch's expected processing (pages × the recent
 * per-command processing) within a third of the request limit and within a small share of what is left of
 * the method's operating budget, and reads no further ahead than needed once half the budget is spent.
 */

export const REQUEST_LIMIT_SEC = 60;
export const OPERATING_LIMIT_SEC = 480;
/** Pages in one batch (§4.2). */
export const MAX_PAGES = 50;

export interface MethodLoad {
  /** Recent processing seconds of one call (exponentially weighted). */
  perCallSec: number;
  /** The last `time.operating` seen for the method: seconds of its budget spent in the window. */
  operating: number;
  /** Whether the portal reported `time.operating` for the method at all (cloud portals do, §3). */
  reported?: boolean;
}

/** Remembers per method what its calls cost, from `time.processing` and `time.operating`. */
export class LoadTracker {
  private readonly m = new Map<string, MethodLoad>();

  note(method: string, time: unknown): void {
    const t = time as { processing?: unknown; operating?: unknown } | undefined;
    const processing = typeof t?.processing === 'number' && Number.isFinite(t.processing) ? t.processing : undefined;
    const operating = typeof t?.operating === 'number' && Number.isFinite(t.operating) ? t.operating : undefined;
    if (processing === undefined && operating === undefined) return;
    const cur = this.m.get(method);
    const perCallSec = processing === undefined ? (cur?.perCallSec ?? 0) : cur ? Math.max(processing, cur.perCallSec * 0.5 + processing * 0.5) : processing;
    this.m.set(method, { perCallSec, operating: operating ?? cur?.operating ?? 0, reported: operating !== undefined || cur?.reported === true });
  }

  /** A request to the method was cut off after `pages` commands: they cost more than we thought. */
  timedOut(method: string, pages: number): void {
    const cur = this.m.get(method) ?? { perCallSec: 0, operating: 0 };
    this.m.set(method, { ...cur, perCallSec: Math.max(cur.perCallSec * 2, REQUEST_LIMIT_SEC / Math.max(1, pages)) });
  }

  get(method: string): MethodLoad | undefined {
    return this.m.get(method);
  }

  /** Every method seen so far, with a copy of its figures (for `doctor --deep`). */
  entries(): Array<[string, MethodLoad]> {
    return [...this.m].map(([k, v]) => [k, { ...v }]);
  }
}

/**
 * Pages one batch of `method` may carry: within a third of the request limit and an eighth of the operating
 * budget left, at least 1, at most 50. Unknown cost = the full batch (nothing suggests a slow portal yet).
 */
export function pagesPerRequest(load: MethodLoad | undefined): number {
  if (!load || load.perCallSec <= 0) return MAX_PAGES;
  const left = Math.max(0, OPERATING_LIMIT_SEC - load.operating);
  const budget = Math.min(REQUEST_LIMIT_SEC / 3, left / 8);
  return Math.max(1, Math.min(MAX_PAGES, Math.floor(budget / load.perCallSec)));
}

/**
 * Pages to read ahead once a caller is scanning: whole requests (a request carrying one page costs the portal's
 * limit as much as one carrying 50), none beyond need once half the method's budget is spent.
 */
export function readAheadPages(load: MethodLoad | undefined, needed: number): number {
  if (load && load.operating >= OPERATING_LIMIT_SEC / 2) return needed;
  const per = pagesPerRequest(load);
  return Math.max(1, Math.ceil(needed / per)) * per;
}
