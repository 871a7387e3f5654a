/**
 * Who hears that the change feed moved: subscribers of the `crm://…/changes` resources. An append to the event
 * log (log.ts) tells only the process that made it (`onAppend`), but a receiver on one instance must wake a
 * subscriber connected to another, so the notifier carries the news between processes too:
 *
 * - `CRM_MCP_STORE=redis://…`: every instance publishes the resource URIs of what it appended on a Redis
 *   pub/sub channel beside the stream, and listens on it with a connection of its own. Pub/sub, not the stream's
 *   consumer group: a group hands each event to one instance, and here every instance must hear every event.
 *   A message lost while an instance was disconnected costs a notification, never an event (the feed reads the
 *   stream itself).
 * - a file log shared by several processes (one data directory): the notifier looks at the log for what other
 *   processes appended, every `pollMs`, only while someone listens.
 * - memory: appends in this process only.
 *
 * The notifier also serves as the SDK's `ServerEventBus` (createMcpHandler's `bus`), the seam its
 * `subscriptions/listen` streams (2026-07-28) subscribe to; stdio servers subscribe to it directly (server.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ServerEvent, ServerEventBus } from '@modelcontextprotocol/server';
import type { StoredEvent } from '../domain/events.js';
import type { RedisClient } from '../store/store.js';
import { changeUris } from './feed.js';
import type { EventLog } from './log.js';

export type ChangeListener = (uris: readonly string[]) => void;

export interface NotifierOptions {
  /** The store's Redis client: the notifier publishes with it and listens on a duplicate. */
  redis?: RedisClient;
  /** Namespaces the channel like the log's keys (redis-log.ts `prefix`). */
  prefix?: string;
  /** For a file log shared between processes: how often to look for their appends while someone listens (0 = never). */
  pollMs?: number;
  onError?: (err: Error) => void;
}

/** At most this many URIs per message: a burst beyond it is announced as the connections' feeds only. */
const MAX_URIS = 200;

/** The distinct resource URIs a batch of events changes. */
export function urisOf(events: readonly Pick<StoredEvent, 'connection' | 'entity' | 'entity_id'>[]): string[] {
  const all = new Set<string>();
  for (const e of events) for (const u of changeUris(e)) all.add(u);
  if (all.size <= MAX_URIS) return [...all];
  return [...new Set(events.map((e) => changeUris(e)[0]!))];
}

export class ChangeNotifier {
  private readonly listeners = new Set<ChangeListener>();
  private readonly instance = randomUUID();
  private readonly channel: string;
  private sub?: RedisClient;
  private offAppend?: () => void;
  private timer?: NodeJS.Timeout;
  /** The log position the poll has looked at, and the events this process announced itself (not to announce twice). */
  private polled?: string | null;
  private readonly ownSeqs = new Set<string>();
  private closed = false;

  constructor(
    private readonly log: EventLog,
    private readonly o: NotifierOptions = {},
  ) {
    this.channel = `${o.prefix ?? 'crm-mcp'}:events:changed`;
  }

  /** Starts listening: to this process's appends, and (Redis) to the other instances'. */
  async start(): Promise<this> {
    this.offAppend = this.log.onAppend((events) => this.appended(events));
    if (this.o.redis) {
      const sub = this.o.redis.duplicate();
      sub.on('error', (err: Error) => this.o.onError?.(err));
      await sub.connect();
      await sub.subscribe(this.channel, (message: string) => this.received(message));
      this.sub = sub as RedisClient;
    }
    return this;
  }

  private appended(events: readonly StoredEvent[]): void {
    const uris = urisOf(events);
    if (!uris.length) return;
    if (this.timer) for (const e of events) this.ownSeqs.add(e.seq);
    this.emit(uris);
    this.publishRemote(uris);
  }

  private publishRemote(uris: readonly string[]): void {
    if (!this.o.redis || this.closed) return;
    this.o.redis.publish(this.channel, JSON.stringify({ from: this.instance, uris })).catch((err: Error) => this.o.onError?.(err));
  }

  private received(message: string): void {
    try {
      const m = JSON.parse(message) as { from?: unknown; uris?: unknown };
      if (m.from === this.instance || !Array.isArray(m.uris)) return;
      const uris = m.uris.filter((u): u is string => typeof u === 'string' && u.startsWith('crm://')).slice(0, MAX_URIS);
      if (uris.length) this.emit(uris);
    } catch {
      // a foreign message on the channel is ignored
    }
  }

  private emit(uris: readonly string[]): void {
    for (const l of [...this.listeners]) {
      try {
        l(uris);
      } catch (err) {
        this.o.onError?.(err as Error);
      }
    }
  }

  /** Calls `listener` with the URIs of every change from now on; returns the unsubscribe. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    this.startPolling();
    return () => {
      this.listeners.delete(listener);
      if (!this.listeners.size) this.stopPolling();
    };
  }

  private startPolling(): void {
    if (this.timer || !this.o.pollMs || this.closed) return;
    this.polled = undefined;
    const tick = async () => {
      try {
        // The first look only finds where the log ends; after that, what others appended since.
        for (let i = 0; i < 20; i++) {
          const page = await this.log.read({ after: this.polled ?? undefined, limit: 500 });
          const theirs = this.polled === undefined ? [] : page.events.filter((e) => !this.ownSeqs.delete(e.seq));
          this.polled = page.cursor;
          const uris = urisOf(theirs);
          if (uris.length) this.emit(uris);
          if (!page.has_more) break;
        }
        if (this.ownSeqs.size > 10_000) this.ownSeqs.clear();
      } catch (err) {
        this.o.onError?.(err as Error);
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), this.o.pollMs);
    this.timer.unref();
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.ownSeqs.clear();
  }

  /** The SDK's change-event seam over this notifier (resource updates only; the lists never change at run time). */
  bus(): ServerEventBus {
    return {
      publish: (event: ServerEvent) => {
        if (event.kind !== 'resource_updated') return;
        this.emit([event.uri]);
        this.publishRemote([event.uri]);
      },
      subscribe: (listener: (event: ServerEvent) => void) =>
        this.subscribe((uris) => {
          for (const uri of uris) listener({ kind: 'resource_updated', uri });
        }),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.offAppend?.();
    this.stopPolling();
    this.listeners.clear();
    const sub = this.sub;
    this.sub = undefined;
    if (sub) {
      await sub.unsubscribe(this.channel).catch(() => undefined);
      await sub.close().catch(() => undefined);
    }
  }
}
