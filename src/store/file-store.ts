/**
 * A durable JSON-file backend for keyv that several processes can share (a second stdio instance, or
 * `crm-mcp doctor` / `crm-mcp auth` beside a running server). keyv-file (the usual choice) rewrites its file in
 * place, so a crash mid-write loses every token, and it reads the file once, so a process keeps using a refresh
 * token another process has already spent. Here:
 *  - a read first checks whether the file changed on disk (inode, size, mtime: every write is a rename, so the
 *    inode changes) and re-reads it, so a token rotated by another process is seen;
 *  - a write is read-modify-write under a lock file (file-lock.ts): the change is applied to what is on disk
 *    now, never to a stale copy that would bring back a spent refresh token;
 *  - the new content goes to a temporary file that is fsynced and renamed over the old one (mode 0600), and
 *    `set` resolves only after a write that includes its change;
 *  - `withLock` holds a named lock across processes (the token refresh lock), as the Redis store does.
 * Keyv itself handles serialisation and TTLs.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { withFileLock } from './file-lock.js';

type Op = (data: Map<string, unknown>) => void;

/** What identifies one version of the file. */
const signature = (s: Stats) => `${s.ino}:${s.size}:${s.mtimeMs}`;

export class DurableFileStore {
  private data = new Map<string, unknown>();
  private loaded: string | undefined;
  private pending: Array<{ op: Op; done: (err?: unknown) => void }> = [];
  private flushing: Promise<void> | undefined;

  constructor(readonly filename: string) {
    mkdirSync(dirname(filename), { recursive: true, mode: 0o700 });
    try {
      const sig = signature(statSync(filename));
      this.data = parse(readFileSync(filename, 'utf8'));
      this.loaded = sig;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`CRM_MCP_STORE: cannot read ${filename}: ${(err as Error).message}`);
      }
    }
  }

  /** Re-reads the file when another process (or another store on the same file) replaced it. */
  private async reload(): Promise<void> {
    let s: Stats;
    try {
      s = await stat(this.filename);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (this.loaded !== undefined) {
        this.data = new Map();
        this.loaded = undefined;
      }
      return;
    }
    const sig = signature(s);
    if (sig === this.loaded) return;
    let text: string;
    try {
      text = await readFile(this.filename, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.reload();
      throw err;
    }
    this.data = parse(text);
    this.loaded = sig;
  }

  async get(key: string): Promise<unknown> {
    await this.reload();
    return this.data.get(key);
  }

  async set(key: string, value: unknown): Promise<boolean> {
    await this.mutate((d) => d.set(key, value));
    return true;
  }

  async delete(key: string): Promise<boolean> {
    await this.reload();
    if (!this.data.has(key)) return false;
    await this.mutate((d) => d.delete(key));
    return true;
  }

  async clear(): Promise<void> {
    await this.mutate((d) => d.clear());
  }

  async has(key: string): Promise<boolean> {
    await this.reload();
    return this.data.has(key);
  }

  keys(): IterableIterator<string> {
    return this.data.keys();
  }

  /**
   * Runs `fn` holding the lock `name` across every process using this file (the caller chains callers of one
   * process first). A holder that crashed or overran `ttlMs` loses the lock; waiting ends after `waitMs`
   * (default 2 × ttlMs).
   */
  async withLock<T>(name: string, ttlMs: number, fn: () => Promise<T>, waitMs?: number, options?: { renew?: boolean }): Promise<T> {
    const path = `${this.filename}.${createHash('sha256').update(name).digest('hex').slice(0, 16)}.lock`;
    const what = `${name} (another crm-mcp process using ${this.filename})`;
    return withFileLock(path, { staleMs: ttlMs, timeoutMs: waitMs ?? ttlMs * 2, what, renew: options?.renew }, fn);
  }

  /** Queues a change; changes queued together are written in one locked read-modify-write. */
  private mutate(op: Op): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ op, done: (err) => (err ? reject(err) : resolve()) });
      this.flushing ??= this.flushLoop().finally(() => {
        this.flushing = undefined;
      });
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending;
      this.pending = [];
      try {
        await withFileLock(`${this.filename}.lock`, { staleMs: 10_000, timeoutMs: 20_000, what: this.filename }, async () => {
          await this.reload();
          for (const { op } of batch) op(this.data);
          await this.writeAtomically(JSON.stringify({ entries: [...this.data.entries()] }));
        });
        for (const { done } of batch) done();
      } catch (err) {
        for (const { done } of batch) done(err);
      }
    }
  }

  private async writeAtomically(text: string): Promise<void> {
    const tmp = `${this.filename}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.filename);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    // What we just wrote is what we hold: no need to read it back.
    this.loaded = signature(await stat(this.filename));
  }
}

function parse(text: string): Map<string, unknown> {
  const parsed = JSON.parse(text) as { entries?: Array<[string, unknown]> };
  return new Map(parsed.entries ?? []);
}
