/**
 * The account's slow-changing metadata (pipelines, users, custom fields, the account itself), cached for
 * five minutes, and the checks that read it: stages, users, status pairs for filters.
 */
import type { KommoConnection } from './connection.js';
import { CrmError, validationError } from '../../domain/errors.js';
import { unknownUser } from '../../domain/validate.js';
import { TtlCache } from '../cache.js';
import type { AccountInfo, CallContext, CustomFieldDef, Id, Pipeline, Tag, User } from '../types.js';
import type { KommoApi, EntityPath } from './api.js';
import type { KommoAuth } from './auth.js';
import { toId } from './ids.js';
import type { PhoneStyle } from './phone-style.js';
import { LOST, WON, mapFieldDef, mapPipeline, mapTag, mapUser, webOf, type Lookups } from './map.js';
import { KAccount, KCustomField, KPipeline, KTag, KUser, parseKommo } from './schemas.js';

/** Kommo allows 7 requests per second per integration (fact sheet §3). */
export const KOMMO_RPS = 7;
const META_TTL_MS = 5 * 60 * 1000;

/** What every part of the provider works with. */
export interface KommoParts {
  conn: KommoConnection;
  auth: KommoAuth;
  api: KommoApi;
  meta: KommoMeta;
  /** How the account's `query` matches phones, as learnt and remembered in the store (phone-style.ts). */
  phoneStyle: PhoneStyle;
}

export class KommoMeta {
  private readonly cache = new TtlCache<unknown>(META_TTL_MS);

