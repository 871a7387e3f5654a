/**
 * Names beside ids (a lead's company) for list pages, remembered for a minute per connection: a scan of
 * thousands of records names the same few hundred companies, so after the first pages it costs no request.
 * Each provider keeps one cache per connection; names are display data, so a minute's staleness is fine.
 */
const TTL_MS = 60_000;
const MAX_ENTRIES = 20_000;

export class NameCache {
  private readonly names = new Map<string, { name: string | null; at: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  get(id: string | number): string | null | undefined {
    const hit = this.names.get(String(id));
    if (!hit) return undefined;
    if (this.now() - hit.at > TTL_MS) {
      this.names.delete(String(id));
      return undefined;
    }
    return hit.name;
  }

  has(id: string | number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: string | number, name: string | null): void {
    if (this.names.size >= MAX_ENTRIES) this.names.delete(this.names.keys().next().value as string);
    this.names.set(String(id), { name, at: this.now() });
  }
}

/** One cache per provider instance (a WeakMap, so a closed provider's cache goes with it). */
const caches = new WeakMap<object, NameCache>();
export function nameCacheOf(owner: object): NameCache {
  let c = caches.get(owner);
  if (!c) caches.set(owner, (c = new NameCache()));
  return c;
}
