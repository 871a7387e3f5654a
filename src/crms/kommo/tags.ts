/**
 * Tag names → the account's existing tags (fact sheet §9). Any write that carries a tag name the account
 * does not have adds it to the account's tag list, and that list is configuration (admin). So the typed
 * tools look names up and send existing tags by id; a name that does not exist is refused before anything
 * is sent, unless the call was granted admin. The HTTP core counts a tag sent by name as admin, so a tag
 * that slipped past this check would still be refused there.
 */
import { CrmError } from '../../domain/errors.js';
import { toolRef } from '../../domain/tool-hints.js';
import { TtlCache } from '../cache.js';
import type { CallContext } from '../types.js';
import type { EntityPath, KommoApi } from './api.js';
import type { KommoParts } from './metadata.js';
import { KTag } from './schemas.js';

/** A tag as a write sends it: an existing one by id, a new one (admin only) by name. */
export type TagRef = { id: number } | { name: string };

/** Found tags only (a missing tag may be created by an administrator at any time): 5 minutes, per account API. */
const caches = new WeakMap<KommoApi, TtlCache<number>>();

function cacheOf(api: KommoApi): TtlCache<number> {
  let c = caches.get(api);
  if (!c) caches.set(api, (c = new TtlCache<number>(5 * 60_000, 500)));
  return c;
}

const key = (name: string) => name.trim().toLowerCase();

/** The id of the tag with this name (case and outer spaces aside), if the account has one. */
async function findTag(k: KommoParts, ctx: CallContext, entity: EntityPath, name: string): Promise<number | undefined> {
  const cache = cacheOf(k.api);
  const cacheKey = `${entity}:${key(name)}`;
  const hit = cache.peek(cacheKey);
  if (hit !== undefined) return hit;
  // §9: `filter[name]` is an exact match on one name; the answer is checked again here, whatever the API's case rule.
  const page = await k.api.page(ctx, `/api/v4/${entity}/tags`, 'tags', new URLSearchParams({ 'filter[name]': name.trim(), limit: '50' }), KTag);
  const tag = page.items.find((t) => key(t.name) === key(name));
  if (tag) cache.put(cacheKey, tag.id);
  return tag?.id;
}

const ENTITY_WORD: Record<EntityPath, string> = { leads: 'lead', contacts: 'contact', companies: 'company' };

/**
 * Resolves tag names for a write (`field` names the input in errors). Existing tags are sent by id; names
 * the account does not have are refused unless the call may change configuration (admin).
 */
export async function resolveTags(
  k: KommoParts,
  ctx: CallContext,
  entity: EntityPath,
  names: readonly string[] | undefined,
  field: string,
): Promise<TagRef[] | undefined> {
  const wanted = [...new Map((names ?? []).filter((n) => n.trim()).map((n) => [key(n), n.trim()])).values()];
  if (!wanted.length) return undefined;
  const ids: Array<number | undefined> = [];
  for (const name of wanted) ids.push(await findTag(k, ctx, entity, name));
  const missing = wanted.filter((_, i) => ids[i] === undefined);
  if (missing.length && !ctx.grant.has('admin')) {
    const list = missing.map((n) => JSON.stringify(n)).join(', ');
    throw new CrmError({
      code: 'policy_denied',
      message:
        `${field}: this account has no ${ENTITY_WORD[entity]} tag named ${list}. Adding a tag to the account's tag list changes its ` +
        `configuration (admin), which this call may not do, so nothing was sent. Use an existing tag; the tags are listed by ` +
        `${toolRef('list_tags')}. Or have an administrator create the tag first: in Kommo, or with ` +
        `${toolRef('kommo_request', 'raw')} POST /api/v4/${entity}/tags on a server running with CRM_SAFE_MODE=false and CRM_ALLOW_ADMIN=true.`,
    });
  }
  return wanted.map((name, i) => (ids[i] !== undefined ? { id: ids[i] } : { name }));
}
