/**
 * Rate limiters shared by every crm-mcp instance on one Redis, so the CRM's limit holds for their sum.
 *
 * - Bitrix24's leaky bucket (burst 50, 2/s; enterprise 250, 5/s) is held with rate-limiter-flexible's
 *   RateLimiterRedis. Its windows are fixed and last whole seconds (it stores `floor(ms / 1000)` as the
 *   TTL), so P points per D seconds can put 2P requests close together at a window boundary. Choosing
 *   2P ≤ burst and P/D = drain keeps the modelled bucket ≤ 2P at all times: 24 per 12 s (≤ 48 of 50) and
 *   120 per 24 s (≤ 240 of 250), at the full long-run rate.
 * - Kommo's 7 requests/s is counted over a sliding second. A fixed one-second window would have to drop
 *   to 3 per second to stay safe at its boundaries (43% of the allowed rate), so Kommo uses a sliding log
 *   in one Lua script (a sorted set scored by time, on Redis's clock), with the same rule as the
 *   in-process limiter: a request holds its slot from send until a window after its response.
 */
import { randomUUID } from 'node:crypto';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { FifoLimiter, sleep } from './limiter.js';
import { CrmError } from '../domain/errors.js';
import type { RedisClient } from '../store/store.js';

function unreachable(e: unknown): CrmError {
  return new CrmError({
    code: 'network',
    retryable: true,
    message: `The shared rate limiter (Redis) is unreachable (${(e as Error)?.message ?? e}); nothing was sent to the CRM. Calls resume when Redis is back.`,
  });
}

/** Bitrix24's leaky bucket on rate-limiter-flexible (see the module comment for the numbers). */
export class SharedBucketLimiter extends FifoLimiter {
  private readonly rl: RateLimiterRedis;
  constructor(
    redis: RedisClient,
    private readonly key: string,
    bucket: { capacity: number; drainPerSecond: number },
  ) {
    super();
    const points = Math.floor(bucket.capacity / 2) - 1;
    const duration = Math.max(1, Math.round(points / bucket.drainPerSecond));
    this.rl = new RateLimiterRedis({ storeClient: redis, useRedisPackage: true, keyPrefix: 'crm-mcp:rl', points, duration });
  }
  protected async take(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted();
      try {
        await this.rl.consume(this.key, 1);
        return () => undefined;
      } catch (res) {
        if (!(res instanceof RateLimiterRes)) throw unreachable(res);
        await sleep(res.msBeforeNext + 5, signal);
      }
    }
  }
}

const ACQUIRE = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local hold = tonumber(ARGV[3])
redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)
if redis.call('zcard', KEYS[1]) < limit then
  redis.call('zadd', KEYS[1], now + hold, ARGV[4])
  redis.call('pexpire', KEYS[1], window + hold + 1000)
  return 0
end
local first = redis.call('zrange', KEYS[1], 0, 0, 'WITHSCORES')
local score = tonumber(first[2])
if score > now then return -1 end
return score + window - now + 1
`;

const RELEASE = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('zscore', KEYS[1], ARGV[1]) then redis.call('zadd', KEYS[1], 'XX', now, ARGV[1]) end
return 1
`;

/** Kommo's sliding second across instances (see the module comment). */
export class SharedSlidingWindowLimiter extends FifoLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly limit: number,
    private readonly windowMs: number,
    /** How long an unanswered request may hold its slot (a crashed holder frees it after this). */
    private readonly maxHoldMs: number,
  ) {
    super();
  }
  protected async take(signal?: AbortSignal): Promise<() => void> {
    const id = randomUUID();
    for (;;) {
      signal?.throwIfAborted();
      let wait: number;
      try {
        wait = Number(await this.redis.eval(ACQUIRE, { keys: [this.key], arguments: [String(this.windowMs), String(this.limit), String(this.maxHoldMs), id] }));
      } catch (e) {
        throw unreachable(e);
      }
      if (wait === 0) {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          void this.redis.eval(RELEASE, { keys: [this.key], arguments: [id] }).catch(() => undefined);
        };
      }
      // -1: every slot is held by a request still in flight; poll until one is answered.
      await sleep(wait < 0 ? 20 : Math.min(wait, 1000), signal);
    }
  }
}
