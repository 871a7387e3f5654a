/**
 * A durable JSON-file backend for keyv. keyv-file (the usual choice) rewrites its file in place, so a crash
 * mid-write loses every token, and its `set` can resolve before a concurrent change reaches the disk. A
 * rotated OAuth refresh token must be on disk before it is used, so here every change is written to a
 * temporary file that is fsynced and renamed over the old one (mode 0600), and `set` resolves only after a
 * write that includes its change. Keyv itself handles serialisation and TTLs.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export class DurableFileStore {
  private readonly data = new Map<string, unknown>();
  private dirty = false;
  private flushing: Promise<void> | undefined;

  constructor(readonly filename: string) {
    mkdirSync(dirname(filename), { recursive: true, mode: 0o700 });
    try {
      const parsed = JSON.parse(readFileSync(filename, 'utf8')) as { entries?: Array<[string, unknown]> };
      for (const [k, v] of parsed.entries ?? []) this.data.set(k, v);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`CRM_MCP_STORE: cannot read ${filename}: ${(err as Error).message}`);
      }
    }
  }

  get(key: string): unknown {
    return this.data.get(key);
  }

  async set(key: string, value: unknown): Promise<boolean> {
    this.data.set(key, value);
    await this.save();
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const had = this.data.delete(key);
    if (had) await this.save();
    return had;
  }

  async clear(): Promise<void> {
    this.data.clear();
    await this.save();
  }

  has(key: string): boolean {
    return this.data.has(key);
  }

  keys(): IterableIterator<string> {
    return this.data.keys();
  }

  private save(): Promise<void> {
    this.dirty = true;
    this.flushing ??= this.flushLoop().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushLoop(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      await this.writeAtomically(JSON.stringify({ entries: [...this.data.entries()] }));
    }
  }

  private async writeAtomically(text: string): Promise<void> {
    const tmp = `${this.filename}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.filename);
  }
}
