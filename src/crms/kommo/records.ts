/** Single Kommo records by id, and company names beside the company ids of records already read. */
import { CrmError, notFound } from '../../domain/errors.js';
import { nameCacheOf } from '../../util/name-cache.js';
import type { CallContext, Id } from '../types.js';
import { PAGE_MAX } from './api.js';
import { toId } from './ids.js';
import type { KommoParts } from './metadata.js';
import { KContact, KLead, parseKommo } from './schemas.js';

/** One record's answer; a missing record may come as 204 or 404 (§4), or as a body without an id. */
async function one(k: KommoParts, ctx: CallContext, path: string, withParam: string): Promise<unknown> {
  try {
    const data = await k.api.get(ctx, path, { with: withParam });
    return data && typeof data === 'object' && (data as { id?: unknown }).id ? data : undefined;
  } catch (e) {
    if (e instanceof CrmError && e.code === 'not_found') return undefined;
    throw e;
  }
}

export async function rawLead(k: KommoParts, ctx: CallContext, id: Id): Promise<KLead> {
  const n = toId(id, 'id');
  const path = `/api/v4/leads/${n}`;
  const data = await one(k, ctx, path, 'contacts');
  if (data === undefined) throw notFound(`Lead ${n}`);
  return parseKommo(KLead, data, `GET ${path}`);
}

export async function rawEntity(k: KommoParts, ctx: CallContext, entity: 'contacts' | 'companies', id: Id, withParam: string): Promise<KContact> {
  const n = toId(id, 'id');
  const path = `/api/v4/${entity}/${n}`;
  const data = await one(k, ctx, path, withParam);
  if (data === undefined) throw notFound(`${entity === 'contacts' ? 'Contact' : 'Company'} ${n}`);
  return parseKommo(KContact, data, `GET ${path}`);
}

/** Per connection: when the company directory was last read whole, and whether it turned out larger than a page. */
const directories = new WeakMap<object, { readAt: number; large: boolean }>();
const DIRECTORY_TTL_MS = 60_000;

/**
 * An account's companies read whole when they fit in one page (no `_links.next`, §4): one request names every
 * company of a scan of any length, where lookups by id cost one per page that meets new companies. Read once a
 * minute at most (the names' own lifetime); an account with more companies than a page is remembered as such
 * and named by id only, so it pays this request once.
 */
async function readDirectory(k: KommoParts, ctx: CallContext, cache: ReturnType<typeof nameCacheOf>): Promise<void> {
  const seen = directories.get(k.api);
  if (seen && (seen.large || Date.now() - seen.readAt < DIRECTORY_TTL_MS)) return;
  const q = new URLSearchParams({ limit: String(PAGE_MAX), page: '1' });
  const { items, next } = await k.api.page(ctx, '/api/v4/companies', 'companies', q, KContact);
  for (const c of items) cache.set(c.id, c.name ?? null);
  directories.set(k.api, { readAt: Date.now(), large: next });
}

/**
 * Company names beside company ids: a lead's or contact's `_embedded.companies` carries ids only (§5.1, §6),
 * so the page's companies are read in one `filter[id][]` request (250 a request). A list page (`directory`)
 * first tries the account's whole company list (readDirectory).
 */
export async function nameCompanies(
  k: KommoParts,
  ctx: CallContext,
  records: Array<{ company: { id: Id; name: string | null } | null }>,
  o: { directory?: boolean } = {},
): Promise<void> {
  // Names read in the last minute are reused (util/name-cache.ts): a long scan pays for them once.
  const cache = nameCacheOf(k.api);
  const missing = () => [...new Set(records.filter((r) => r.company && r.company.name === null && !cache.has(r.company.id)).map((r) => Number(r.company!.id)))];
  let ids = missing();
  if (ids.length && o.directory) {
    await readDirectory(k, ctx, cache);
    ids = missing();
  }
  for (let i = 0; i < ids.length; i += PAGE_MAX) {
    const chunk = ids.slice(i, i + PAGE_MAX);
    for (const c of await k.api.byIds(ctx, 'companies', chunk, KContact)) cache.set(c.id, c.name ?? null);
    // A company that is gone or hidden from this user stays unnamed, remembered so later pages do not ask again.
    for (const id of chunk) if (!cache.has(id)) cache.set(id, null);
  }
  for (const r of records) {
    if (r.company && r.company.name === null && cache.has(r.company.id)) r.company = { id: r.company.id, name: cache.get(r.company.id) ?? null };
  }
}
