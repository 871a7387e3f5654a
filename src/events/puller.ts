/**
 * The offline-events poller: every `CRM_EVENTS_POLL_S` seconds (0 = off) it asks each connection's module to
 * pull what its CRM queued while nobody listened (events-contract.ts `pull`; Bitrix24 offline events), and
 * appends what comes back to the event log. It names no CRM: a module without `pull`, or a connection with
 * nothing bound, answers 0 without a request. It runs over stdio and HTTP alike (offline events need no public
 * address).
 *
 * - One instance at a time per connection: the pull runs under a store lock (shared through Redis when the
 *   store is Redis), so two servers on one store never read one queue at once; a busy lock skips the round.
 * - Bounded: each pull has a deadline (its requests are aborted), and rounds never overlap.
 * - It never crashes the server: a failed pull is logged (message only, redacted by the logger) and retried
 *   on the next round; the batch it reserved stays reserved and is read again then.
 */
import type { Logger } from 'pino';
import type { CrmEvent } from '../domain/events.js';
import { Grant } from '../policy/policy.js';
import type { Store } from '../store/store.js';
import { redact } from '../util/redact.js';
import type { EventLog } from './log.js';

/** A provider as the poller sees it (its connection and kind). */
export interface PullTarget {
  readonly connection: string;
  readonly kind: string;
}

/** The pull of a provider's module, if it has one. */
export type PullFn = (target: PullTarget, ctx: { grant: Grant; signal?: AbortSignal }, store: (events: CrmEvent[]) => Promise<void>) => Promise<number>;

export interface PullerOptions {
  targets: readonly PullTarget[];
  /** The module's pull for a target; undefined when its CRM has none. */
  pullOf: (target: PullTarget) => PullFn | undefined;
  log: EventLog;
  store: Store;
  /** Seconds between rounds; 0 turns the poller off. */
  intervalSec: number;
  logger?: Logger;
  /** One pull's deadline (ms); default 60 s. */
  timeoutMs?: number;
}

export const DEFAULT_PULL_TIMEOUT_MS = 60_000;

export interface Puller {
  /** Runs one round now (tests; the timer calls it too). Resolves with the events stored in this round. */
  tick(): Promise<number>;
  stop(): Promise<void>;
}

export function startPuller(o: PullerOptions): Puller {
  const timeoutMs = o.timeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
  let running: Promise<number> | undefined;
  let stopped = false;
  const round = async (): Promise<number> => {
    let stored = 0;
    for (const t of o.targets) {
      if (stopped) break;
      const pull = o.pullOf(t);
      if (!pull) continue;
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        // The lock outlives a pull that hangs past its deadline only until its TTL: a crashed holder never wedges the others.
        await o.store.withLock(
          `events:pull:${t.kind}:${t.connection}`,
          timeoutMs + 5_000,
          async () => {
            await pull(t, { grant: Grant.readOnly(), signal }, async (events) => {
              const r = await o.log.append(events);
              stored += r.stored.length;
            });
          },
          1,
        );
      } catch (err) {
        const e = err as Error;
        if (e?.name === 'LockBusyError') continue; // another instance is pulling this connection right now
        o.logger?.warn({ connection: t.connection, err: redact(e?.message ?? String(err)) }, 'events pull failed; retrying next round');
      }
    }
    return stored;
  };
  const tick = (): Promise<number> => {
    if (running) return running;
    running = round().finally(() => {
      running = undefined;
    });
    return running;
  };
  const timer = o.intervalSec > 0 ? setInterval(() => void tick(), o.intervalSec * 1000) : undefined;
  timer?.unref();
  return {
    tick,
    stop: async () => {
      stopped = true;
      if (timer) clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