  constructor(private readonly api: KommoApi) {}

  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.cache.get(key, load as () => Promise<unknown>) as Promise<T>;
  }

  pipelines(ctx: CallContext): Promise<KPipeline[]> {
    return this.cached('pipelines', () => this.api.all(ctx, '/api/v4/leads/pipelines', 'pipelines', KPipeline));
  }

  users(ctx: CallContext): Promise<KUser[]> {
    return this.cached('users', () => this.api.all(ctx, '/api/v4/users', 'users', KUser));
  }

  fields(ctx: CallContext, entity: EntityPath): Promise<KCustomField[]> {
    return this.cached(`fields:${entity}`, () => this.api.all(ctx, `/api/v4/${entity}/custom_fields`, 'custom_fields', KCustomField));
  }

  account(ctx: CallContext): Promise<Record<string, unknown>> {
    return this.cached('account', async () => {
      const data = await this.api.get(ctx, '/api/v4/account');
      return data === undefined || data === null ? {} : parseKommo(KAccount, data, 'GET /api/v4/account');
    });
  }

  async lookups(ctx: CallContext): Promise<Lookups> {
    const [pipelines, users] = await Promise.all([
      this.pipelines(ctx),
      // Users are admin-only (§9): without them we show ids without names rather than fail.
      this.users(ctx).catch((e: unknown) => {
        if (e instanceof CrmError && e.code === 'forbidden') return [] as KUser[];
        throw e;
      }),
    ]);
    return {
      pipelines: new Map(pipelines.map((p) => [p.id, p])),
      users: new Map(users.map((u) => [u.id, u])),
      // The configured origin only: records' links must never carry anything but the account's address.
      web: webOf(this.api.baseUrl),
    };
  }

  async defaultCountry(ctx: CallContext): Promise<string | undefined> {
    try {
      const acc = await this.account(ctx);
      const c = typeof acc.country === 'string' ? acc.country : undefined;
      return c && /^[a-z]{2}$/i.test(c) ? c.toUpperCase() : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `filter[statuses]` takes (pipeline_id, status_id) pairs (§5.1). A stage id names one stage of one pipeline,
   * except won/lost (142/143), which every pipeline has under the same ids (§7): without a pipeline they mean
   * that stage in every pipeline, one pair each.
   */
  async statusPairs(ctx: CallContext, pipelineId: Id | undefined, statusIds: Id[]): Promise<Array<[number, number]>> {
    const pipelines = await this.pipelines(ctx);
    const pid = pipelineId !== undefined ? toId(pipelineId, 'pipeline_id') : undefined;
    const out = new Map<string, [number, number]>();
    for (const raw of statusIds) {
      const sid = toId(raw, 'status_ids');
      const owners = pipelines.filter((p) => (pid === undefined || p.id === pid) && p._embedded?.statuses?.some((st) => st.id === sid));
      if (!owners.length) {
        const where = pid !== undefined ? ` in pipeline ${pid}` : '';
        throw validationError(`status_ids: unknown stage ${sid}${where}. Call get_pipelines for valid stage ids.`);
      }
      for (const p of owners) out.set(`${p.id}:${sid}`, [p.id, sid]);
    }
    return [...out.values()];
  }

  async checkStage(ctx: CallContext, pipelineId: Id | undefined, statusId: Id | undefined): Promise<{ pipeline_id?: number; status_id?: number }> {
    if (pipelineId === undefined && statusId === undefined) return {};
    const pipelines = await this.pipelines(ctx);
    const pid = pipelineId !== undefined ? toId(pipelineId, 'pipeline_id') : undefined;
    const sid = statusId !== undefined ? toId(statusId, 'status_id') : undefined;
    if (pid !== undefined) {
      const p = pipelines.find((x) => x.id === pid);
      if (!p) throw validationError(`pipeline_id: no pipeline ${pid}. Pipelines: ${pipelines.map((x) => `${x.name} (${x.id})`).join(', ')}.`);
      if (sid !== undefined && !p._embedded?.statuses?.some((s) => s.id === sid)) {
        throw validationError(
          `status_id: stage ${sid} is not in pipeline "${p.name}". Its stages: ${(p._embedded?.statuses ?? []).map((s) => `${s.name} (${s.id})`).join(', ')}.`,
        );
      }
      return { pipeline_id: pid, ...(sid !== undefined ? { status_id: sid } : {}) };
    }
    if (sid === WON || sid === LOST) return { status_id: sid }; // the caller adds the pipeline (ids are shared, §7)
    const owner = pipelines.find((p) => p._embedded?.statuses?.some((s) => s.id === sid));
    if (!owner) throw validationError(`status_id: unknown stage ${sid}. Call get_pipelines for valid stage ids.`);
    return { pipeline_id: owner.id, status_id: sid };
  }

  async checkUser(ctx: CallContext, id: Id | undefined): Promise<number | undefined> {
    if (id === undefined) return undefined;
    const n = toId(id, 'responsible_user_id');
    const users = await this.users(ctx).catch(() => [] as KUser[]);
    if (users.length && !users.some((u) => u.id === n)) unknownUser(n);
    return n;
  }
}

export async function account(k: KommoParts, ctx: CallContext): Promise<AccountInfo> {
  const [acc, l, token] = await Promise.all([k.meta.account(ctx), k.meta.lookups(ctx), k.auth.info()]);
  const uid = typeof acc.current_user_id === 'number' ? acc.current_user_id : null;
  return {
    provider: 'kommo',
    id: typeof acc.id === 'number' ? acc.id : null,
    name: typeof acc.name === 'string' ? acc.name : null,
    address: k.conn.baseUrl,
    current_user: uid ? { id: uid, name: l.users.get(uid)?.name ?? null } : null,
    country: typeof acc.country === 'string' ? acc.country : null,
    currency: typeof acc.currency === 'string' ? acc.currency : null,
    auth: { type: token.type, expires_at: token.expires_at, scopes: token.scopes },
    details: { subdomain: acc.subdomain ?? null, pipelines: l.pipelines.size, users: l.users.size, rate_limit: `${KOMMO_RPS} requests/s` },
  };
}

export async function pipelines(k: KommoParts, ctx: CallContext): Promise<Pipeline[]> {
  return (await k.meta.pipelines(ctx)).filter((p) => !p.is_archive).map(mapPipeline);
}

export async function users(k: KommoParts, ctx: CallContext): Promise<User[]> {
  return (await k.meta.users(ctx)).map(mapUser);
}

export async function customFields(k: KommoParts, ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]> {
  if (entity === 'deals') throw validationError('Kommo has no "deals": use entity "leads" (a Kommo lead is the sales opportunity).');
  return (await k.meta.fields(ctx, entity)).map((f) => mapFieldDef(f, entity));
}

export async function tags(k: KommoParts, ctx: CallContext, entity: EntityPath, query?: string): Promise<Tag[]> {
  const q: Record<string, string> = {};
  if (query) q.query = query;
  return (await k.api.all(ctx, `/api/v4/${entity}/tags`, 'tags', KTag, q)).map(mapTag);
}
