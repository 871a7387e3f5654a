/**
 * Client-side rate limiters that keep us under the CRM's limit instead of leaning on retries (Kommo blocks
 * an account that keeps earning 429s). Each limiter queues callers in FIFO order and resolves `acquire()`
 * when a request may be sent.
 */
export interface RateLimiter {
  acquire(signal?: AbortSignal): Promise<void>;
  /** Requests still waiting (for metrics/tests). */
  readonly waiting: number;
}

/**
 * At most `limit` sends in any window of `windowMs` (a sliding log). A small margin absorbs network
 * jitter between our send time and the CRM's arrival time.
 */
export class SlidingWindowLimiter implements RateLimiter {
  private readonly sent: number[] = [];
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get waiting(): number {
    return this.queued;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    this.queued += 1;
    const turn = this.chain.then(() => this.waitForSlot(signal));
    // The chain continues whether this caller succeeded or was aborted.
    this.chain = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn.finally(() => {
      this.queued -= 1;
    });
  }

  private async waitForSlot(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const t = this.now();
      while (this.sent.length > 0 && this.sent[0]! <= t - this.windowMs) this.sent.shift();
      if (this.sent.length < this.limit) {
        this.sent.push(t);
        return;
      }
      await sleep(this.sent[0]! + this.windowMs - t + 1, signal);
    }
  }
}

/**
 * Mirrors a leaky bucket on the server (Bitrix24: capacity 50, draining 2 per second): a request is sent
 * only when it fits in the bucket as we model it.
 */
export class LeakyBucketLimiter implements RateLimiter {
  private level = 0;
  private last: number;
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly capacity: number,
    private readonly drainPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.last = now();
  }

  get waiting(): number {
    return this.queued;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    this.queued += 1;
    const turn = this.chain.then(() => this.waitForRoom(signal));
    this.chain = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn.finally(() => {
      this.queued -= 1;
    });
  }

  private async waitForRoom(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const t = this.now();
      this.level = Math.max(0, this.level - ((t - this.last) / 1000) * this.drainPerSecond);
      this.last = t;
      if (this.level + 1 <= this.capacity) {
        this.level += 1;
        return;
      }
      await sleep(Math.ceil(((this.level + 1 - this.capacity) / this.drainPerSecond) * 1000) + 1, signal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
