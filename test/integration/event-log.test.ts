/**
 * The event log (src/events/): what is stored, once, across restarts, torn writes, several processes on one
 * data directory and several instances on one Redis. Expectations are counted by hand from the events fed in.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CrmEvent, StoredEvent } from '../../src/domain/events.js';
import { FileEventLog } from '../../src/events/file-log.js';
import type { EventLog } from '../../src/events/log.js';
import { RedisEventLog } from '../../src/events/redis-log.js';
import { openStore, type Store } from '../../src/store/store.js';
import { redisAvailable, testRedisUrl } from '../helpers/redis.js';

function ev(n: number, over: Partial<CrmEvent> = {}): CrmEvent {
  return {
    id: `ev-${n}`,
    connection: 'main',
    crm: 'kommo',
    entity: n % 3 === 0 ? 'contact' : 'lead',
    entity_id: String(1000 + (n % 7)),
    action: 'updated',
    occurred_at: new Date(Date.UTC(2026, 11, 7, 10, 0, n % 60)).toISOString(),
    received_at: new Date(Date.UTC(2026, 11, 7, 10, 1, 0)).toISOString(),
    source: 'webhook',
    by_user_id: '7',
    ...over,
  };
}

async function readAll(log: EventLog, limit = 100): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const p = await log.read({ after, limit });
    out.push(...p.events);
    after = p.cursor ?? undefined;
    if (!p.has_more) break;
  }
  return out;
}

const tmp = () => join(mkdtempSync(join(tmpdir(), 'crm-events-')), 'events.jsonl');

type Maker = () => Promise<{ open(): EventLog; done(): Promise<void> }>;

const makers: Array<[string, Maker, boolean]> = [
  [
    'file',
    async () => {
      const path = tmp();
      return { open: () => new FileEventLog(path, 5000), done: async () => undefined };
    },
    true,
  ],
];

const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
});

if (redisAvailable()) {
  makers.push([
    'redis',
    async () => {
      const r = await testRedisUrl(9);
      const prefix = `test-${randomUUID()}`;
      const opened: Store[] = [];
      return {
        open: () => {
          throw new Error('use openAsync');
        },
        openAsync: async () => {
          const s = await openStore(r.url);
          opened.push(s);
          stores.push(s);
          return new RedisEventLog(s.redis!, 5000, prefix);
        },
        done: async () => {
          await r.close();
        },
      } as never;
    },
    false,
  ]);
}

/** Opens a log instance ("a process") of the maker's backend. */
async function instance(m: { open(): EventLog; openAsync?: () => Promise<EventLog> }): Promise<EventLog> {
  return m.openAsync ? m.openAsync() : m.open();
}

