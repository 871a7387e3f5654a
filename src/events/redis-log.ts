/**
 * The shared event log (log.ts) on a Redis Stream, for several instances on one `CRM_MCP_STORE=redis://…`.
 * An append is one script per event: it claims the event's id (SET NX PX, kept as long as the retention window
 * is likely to hold the event) and adds the event to the stream only when the claim is new, atomically, so a
 * redelivery that reaches two instances at once is stored once, and no crash can leave a claimed id without
 * its event. The stream is trimmed to about the retention count. The change feed reads it with XRANGE from a
 * cursor (a stream id); processing goes through a consumer group (XREADGROUP, XACK), so each event is handled
 * by one instance, and a batch left unacknowledged by a crashed instance is claimed by another after a while.
 */
import type { CrmEvent, StoredEvent } from '../domain/events.js';
import type { RedisClient } from '../store/store.js';
import { DEFAULT_RETENTION, Listeners, matches, type AppendResult, type EventLog, type EventPage, type EventQuery } from './log.js';

/** How long a stored event's id blocks a redelivery. */
const ID_TTL_MS = 7 * 24 * 3600_000;
/** A batch a consumer took and did not acknowledge for this long is handed to another. */
const CLAIM_IDLE_MS = 30_000;

const APPEND = `
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3])
end
return false`;

type Entry = [string, string[]];

function decode(entries: unknown): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const [id, fields] of (Array.isArray(entries) ? entries : []) as Entry[]) {
    const i = fields.indexOf('e');
    if (i < 0) continue;
    try {
      out.push({ ...(JSON.parse(fields[i + 1]!) as CrmEvent), seq: id });
    } catch {
      // a foreign or damaged entry is skipped, never fatal to the reader
    }
  }
  return out;
}

export class RedisEventLog implements EventLog {
  private readonly listeners = new Listeners();
  private readonly groups = new Set<string>();

  private readonly stream: string;
  private readonly idKey: string;
  readonly description: string;

  /** `prefix` namespaces the keys (tests give each run its own). */
  constructor(
    private readonly redis: RedisClient,
    private readonly retention = DEFAULT_RETENTION,
    prefix = 'crm-mcp',
  ) {
    this.stream = `${prefix}:events`;
    this.idKey = `${prefix}:event-id:`;
    this.description = `redis stream ${this.stream}`;
  }

  validCursor(cursor: string): boolean {
    return /^\d{1,15}-\d{1,10}$/.test(cursor);
  }

  onAppend(listener: (events: readonly StoredEvent[]) => void): () => void {
    return this.listeners.add(listener);
  }

  async append(events: readonly CrmEvent[]): Promise<AppendResult> {
    const stored: StoredEvent[] = [];
    let duplicates = 0;
    for (const e of events) {
      const id = await this.redis.eval(APPEND, {
        keys: [this.stream, this.idKey + e.id],
        arguments: [String(ID_TTL_MS), String(this.retention), JSON.stringify(e)],
      });
      if (typeof id === 'string') stored.push({ ...e, seq: id });
      else duplicates++;
    }
    this.listeners.emit(stored);
    return { stored, duplicates };
  }

  async read(q: EventQuery): Promise<EventPage> {
    const out: StoredEvent[] = [];
    let from = q.after ? `(${q.after}` : '-';
    let last: string | null = q.after ?? null;
    // Filtered reads scan the stream in chunks until the page is full or the stream ends.
    for (;;) {
      const chunk = decode(await this.redis.sendCommand(['XRANGE', this.stream, from, '+', 'COUNT', String(Math.max(q.limit, 100))]));
      for (const e of chunk) {
        if (out.length >= q.limit) return { events: out, cursor: last, has_more: true };
        last = e.seq;
        if (matches(e, q)) out.push(e);
      }
      if (chunk.length < Math.max(q.limit, 100)) break;
      from = `(${last}`;
    }
    if (!last) {
      // An empty stream or nothing after the cursor: the cursor is the newest entry, so the next read sees only new events.
      const top = decode(await this.redis.sendCommand(['XREVRANGE', this.stream, '+', '-', 'COUNT', '1']));
      last = top[0]?.seq ?? null;
    }
    return { events: out, cursor: last, has_more: false };
  }

  private async ensureGroup(group: string): Promise<void> {
    if (this.groups.has(group)) return;
    try {
      await this.redis.sendCommand(['XGROUP', 'CREATE', this.stream, group, '0', 'MKSTREAM']);
    } catch (e) {
      if (!String((e as Error)?.message).includes('BUSYGROUP')) throw e;
    }
    this.groups.add(group);
  }

  async consume(group: string, consumer: string, max: number, fn: (events: StoredEvent[]) => Promise<void>): Promise<number> {
    await this.ensureGroup(group);
    // First what a crashed member left unacknowledged, then new entries.
    const claimed = (await this.redis.sendCommand([
      'XAUTOCLAIM',
      this.stream,
      group,
      consumer,
      String(CLAIM_IDLE_MS),
      '0-0',
      'COUNT',
      String(max),
    ])) as unknown[];
    let batch = decode(claimed?.[1]);
    if (!batch.length) {
      const reply = (await this.redis.sendCommand(['XREADGROUP', 'GROUP', group, consumer, 'COUNT', String(max), 'STREAMS', this.stream, '>'])) as Array<
        [string, unknown]
      > | null;
      batch = decode(reply?.[0]?.[1]);
    }
    if (!batch.length) return 0;
    await fn(batch);
    await this.redis.sendCommand(['XACK', this.stream, group, ...batch.map((e) => e.seq)]);
    return batch.length;
  }

  async close(): Promise<void> {
    // The Redis client belongs to the store, which closes it.
  }
}
