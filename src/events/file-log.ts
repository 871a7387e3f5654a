/**
 * The embedded event log (log.ts): JSON lines in `events.jsonl` beside the file store, or in memory. Each line is
 * one stored event with its sequence number. Appends hold a lock file (every process sharing the data directory
 * appends through it), catch up on what other processes appended, drop events whose id is already held, write
 * the new lines and flush them to disk before resolving. A line torn by a crash mid-write was never acknowledged:
 * the next append cuts it off. When the file holds twice the retention it is rewritten with the newest events
 * (a new file renamed over the old one), and every process notices the new file and reloads it.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CrmEvent, StoredEvent } from '../domain/events.js';
import { withFileLock } from '../store/file-lock.js';
import { DEFAULT_RETENTION, Listeners, matches, type AppendResult, type EventLog, type EventPage, type EventQuery } from './log.js';

const LOCK = { staleMs: 15_000, timeoutMs: 15_000, what: 'the event log' };

function parseLine(line: string): StoredEvent | undefined {
  try {
    const e = JSON.parse(line) as Partial<StoredEvent>;
    if (typeof e.id === 'string' && typeof e.seq === 'string' && typeof e.entity === 'string') return e as StoredEvent;
  } catch {
    // a line that is not JSON is skipped: the log never fails a reader for one bad line
  }
  return undefined;
}

export class FileEventLog implements EventLog {
  private events: StoredEvent[] = [];
  private ids = new Set<string>();
  private lastSeq = 0;
  /** Bytes of the file already read, up to the last complete line; and the file's identity. */
  private offset = 0;
  private ino: number | null = null;
  private linesInFile = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Listeners();
  private readonly groups = new Map<string, number>();
  private readonly groupChains = new Map<string, Promise<unknown>>();

  /** `path` null: in memory only. */
  constructor(
    private readonly path: string | null,
    private readonly retention = DEFAULT_RETENTION,
  ) {}

  get description(): string {
    return this.path ? `file ${this.path}` : 'memory';
  }

  validCursor(cursor: string): boolean {
    return /^\d{1,15}$/.test(cursor);
  }

  onAppend(listener: (events: readonly StoredEvent[]) => void): () => void {
    return this.listeners.add(listener);
  }

  /** One operation at a time in this process (the in-memory view is shared by appends and reads). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.path ? withFileLock(`${this.path}${name}.lock`, LOCK, fn) : fn();
  }

  private reset(): void {
    this.events = [];
    this.ids = new Set();
    this.offset = 0;
    this.linesInFile = 0;
  }

  private keep(e: StoredEvent): void {
    this.events.push(e);
    this.ids.add(e.id);
    const seq = Number(e.seq);
    if (seq > this.lastSeq) this.lastSeq = seq;
  }

  private trim(): void {
    const over = this.events.length - this.retention;
    if (over <= 0) return;
    for (const e of this.events.splice(0, over)) this.ids.delete(e.id);
  }

  /** Reads what was appended since the last look (by any process); reloads a rewritten file. */
  private async catchUp(): Promise<void> {
    if (!this.path) return;
    let st;
    try {
      st = await stat(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    if (this.ino !== st.ino || st.size < this.offset) {
      this.reset();
      this.ino = st.ino;
    }
    if (st.size === this.offset) return;
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(st.size - this.offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
      const end = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (end < 0) return;
      for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
        this.linesInFile++;
        const e = line ? parseLine(line) : undefined;
        if (e) this.keep(e);
      }
      this.offset += end + 1;
    } finally {
      await fh.close();
    }
    this.trim();
  }

  append(events: readonly CrmEvent[]): Promise<AppendResult> {
    return this.serial(() =>
      this.locked('', async () => {
        await this.catchUp();
        if (this.path) {
          // A tail without its newline is a write that crashed before it was acknowledged: cut it off.
          const size = await stat(this.path).then(
            (s) => s.size,
            () => 0,
          );
          if (size > this.offset) await truncate(this.path, this.offset);
        }
        const fresh: StoredEvent[] = [];
        const seen = new Set<string>();
        let duplicates = 0;
        let seq = this.lastSeq;
        for (const e of events) {
          if (this.ids.has(e.id) || seen.has(e.id)) {
            duplicates++;
            continue;
          }
          seen.add(e.id);
          fresh.push({ ...e, seq: String(++seq) });
        }
        if (fresh.length && this.path) await this.write(fresh);
        for (const e of fresh) this.keep(e);
        this.trim();
        if (this.path && this.linesInFile > this.retention * 2) await this.compact();
        this.listeners.emit(fresh);
        return { stored: fresh, duplicates };
      }),
    );
  }

  private async write(fresh: StoredEvent[]): Promise<void> {
    const path = this.path!;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const text = fresh.map((e) => JSON.stringify(e)).join('\n') + '\n';
    const fh = await open(path, 'a', 0o600);
    try {
      await fh.write(text);
      await fh.datasync();
      const st = await fh.stat();
      this.ino = st.ino;
      this.offset = st.size;
    } finally {
      await fh.close();
    }
    this.linesInFile += fresh.length;
  }

  /** Rewrites the file with the retained events (newest `retention`). */
  private async compact(): Promise<void> {
    const path = this.path!;
    const tmp = `${path}.${process.pid}.tmp`;
    const text = this.events.map((e) => JSON.stringify(e)).join('\n') + (this.events.length ? '\n' : '');
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.write(text);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const st = await stat(path);
    this.ino = st.ino;
    this.offset = st.size;
    this.linesInFile = this.events.length;
  }

  read(q: EventQuery): Promise<EventPage> {
    return this.serial(async () => {
      await this.catchUp();
      return this.page(q);
    });
  }

  private page(q: EventQuery): EventPage {
    const after = q.after ? Number(q.after) : 0;
    let i = this.firstAfter(after);
    const out: StoredEvent[] = [];
    let last = after;
    for (; i < this.events.length && out.length < q.limit; i++) {
      const e = this.events[i]!;
      last = Number(e.seq);
      if (matches(e, q)) out.push(e);
    }
    const hasMore = i < this.events.length;
    const cursor = hasMore ? String(last) : this.lastSeq ? String(Math.max(this.lastSeq, after)) : (q.after ?? null);
    return { events: out, cursor, has_more: hasMore };
  }

  /** The index of the first event with seq > after (the events are in seq order). */
  private firstAfter(after: number): number {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (Number(this.events[mid]!.seq) <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  consume(group: string, _consumer: string, max: number, fn: (events: StoredEvent[]) => Promise<void>): Promise<number> {
    const tag = createHash('sha256').update(group).digest('hex').slice(0, 16);
    const cursorFile = this.path ? `${this.path}.group-${tag}.json` : null;
    // The group's lock is held while fn runs, so one member of the group processes a batch at a time (in this
    // process through the group's chain, across processes through its lock file).
    const prev = this.groupChains.get(tag) ?? Promise.resolve();
    const run = prev.then(() => this.consumeLocked(tag, cursorFile, max, fn));
    this.groupChains.set(
      tag,
      run.catch(() => undefined),
    );
    return run;
  }

  private consumeLocked(tag: string, cursorFile: string | null, max: number, fn: (events: StoredEvent[]) => Promise<void>): Promise<number> {
    return this.locked(`.group-${tag}`, async () => {
      const at = cursorFile ? await readCursor(cursorFile) : (this.groups.get(tag) ?? 0);
      const batch = await this.serial(async () => {
        await this.catchUp();
        return this.events.slice(this.firstAfter(at), this.firstAfter(at) + max);
      });
      if (!batch.length) return 0;
      await fn(batch);
      const next = Number(batch[batch.length - 1]!.seq);
      if (cursorFile) {
        const tmp = `${cursorFile}.${process.pid}.tmp`;
        await writeFile(tmp, JSON.stringify({ seq: next }), { mode: 0o600 });
        await rename(tmp, cursorFile);
      } else this.groups.set(tag, next);
      return batch.length;
    });
  }

  async close(): Promise<void> {
    await this.chain;
  }
}

async function readCursor(file: string): Promise<number> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as { seq?: unknown };
    return typeof v.seq === 'number' ? v.seq : 0;
  } catch {
    return 0;
  }
}
