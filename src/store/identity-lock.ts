/**
 * One dedupe-then-create at a time per person. A create looks the person up, then creates: two callers with the
 * same phone or email in between both find nothing and both create. Holding a lock on every normalised key of
 * the person (E.164 phone, lower-cased email) from before the lookup until the create is confirmed makes the
 * second caller find the first one's record.
 *
 * - In this process: a keyed lock with a bounded wait (every caller of one process queues here first, so the
 *   store's own per-process chain never has more than one waiter for a key).
 * - Across processes: the store's lock on the same names (Redis SET NX PX with a token and compare-and-delete;
 *   the file store's lock file, taken over when its holder's pid is gone or it is older than the TTL). The
 *   memory store's lock is in-process only, which is all it can share anyway. The holder renews its store locks
 *   every TTL/3 while it works (a slow CRM, a bulk import batch), so only a crashed holder's lock expires; a
 *   renewal that finds the lock taken logs a warning, and the create's look-before-retry is what is left.
 * - Keys are sorted, so two callers needing overlapping keys take them in one order and never deadlock; names
 *   are namespaced by the account (two accounts never block each other) and hashed (no email or phone in Redis
 *   key names or lock file names).
 * - The wait is bounded: a caller that could not get the lock gets a retryable `rate_limited` error having sent
 *   nothing, like a CRM's 429 (try again shortly, the retry will find the record); `upstream` would blame the
 *   CRM, which was never asked. A crashed holder's lock expires after the TTL.
 */
import { createHash } from 'node:crypto';
import { CrmError } from '../domain/errors.js';
import { LockBusyError, type Store } from './store.js';

export interface IdentityLockTimes {
  /** How long a caller waits for the lock before the retryable error. */
  waitMs: number;
  /**
   * How long a lock outlives a holder that crashed (Redis PX; the file lock's stale age). A live holder renews
   * it every ttlMs/3 for as long as it works, so this bounds a crash, not the work.
   */
  ttlMs: number;
}

export const IDENTITY_LOCK_TIMES: IdentityLockTimes = { waitMs: 15_000, ttlMs: 30_000 };

/** Runs `fn` holding every key (already normalised) of one person in one account. */
export type PersonLock = <T>(keys: readonly string[], fn: () => Promise<T>) => Promise<T>;

/** The lock keys of a person: the E.164 phone and the lower-cased email (empty: nothing to check by). */
export function personKeys(p: { e164?: string; email?: string }): string[] {
  const keys: string[] = [];
  if (p.e164) keys.push(`phone:${p.e164}`);
  const email = p.email?.trim().toLowerCase();
  if (email) keys.push(`email:${email}`);
  return keys;
}

class BusyHere extends Error {}

/** In-process keyed lock: FIFO waiters per key, each with its own deadline. */
class KeyedLock {
  private readonly queues = new Map<string, Array<() => void>>();

  acquire(key: string, deadline: number): Promise<() => void> {
    const release = () => this.release(key);
    const q = this.queues.get(key);
    if (!q) {
      this.queues.set(key, []);
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve(release);
      };
      const timer = setTimeout(
        () => {
          const i = q.indexOf(grant);
          if (i >= 0) q.splice(i, 1);
          reject(new BusyHere());
        },
        Math.max(0, deadline - Date.now()),
      );
      q.push(grant);
    });
  }

  private release(key: string): void {
    const q = this.queues.get(key);
    const next = q?.shift();
    if (next) next();
    else this.queues.delete(key);
  }
}

/** Shared by every server of this process (the HTTP service makes one per policy scope). */
const here = new KeyedLock();

function busy(cause?: unknown): CrmError {
  return new CrmError({
    code: 'rate_limited',
    retryable: true,
    message:
      'Another call is creating a record with the same phone or email right now; nothing was sent. Retry in a few seconds: the retry finds the record that call made instead of creating a duplicate.',
    cause,
  });
}

export class IdentityLocks {
  /**
   * `store`: the store whose lock reaches the other processes (none: this process only). `accountOf` names the
   * account of a connection (kind and address), so connections to one account share locks across processes.
   */
  constructor(
    private readonly store?: Store,
    private readonly times: IdentityLockTimes = IDENTITY_LOCK_TIMES,
    private readonly accountOf?: (connection: string) => string | undefined,
  ) {}

  /** The lock for one connection's people. */
  for(provider: { kind: string; connection: string }): PersonLock {
    const scope = this.accountOf?.(provider.connection) ?? `${provider.kind}:${provider.connection}`;
    return (keys, fn) => this.run(scope, keys, fn);
  }

  async run<T>(scope: string, keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const names = [...new Set(keys.map((k) => `identity:${createHash('sha256').update(`${scope}\n${k}`).digest('hex').slice(0, 32)}`))].sort();
    if (!names.length) return fn();
    const deadline = Date.now() + this.times.waitMs;
    const releases: Array<() => void> = [];
    let entered = false;
    const inner = async (i: number): Promise<T> => {
      if (i === names.length) {
        entered = true;
        return fn();
      }
      if (!this.store) return inner(i + 1);
      return this.store.withLock(names[i]!, this.times.ttlMs, () => inner(i + 1), Math.max(1, deadline - Date.now()), { renew: true });
    };
    try {
      for (const n of names) releases.push(await here.acquire(n, deadline));
      return await inner(0);
    } catch (e) {
      // A busy lock inside `fn` (a token refresh lock) is that call's own error, not this one.
      if (!entered && (e instanceof BusyHere || e instanceof LockBusyError)) throw busy(e instanceof LockBusyError ? e : undefined);
      throw e;
    } finally {
      for (const r of releases.reverse()) r();
    }
  }
}

/** This process only: servers built without a store (tests, embedders). */
export const processIdentityLocks = new IdentityLocks();
