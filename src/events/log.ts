/**
 * The event log: every CRM event a receiver accepts is appended here **before** the receiver answers 2xx, once
 * (a redelivery with the same event id is counted, not stored again), and read back by the change feed, the
 * resources and, later, a local mirror. It sits beside the store and follows it:
 *
 * - one machine (the default file store): an append-only JSON-lines file next to `store.json`, written under a
 *   cross-process lock file and flushed to disk before `append` resolves, so several processes sharing the data
 *   directory share one log;
 * - `memory`: the same log without the file (tests, the sandbox);
 * - `CRM_MCP_STORE=redis://…`: a Redis Stream shared by every instance (redis-log.ts), deduplicated by an
 *   atomic script, consumed through a consumer group so each event is processed once however many instances run.
 *
 * Retention is bounded by count (`CRM_EVENTS_RETENTION`): the oldest events go first.
 */
import type { CrmEvent, EventAction, EventEntity, StoredEvent } from '../domain/events.js';

export interface EventQuery {
  /** A cursor from an earlier read: only events after it. */
  after?: string;
  /** Only events that happened at or after this time (ISO). */
  since?: string;
  connection?: string;
  entities?: readonly EventEntity[];
  actions?: readonly EventAction[];
  /** One record's events. */
  entityId?: string;
  limit: number;
}

export interface EventPage {
  events: StoredEvent[];
  /** Where the next read continues (past every event this read looked at, matched or not). */
  cursor: string | null;
  /** True when events after the cursor were not looked at because the page was full. */
  has_more: boolean;
}

export interface AppendResult {
  stored: StoredEvent[];
  /** Events whose id the log already holds (a redelivery), not stored again. */
  duplicates: number;
}

export interface EventLog {
  /** Resolves only when the new events are durable (on disk, or acknowledged by Redis). */
  append(events: readonly CrmEvent[]): Promise<AppendResult>;
  read(q: EventQuery): Promise<EventPage>;
  /**
   * Runs `fn` on events no member of `group` has processed yet, at most `max` of them, and marks them processed
   * when it returns; when it throws they are handed out again (to this or another member). Returns how many.
   */
  consume(group: string, consumer: string, max: number, fn: (events: StoredEvent[]) => Promise<void>): Promise<number>;
  /** Whether a cursor came from this kind of log (a cursor from another store is refused, not misread). */
  validCursor(cursor: string): boolean;
  /** Called after this process appended events (in-process only; other instances see them on their next read). */
  onAppend(listener: (events: readonly StoredEvent[]) => void): () => void;
  close(): Promise<void>;
  readonly description: string;
}

export const DEFAULT_RETENTION = 10_000;

/** Whether an event passes a query's filters (the cursor is the caller's business). */
export function matches(e: StoredEvent, q: EventQuery): boolean {
  if (q.connection && e.connection !== q.connection) return false;
  if (q.entities?.length && !q.entities.includes(e.entity)) return false;
  if (q.actions?.length && !q.actions.includes(e.action)) return false;
  if (q.entityId !== undefined && e.entity_id !== q.entityId) return false;
  if (q.since && (e.occurred_at ?? e.received_at) < q.since) return false;
  return true;
}

/** In-process listeners of a log's appends. */
export class Listeners {
  private readonly set = new Set<(events: readonly StoredEvent[]) => void>();
  add(l: (events: readonly StoredEvent[]) => void): () => void {
    this.set.add(l);
    return () => this.set.delete(l);
  }
  emit(events: readonly StoredEvent[]): void {
    if (!events.length) return;
    for (const l of this.set) {
      try {
        l(events);
      } catch {
        // a listener's failure is its own; the events are stored
      }
    }
  }
}
