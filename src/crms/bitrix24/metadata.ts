/**
 * The portal's slow-changing metadata (CRM mode, deal pipelines and stages, lead statuses, field definitions,
 * users, the licence that names its region), read in two batches and cached for five minutes, and the checks
 * that read it: stages, users, the default entity, the first stage of a pipeline.
 */
import type { BitrixConnection } from './connection.js';
import { validationError } from '../../domain/errors.js';
import { unknownUser } from '../../domain/validate.js';
import { TtlCache } from '../cache.js';
import type { AccountInfo, CallContext, CustomFieldDef, Id, Pipeline, User } from '../types.js';
import type { BitrixApi } from './api.js';
import type { BitrixAuth } from './auth.js';
import { portalCountry } from './country.js';
import { bxId } from './ids.js';
import {
  LEAD_PIPELINE,
  mapFieldDefs,
  mapPipelines,
  mapUser,
  num,
  phpQuery,
  stageType,
  str,
  type BCategory,
  type BField,
  type BLookups,
  type BStatus,
  type Row,
} from './map.js';
import { BCategoryList, BFields, BRow, BStatuses, parseBitrix } from './schemas.js';
import { collectUsers, firstUserPage, moreUserPages } from './users.js';

/** Leaky bucket per plan (§5). */
export const BITRIX_PLANS = { standard: { capacity: 50, drain: 2 }, enterprise: { capacity: 250, drain: 5 } } as const;
const META_TTL_MS = 5 * 60 * 1000;

export type Entity = 'lead' | 'deal' | 'contact' | 'company';

/** What every part of the provider works with. */
export interface BitrixParts {
  conn: BitrixConnection;
  auth: BitrixAuth;
  api: BitrixApi;
  meta: BitrixMeta;
}

export interface RawLookups {
  leadsEnabled: boolean;
  categories: BCategory[];
  stages: BStatus[];
  leadStatuses: BStatus[];
  dealFields: Record<string, BField>;
  leadFields: Record<string, BField>;
  contactFields: Record<string, BField>;
  companyFields: Record<string, BField>;
  license: unknown;
  users: Row[];
}

export type Lookups = BLookups & { leadsEnabled: boolean; country: string | undefined; raw: RawLookups };

/** A list answer inside a batch: the rows of statuses when it is a list, none otherwise (as before). */
const statuses = (v: unknown, what: string): BStatus[] => (Array.isArray(v) ? parseBitrix(BStatuses, v, what) : []);
/** A `crm.*.fields` answer as a field map (PHP sends an empty map as `[]`, §3). */
const fieldMap = (v: unknown, what: string): Record<string, BField> => (v === undefined || v === null ? {} : parseBitrix(BFields, v, what));

export class BitrixMeta {
  private readonly cache = new TtlCache<unknown>(META_TTL_MS);

  constructor(private readonly api: BitrixApi) {}

  cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.cache.get(key, load as () => Promise<unknown>) as Promise<T>;
  }

  /** Mode, categories, stages, lead statuses and field definitions, in two batch requests, cached. */
  raw(ctx: CallContext): Promise<RawLookups> {
    return this.cached('lookups', async () => {
      const first = await this.api.batch(ctx, {
        mode: 'crm.settings.mode.get',
        categories: `crm.category.list?${phpQuery({ entityTypeId: 2 })}`,
        stages0: `crm.status.list?${phpQuery({ filter: { ENTITY_ID: 'DEAL_STAGE' } })}`,
        statuses: `crm.status.list?${phpQuery({ filter: { ENTITY_ID: 'STATUS' } })}`,
        dealFields: 'crm.deal.fields',
        leadFields: 'crm.lead.fields',
        // UF labels of contacts and companies too ("Tax ID", not UF_CRM_…), and the portal's region (country.ts).
        contactFields: 'crm.contact.fields',
        companyFields: 'crm.company.fields',
        app: 'app.info',
        users: firstUserPage(),
      });
      const mode = first.result.mode;
      // crm.settings.mode.get: 1 = classic (leads enabled), 2 = simple (no leads).
      const leadsEnabled = !(mode === 2 || mode === '2' || (typeof mode === 'string' && /simple/i.test(mode)));
      const catsRaw = first.result.categories == null ? undefined : parseBitrix(BCategoryList, first.result.categories, 'crm.category.list');
      const categories: BCategory[] = (catsRaw?.categories ?? []).map((c) => ({ ...c, id: Number(c.id), sort: Number(c.sort) }));
      if (!categories.some((c) => c.id === 0)) categories.unshift({ id: 0, name: 'General', sort: 0, isDefault: 'Y' });
      const stageCmds: Record<string, string> = {};
      for (const c of categories) if (c.id !== 0) stageCmds[`s${c.id}`] = `crm.status.list?${phpQuery({ filter: { ENTITY_ID: `DEAL_STAGE_${c.id}` } })}`;
      // Users beyond the first page of 50 come in the same second batch as the pipelines' stages (users.ts).
      const firstUsers = Array.isArray(first.result.users) ? first.result.users.length : 0;
      const more = await this.api.batch(ctx, { ...stageCmds, ...moreUserPages(first.total.users, firstUsers) });
      const stages = [
        first.result.stages0,
        ...Object.entries(more.result)
          .filter(([k]) => /^s\d+$/.test(k))
          .map(([, v]) => v),
      ].flatMap((x) => statuses(x, 'crm.status.list'));
      const app = first.result.app === undefined || first.result.app === null ? undefined : parseBitrix(BRow, first.result.app, 'app.info');
      return {
        leadsEnabled,
        categories,
        stages,
        leadStatuses: statuses(first.result.statuses, 'crm.status.list'),
        dealFields: fieldMap(first.result.dealFields, 'crm.deal.fields'),
        leadFields: fieldMap(first.result.leadFields, 'crm.lead.fields'),
        contactFields: fieldMap(first.result.contactFields, 'crm.contact.fields'),
        companyFields: fieldMap(first.result.companyFields, 'crm.company.fields'),
        license: app?.LICENSE,
        users: collectUsers(first.result.users, more.result),
      };
    });
  }

  async lookups(ctx: CallContext): Promise<Lookups> {
    const raw = await this.raw(ctx);
    const stages = new Map<string, BStatus>();
    for (const s of raw.stages) stages.set(s.STATUS_ID, s);
    for (const s of raw.leadStatuses) stages.set(`STATUS:${s.STATUS_ID}`, s);
    return {
      leadsEnabled: raw.leadsEnabled,
      categories: new Map(raw.categories.map((c) => [c.id, c])),
      stages,
      users: new Map(raw.users.map((u) => [String(u.ID), mapUser(u)])),
      dealFields: raw.dealFields,
      leadFields: raw.leadFields,
      contactFields: raw.contactFields,
      companyFields: raw.companyFields,
      country: portalCountry(raw.license, new URL(this.api.http.origin).hostname),
      // The configured origin only (never the webhook's path, which carries its secret): records' links.
      web: new URL(this.api.http.origin).origin,
      raw,
    };
  }

  async defaultEntity(ctx: CallContext, asked: 'lead' | 'deal' | undefined): Promise<'lead' | 'deal'> {
    const l = await this.lookups(ctx);
    if (asked === 'lead' && !l.leadsEnabled) throw validationError('This Bitrix24 portal runs in simple CRM mode (no leads): use entity "deal".');
    // One default for every lead tool, so create_lead's id reads back through get_lead/update_lead as the same
    // record (lead and deal ids overlap): a lead where the portal has leads (crm.settings.mode.get 1, classic),
    // else a deal (2, simple).
    return asked ?? (l.leadsEnabled ? 'lead' : 'deal');
  }

  async checkStage(ctx: CallContext, entity: 'lead' | 'deal', pipelineId: Id | undefined, statusId: Id | undefined): Promise<Record<string, unknown>> {
    const l = await this.lookups(ctx);
    const out: Record<string, unknown> = {};
    if (entity === 'lead') {
      if (pipelineId !== undefined && String(pipelineId) !== LEAD_PIPELINE.id)
        throw validationError('pipeline_id: Bitrix24 leads have no pipelines; omit it or use entity "deal".');
      if (statusId !== undefined) {
        if (!l.stages.has(`STATUS:${statusId}`))
          throw validationError(
            `status_id: "${statusId}" is not a lead status. Statuses: ${l.raw.leadStatuses.map((s) => `${s.NAME} (${s.STATUS_ID})`).join(', ')}.`,
          );
        out.STATUS_ID = String(statusId);
      }
      return out;
    }
    let cat: number | undefined;
    if (pipelineId !== undefined) {
      cat = Number(pipelineId);
      if (!l.categories.has(cat))
        throw validationError(
          `pipeline_id: no deal pipeline ${pipelineId}. Pipelines: ${[...l.categories.values()].map((c) => `${c.name} (${c.id})`).join(', ')}.`,
        );
      out.CATEGORY_ID = cat;
    }
    if (statusId !== undefined) {
      const s = l.stages.get(String(statusId));
      if (!s || !s.ENTITY_ID.startsWith('DEAL_STAGE')) throw validationError(`status_id: "${statusId}" is not a deal stage. Call get_pipelines for stage ids.`);
      const sCat = s.ENTITY_ID === 'DEAL_STAGE' ? 0 : Number(s.ENTITY_ID.slice('DEAL_STAGE_'.length));
      if (cat !== undefined && sCat !== cat) throw validationError(`status_id: stage "${statusId}" belongs to pipeline ${sCat}, not ${cat}.`);
      out.CATEGORY_ID = sCat;
      out.STAGE_ID = String(statusId);
    }
    return out;
  }

  async checkUser(ctx: CallContext, id: Id | undefined): Promise<number | undefined> {
    if (id === undefined) return undefined;
    const n = bxId(id);
    const l = await this.lookups(ctx);
    if (l.users.size && !l.users.has(String(n))) unknownUser(n);
    return n;
  }
}

