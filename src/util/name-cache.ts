/**
 * Names beside ids (a lead's company) for list pages, remembered for a minute per connection: a scan of
 * thousands of records names the same few hundred companies, so after the first pages it costs no request.
 * Each provider keeps one cache per connection; names are display data, so a minute's staleness is fine.
 * The entries, their expiry and the bound are lru-cache's; `now` is its clock (tests move it).
 */
import { LRUCache } from 'lru-cache';

const TTL_MS = 60_000;
const MAX_ENTRIES = 20_000;

export class NameCache {
  // Boxed: lru-cache stores non-null values, and "no name" (null) is a known answer worth remembering.
  private readonly names: LRUCache<string, { name: string | null }>;

  constructor(now: () => number = Date.now) {
    // lru-cache reads a start time of 0 as "never stored", so an injected clock that starts at 0 is shifted by 1 ms.
    this.names = new LRUCache({ max: MAX_ENTRIES, ttl: TTL_MS, ttlResolution: 0, perf: { now: () => now() + 1 } });
  }

  get(id: string | number): string | null | undefined {
    return this.names.get(String(id))?.name;
  }

  has(id: string | number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: string | number, name: string | null): void {
    this.names.set(String(id), { name });
  }
}

/** One cache per provider instance (a WeakMap, so a closed provider's cache goes with it). */
const caches = new WeakMap<object, NameCache>();
export function nameCacheOf(owner: object): NameCache {
  let c = caches.get(owner);
  if (!c) caches.set(owner, (c = new NameCache()));
  return c;
}
