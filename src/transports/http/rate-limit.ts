/**
 * Inbound rate limiting of the HTTP service: a token bucket per client for `tools/call` (the method that
 * spends the CRMs' own request budgets; lists and discovery are cheap and cacheable). Off unless configured
 * (CRM_MCP_HTTP_RATE_LIMIT): the outgoing limiter already keeps every CRM within its published limits, so
 * this is for an operator sharing one deployment among several agents who wants one of them not to starve
 * the rest. It is per instance, like the stateless service: N replicas behind a balancer allow N times the
 * rate (each replica still holds no state a request depends on).
 */

import type { RateLimitOptions } from '../../config/rate-limit-setting.js';

export type { RateLimitOptions } from '../../config/rate-limit-setting.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept; past this, full (idle) ones are dropped first, then the oldest. */
const MAX_BUCKETS = 10_000;

export type Take = { ok: true } | { ok: false; retryAfterSec: number };

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly now: () => number;

  constructor(o: RateLimitOptions) {
    if (!(o.perMinute > 0)) throw new RangeError('perMinute must be positive');
    this.perMs = o.perMinute / 60_000;
    this.burst = Math.max(1, Math.floor(o.burst ?? o.perMinute / 10));
    this.now = o.now ?? Date.now;
  }

  /** Takes one token from `key`'s bucket, or says how long until one is there. */
  take(key: string): Take {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    // Re-inserting keeps the map in least-recently-used order for the eviction below.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size > MAX_BUCKETS) this.evict(now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)) };
  }

  private evict(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(k);
    }
    for (const k of this.buckets.keys()) {
      if (this.buckets.size <= MAX_BUCKETS) break;
      this.buckets.delete(k);
    }
  }
}
