/**
 * Client-side rate limiters that keep us under the CRM's limit instead of leaning on retries (Kommo blocks
 * an account that keeps earning 429s). Each limiter queues callers in FIFO order and resolves `acquire()`
 * when a request may be sent.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface RateLimiter {
  /** Resolves when a request may be sent; call the returned function when its response has arrived. */
  acquire(signal?: AbortSignal): Promise<() => void>;
  /** Requests still waiting (for metrics/tests). */
  readonly waiting: number;
}

/** Callers wait in FIFO order, one `take` at a time, whether earlier callers were admitted or aborted. */
export abstract class FifoLimiter implements RateLimiter {
  private chain: Promise<unknown> = Promise.resolve();
  private queued = 0;

  get waiting(): number {
    return this.queued;
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    this.queued += 1;
    const turn = this.chain.then(() => this.take(signal));
    this.chain = turn.catch(() => undefined);
    return turn.finally(() => {
      this.queued -= 1;
    });
  }

  /** Waits until one request may be sent; returns the function to call when its response has arrived. */
  protected abstract take(signal?: AbortSignal): Promise<() => void>;
}

/**
 * At most `limit` requests in any window of `windowMs`, as the CRM counts them on arrival. We cannot see
 * the arrival time, only that it lies between our send and our response, so a request holds its slot
 * from send until `windowMs` after its response: then no window at the CRM can hold more than `limit`,
 * however the network delays individual requests.
 */
export class SlidingWindowLimiter extends FifoLimiter {
  /** One entry per request: its response time, or Infinity while it is in flight. */
  private readonly slots: number[] = [];
  private wake: (() => void) | undefined;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  protected async take(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted();
      const t = this.now();
      for (let i = this.slots.length - 1; i >= 0; i--) if (this.slots[i]! <= t - this.windowMs) this.slots.splice(i, 1);
      if (this.slots.length < this.limit) {
        this.slots.push(Infinity);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          // In-flight slots are interchangeable: mark one of them done now.
          const i = this.slots.indexOf(Infinity);
          if (i >= 0) this.slots[i] = this.now();
          const w = this.wake;
          this.wake = undefined;
          w?.();
        };
      }
      const oldestDone = Math.min(...this.slots);
      if (Number.isFinite(oldestDone)) await sleep(oldestDone + this.windowMs - t + 1, signal);
      else
        await new Promise<void>((resolve, reject) => {
          this.wake = resolve;
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
    }
  }
}

/**
 * Mirrors a leaky bucket on the server (Bitrix24: capacity 50, draining 2 per second): a request is sent
 * only when it fits in the bucket as we model it.
 */
export class LeakyBucketLimiter extends FifoLimiter {
  private level = 0;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly drainPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.last = now();
  }

  protected async take(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted();
      const t = this.now();
      this.level = Math.max(0, this.level - ((t - this.last) / 1000) * this.drainPerSecond);
      this.last = t;
      if (this.level + 1 <= this.capacity) {
        this.level += 1;
        // The server adds a request on arrival, after our send: counting it at send time is already safe.
        return () => undefined;
      }
      await sleep(Math.ceil(((this.level + 1 - this.capacity) / this.drainPerSecond) * 1000) + 1, signal);
    }
  }
}

/** node:timers/promises' delay, rejecting with the signal's own reason (what callers map), not a generic AbortError. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
}
