/**
 * Kommo's request limits (fact sheet §3): 7 requests/s per integration (here: per token) and 50 requests/s
 * per account, over a sliding one-second window; excess → 429; repeated violations → the account is blocked
 * (403 on every request) until support lifts it (`unblock()`).
 */

export interface RateLimitOptions {
  perTokenPerSecond?: number;
  perAccountPerSecond?: number;
  /** 429s within 60 s that trigger the block (default 10). */
  blockAfterViolations?: number;
}

export type LimitVerdict = 'ok' | 'rate_limited';

const WINDOW_MS = 1000;
const VIOLATION_WINDOW_MS = 60_000;

export class KommoRateLimiter {
  blocked = false;
  rateLimited = 0;
  private readonly perToken: number;
  private readonly perAccount: number;
  private readonly blockAfter: number;
  private readonly byToken = new Map<string, number[]>();
  private readonly account: number[] = [];
  private readonly violations: number[] = [];

  constructor(
    private readonly enabled: boolean,
    o: RateLimitOptions = {},
    private readonly clock: () => number = Date.now,
  ) {
    this.perToken = o.perTokenPerSecond ?? 7;
    this.perAccount = o.perAccountPerSecond ?? 50;
    this.blockAfter = o.blockAfterViolations ?? 10;
  }

  /**
   * Counts one API request for `token`. Only accepted requests occupy the window, so a client that backs
   * off after a 429 gets through again a second later.
   */
  check(token: string): LimitVerdict {
    if (!this.enabled) return 'ok';
    const t = this.clock();
    const mine = this.byToken.get(token) ?? [];
    this.byToken.set(token, mine);
    prune(mine, t - WINDOW_MS);
    prune(this.account, t - WINDOW_MS);
    if (mine.length >= this.perToken || this.account.length >= this.perAccount) {
      this.rateLimited += 1;
      prune(this.violations, t - VIOLATION_WINDOW_MS);
      this.violations.push(t);
      if (this.violations.length >= this.blockAfter) this.blocked = true;
      return 'rate_limited';
    }
    mine.push(t);
    this.account.push(t);
    return 'ok';
  }

  unblock(): void {
    this.blocked = false;
    this.violations.length = 0;
  }
}

function prune(times: number[], olderThanOrAt: number): void {
  let i = 0;
  while (i < times.length && times[i]! <= olderThanOrAt) i++;
  if (i) times.splice(0, i);
}