/** The first open stage by SORT: of the lead statuses, or of a deal pipeline (default: the default one). */
export function firstStage(
  l: { categories: Map<number, BCategory>; raw: { stages: BStatus[]; leadStatuses: BStatus[] } },
  entity: 'lead' | 'deal',
  category: number | undefined,
): Record<string, unknown> {
  const pick = (list: BStatus[]) => {
    const sorted = list.slice().sort((a, b) => Number(a.SORT) - Number(b.SORT));
    return (sorted.find((s) => stageType(s) === 'open') ?? sorted[0])?.STATUS_ID;
  };
  if (entity === 'lead') {
    const id = pick(l.raw.leadStatuses);
    return id ? { STATUS_ID: id } : {};
  }
  const cat = category ?? [...l.categories.values()].find((c) => c.isDefault === 'Y')?.id ?? 0;
  const id = pick(l.raw.stages.filter((s) => s.ENTITY_ID === (cat === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${cat}`)));
  return id ? { CATEGORY_ID: cat, STAGE_ID: id } : { CATEGORY_ID: cat };
}

export async function account(b: BitrixParts, ctx: CallContext): Promise<AccountInfo> {
  const r = await b.api.batch(ctx, { profile: 'profile', app: 'app.info', scope: 'scope' });
  const l = await b.meta.lookups(ctx);
  const p = parseBitrix(BRow, r.result.profile ?? {}, 'profile');
  const name = [str(p.NAME), str(p.LAST_NAME)].filter(Boolean).join(' ') || null;
  const scopes = Array.isArray(r.result.scope) ? r.result.scope.map(String) : null;
  const tok = b.auth.tokens?.peek();
  const app = parseBitrix(BRow, r.result.app ?? {}, 'app.info');
  const plan = BITRIX_PLANS[b.conn.plan];
  return {
    provider: 'bitrix24',
    id: null,
    name: new URL(b.api.http.origin).hostname,
    address: b.api.http.origin,
    current_user: p.ID !== undefined ? { id: num(p.ID)!, name } : null,
    // Local numbers (no country code) in searches and creates are read in this country (country.ts).
    country: l.country ?? null,
    auth: { type: b.conn.webhookUrl ? 'webhook' : 'oauth', expires_at: tok ? new Date(tok.expires_at).toISOString() : null, scopes },
    details: {
      plan: b.conn.plan,
      rate_limit: `leaky bucket ${plan.capacity} burst, ${plan.drain}/s`,
      crm_mode: l.leadsEnabled ? 'classic (leads enabled)' : 'simple (deals only)',
      license: app.LICENSE ?? null,
      pipelines: l.categories.size,
    },
  };
}

export async function pipelines(b: BitrixParts, ctx: CallContext): Promise<Pipeline[]> {
  const raw = (await b.meta.lookups(ctx)).raw;
  return mapPipelines(raw.categories, raw.stages, raw.leadsEnabled ? raw.leadStatuses : null);
}

export async function users(b: BitrixParts, ctx: CallContext): Promise<User[]> {
  // Every page of user.get, read with the other metadata and cached with it (users.ts).
  const rows = (await b.meta.raw(ctx)).users;
  // user.get has no admin flag ([D] user-get lists its fields); `profile` gives ADMIN for the user the
  // webhook or token acts as (§2.3), and nothing tells it for anyone else, so theirs stays null (unknown).
  const me = await b.meta.cached('profile', async () => parseBitrix(BRow, (await b.api.call<unknown>(ctx, 'profile')).result ?? {}, 'profile'));
  return rows.map((r) => {
    const u = mapUser(r);
    return typeof me.ADMIN === 'boolean' && String(me.ID) === String(r.ID) ? { ...u, is_admin: me.ADMIN } : u;
  });
}

export async function customFields(b: BitrixParts, ctx: CallContext, entity: 'leads' | 'contacts' | 'companies' | 'deals'): Promise<CustomFieldDef[]> {
  const m = { leads: 'lead', contacts: 'contact', companies: 'company', deals: 'deal' }[entity];
  const r = await b.meta.cached(`fields:${m}`, async () => fieldMap((await b.api.call<unknown>(ctx, `crm.${m}.fields`)).result, `crm.${m}.fields`));
  return mapFieldDefs(r, entity);
}
