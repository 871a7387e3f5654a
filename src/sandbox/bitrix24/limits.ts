/**
 * The two portal limits (fact sheet §5): a leaky bucket per portal (standard: 50 burst, drains 2/s;
 * enterprise: 250, 5/s) refusing with 503 QUERY_LIMIT_EXCEEDED before anything runs, and a per-method
 * operating-time budget (480 s of processing per rolling 10 minutes, per app/webhook) refusing the next
 * call with 429 OPERATION_TIME_LIMIT. The sheet leaves rolling vs fixed blocking UNVERIFIED; this is rolling.
 */

export const PLANS = { standard: { capacity: 50, drainPerSec: 2 }, enterprise: { capacity: 250, drainPerSec: 5 } } as const;

export class LeakyBucket {
  private level = 0;
  private last: number;

  constructor(
    readonly capacity: number,
    readonly drainPerSec: number,
    private readonly clock: () => number,
  ) {
    this.last = clock();
  }

  /** Counts one request; false (and nothing counted) when it would overflow the bucket. */
  tryTake(): boolean {
    const now = this.clock();
    this.level = Math.max(0, this.level - ((now - this.last) / 1000) * this.drainPerSec);
    this.last = now;
    if (this.level + 1 > this.capacity) return false;
    this.level += 1;
    return true;
  }

  get current(): number {
    return this.level;
  }
}

export const OPERATING_LIMIT_SEC = 480;
export const OPERATING_WINDOW_MS = 10 * 60 * 1000;

export class OperatingBudget {
  private readonly spent = new Map<string, Array<{ at: number; cost: number }>>();

  constructor(
    private readonly clock: () => number,
    readonly limitSec = OPERATING_LIMIT_SEC,
    readonly windowMs = OPERATING_WINDOW_MS,
  ) {}

  private entries(key: string): Array<{ at: number; cost: number }> {
    const now = this.clock();
    const list = (this.spent.get(key) ?? []).filter((e) => now - e.at < this.windowMs);
    this.spent.set(key, list);
    return list;
  }

  /** Seconds of processing spent by this method (of this app/webhook) in the window: `time.operating`. */
  operating(key: string): number {
    return this.entries(key).reduce((s, e) => s + e.cost, 0);
  }

  /** When the oldest spending leaves the window: `time.operating_reset_at` (unix seconds), if any. */
  resetAt(key: string): number | undefined {
    const first = this.entries(key)[0];
    return first ? Math.ceil((first.at + this.windowMs) / 1000) : undefined;
  }

  /** The limit was exceeded: the next call is refused until enough spending leaves the window. */
  blocked(key: string): boolean {
    return this.operating(key) > this.limitSec;
  }

  add(key: string, costSec: number): void {
    this.entries(key).push({ at: this.clock(), cost: costSec });
  }
}