describe.each(makers)('event log on %s', (_name, make) => {
  it('stores each event once: repeats within a batch and redeliveries are counted, not stored', async () => {
    const m = await make();
    const log = await instance(m);
    const a = await log.append([ev(1), ev(2), ev(1), ev(3)]);
    expect(a.stored.map((e) => e.id)).toEqual(['ev-1', 'ev-2', 'ev-3']);
    expect(a.duplicates).toBe(1);
    const b = await log.append([ev(2), ev(4)]);
    expect(b.stored.map((e) => e.id)).toEqual(['ev-4']);
    expect(b.duplicates).toBe(1);
    expect((await readAll(log)).map((e) => e.id)).toEqual(['ev-1', 'ev-2', 'ev-3', 'ev-4']);
    await m.done();
  });

  it('a storm of 1,000 events in bursts with redeliveries and a restart in the middle loses none and stores none twice', async () => {
    const m = await make();
    let log = await instance(m);
    let delivered = 0;
    for (let burst = 0; burst < 50; burst++) {
      const batch: CrmEvent[] = [];
      for (let i = 0; i < 20; i++) batch.push(ev(burst * 20 + i));
      // every third burst also redelivers the previous burst (a CRM retrying deliveries it thinks failed)
      if (burst % 3 === 2) for (let i = 0; i < 20; i++) batch.push(ev((burst - 1) * 20 + i));
      delivered += batch.length;
      await log.append(batch);
      if (burst === 25) {
        await log.close();
        log = await instance(m); // the receiver restarts: a new process reads the same log
      }
    }
    expect(delivered).toBe(1000 + 16 * 20);
    const all = await readAll(log);
    expect(all).toHaveLength(1000);
    expect(new Set(all.map((e) => e.id)).size).toBe(1000);
    // and a redelivery after the restart of an event from before it is still recognised
    expect((await log.append([ev(3)])).duplicates).toBe(1);
    await m.done();
  });

  it('pages with a cursor, filters, and a cursor from the end sees only newer events', async () => {
    const m = await make();
    const log = await instance(m);
    await log.append(Array.from({ length: 30 }, (_, i) => ev(i)));
    const p1 = await log.read({ limit: 12 });
    expect(p1.events.map((e) => e.id)).toEqual(Array.from({ length: 12 }, (_, i) => `ev-${i}`));
    expect(p1.has_more).toBe(true);
    const p2 = await log.read({ after: p1.cursor!, limit: 100 });
    expect(p2.events).toHaveLength(18);
    expect(p2.has_more).toBe(false);
    // contacts are n % 3 === 0: 0, 3, …, 27 → 10 of them
    expect((await log.read({ limit: 100, entities: ['contact'] })).events).toHaveLength(10);
    expect((await log.read({ limit: 100, entityId: '1000' })).events.map((e) => e.id)).toEqual(['ev-0', 'ev-7', 'ev-14', 'ev-21', 'ev-28']);
    const end = await log.read({ after: p2.cursor!, limit: 10 });
    expect(end.events).toEqual([]);
    await log.append([ev(100)]);
    expect((await log.read({ after: end.cursor!, limit: 10 })).events.map((e) => e.id)).toEqual(['ev-100']);
    expect(log.validCursor(end.cursor!)).toBe(true);
    expect(log.validCursor('../../etc')).toBe(false);
    await m.done();
  });

  it('two instances appending the same deliveries at once store each event once', async () => {
    const m = await make();
    const [a, b] = [await instance(m), await instance(m)];
    const batches = Array.from({ length: 10 }, (_, k) => Array.from({ length: 10 }, (_, i) => ev(k * 10 + i)));
    await Promise.all(batches.flatMap((batch) => [a.append(batch), b.append([...batch].reverse())]));
    const all = await readAll(a);
    expect(all).toHaveLength(100);
    expect(new Set(all.map((e) => e.id)).size).toBe(100);
    expect(await readAll(b)).toHaveLength(100);
    await m.done();
  });

  it('a consumer group hands each event to one member once; a failed batch is handed out again', async () => {
    const m = await make();
    const [a, b] = [await instance(m), await instance(m)];
    await a.append(Array.from({ length: 40 }, (_, i) => ev(i)));
    const seen: string[] = [];
    let failOnce = true;
    const work = (log: EventLog, name: string) => async () => {
      for (;;) {
        try {
          const n = await log.consume('notify', name, 7, async (events) => {
            if (name === 'b' && failOnce) {
              failOnce = false;
              throw new Error('crash while processing');
            }
            seen.push(...events.map((e) => e.id));
          });
          if (n === 0) return;
        } catch {
          // the failed batch stays unprocessed; on Redis it is reclaimed after the idle time by consume()
        }
      }
    };
    await Promise.all([work(a, 'a')(), work(b, 'b')()]);
    const counts = new Map<string, number>();
    for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    // the file log hands a failed batch out again at once; Redis keeps it pending until the claim idle time
    expect(counts.size).toBeGreaterThanOrEqual(33);
    await m.done();
  });
});

describe('event log file specifics', () => {
  it('a line torn by a crash mid-write is cut off by the next append, and nothing acknowledged is lost', async () => {
    const path = tmp();
    const log = new FileEventLog(path);
    await log.append([ev(1), ev(2)]);
    appendFileSync(path, '{"id":"ev-3","seq":"3","ent'); // the crash: half a line, never acknowledged
    const again = new FileEventLog(path);
    expect((await readAll(again)).map((e) => e.id)).toEqual(['ev-1', 'ev-2']);
    await again.append([ev(3)]);
    expect((await readAll(new FileEventLog(path))).map((e) => e.id)).toEqual(['ev-1', 'ev-2', 'ev-3']);
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('keeps the newest events within its retention and rewrites the file when it doubles', async () => {
    const path = tmp();
    const log = new FileEventLog(path, 10);
    for (let i = 0; i < 25; i++) await log.append([ev(i)]);
    expect((await readAll(log)).map((e) => e.id)).toEqual(Array.from({ length: 10 }, (_, i) => `ev-${15 + i}`));
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean).length).toBeLessThanOrEqual(20);
    // another process opening the rewritten file sees the same
    expect((await readAll(new FileEventLog(path, 10))).map((e) => e.id)).toEqual(Array.from({ length: 10 }, (_, i) => `ev-${15 + i}`));
  });
});
