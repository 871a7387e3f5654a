/**
 * A small in-memory TTL cache with single-flight loading (concurrent callers share one load), over lru-cache:
 * the entries, their expiry and the size bound are the library's; only the sharing of a load in flight is ours.
 */
import { LRUCache } from 'lru-cache';

export class TtlCache<V> {
  // Boxed: lru-cache stores non-null values only, and a cached value may be null or undefined.
  private readonly entries: LRUCache<string, { value: V }>;
  private readonly loading = new Map<string, Promise<V>>();

  constructor(ttlMs: number, maxEntries = 200) {
    this.entries = new LRUCache<string, { value: V }>({ max: maxEntries, ttl: ttlMs, ttlAutopurge: false });
  }

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) return hit.value;
    const inflight = this.loading.get(key);
    if (inflight) return inflight;
    const p = load()
      .then((value) => {
        this.put(key, value);
        return value;
      })
      .finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  peek(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  put(key: string, value: V): void {
    this.entries.set(key, { value });
  }

  take(key: string): V | undefined {
    const v = this.peek(key);
    this.entries.delete(key);
    return v;
  }

  clear(): void {
    this.entries.clear();
  }
}
