/** Account, pipelines/statuses, custom fields, users and tags (fact sheet §1, §7, §8, §9). */
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, requestIdOf, selfLink } from './context.js';
import { intFilter, onlyParams, runList, stringFilter, withSet } from './list.js';
import { E, type FieldError, hal, notFound, Validation } from './responses.js';
import type { EntityType, KCustomField, KPipeline, KStatus, KTag, KUser } from './types.js';
import { BodyReader, ensureTags, findTag } from './write.js';

// §1: `with` values of GET /account (docs + SDK).
const ACCOUNT_WITH = [
  'amojo_id',
  'amojo_rights',
  'users_groups',
  'task_types',
  'version',
  'entity_names',
  'datetime_settings',
  'drive_url',
  'is_api_filter_enabled',
  'invoices_settings',
];

export function getAccount(ctx: Ctx): EmuResponse {
  onlyParams(ctx, ['with']);
  const w = withSet(ctx, ACCOUNT_WITH);
  const a = ctx.state.account;
  const out: Record<string, unknown> = {
    id: a.id,
    name: a.name,
    subdomain: a.subdomain,
    created_at: a.created_at,
    created_by: a.created_by,
    updated_at: a.updated_at,
    updated_by: a.updated_by,
    current_user_id: ctx.userId,
    country: a.country,
    currency: a.currency,
    currency_symbol: a.currency_symbol,
    customers_mode: a.customers_mode,
    is_unsorted_on: a.is_unsorted_on,
    is_loss_reason_enabled: a.is_loss_reason_enabled,
    is_helpbot_enabled: a.is_helpbot_enabled,
    is_technical_account: a.is_technical_account,
    contact_name_display_order: a.contact_name_display_order,
  };
  if (w.has('amojo_id')) out.amojo_id = a.amojo_id;
  if (w.has('version')) out.version = a.version;
  if (w.has('is_api_filter_enabled')) out.is_api_filter_enabled = ctx.behaviour.filters === 'applied';
  if (w.has('drive_url')) out.drive_url = `https://drive-c.kommo.com`;
  out._links = selfLink(ctx, '/api/v4/account');
  // Fixture GET_account.with.json: the other `with` data comes under `_embedded`.
  const emb: Record<string, unknown> = {};
  if (w.has('amojo_rights')) emb.amojo_rights = { can_direct: true, can_create_groups: true };
  if (w.has('users_groups')) emb.users_groups = a.users_groups.map((g) => ({ ...g }));
  if (w.has('task_types')) emb.task_types = a.task_types.map((t) => ({ ...t }));
  if (w.has('entity_names')) {
    const names = (one: string, many: string) => ({ en: { singular_form: { default: one }, plural_form: { default: many }, gender: 'f' } });
    emb.entity_names = { leads: names('lead', 'leads') };
  }
  if (w.has('datetime_settings')) {
    emb.datetime_settings = {
      date_pattern: 'd.m.Y H:i',
      short_date_pattern: 'd.m.Y',
      short_time_pattern: 'H:i',
      date_format: 'd.m.Y',
      time_format: 'H:i:s',
      timezone: 'Europe/Moscow',
      timezone_offset: '+03:00',
    };
  }
  if (w.has('invoices_settings')) emb.invoices_settings = { lang: 'en', invoices_catalog_id: null };
  if (Object.keys(emb).length) out._embedded = emb;
  return hal(out);
}

// ---------------------------------------------------------------- pipelines (§7)

function renderStatus(ctx: Ctx, s: KStatus): Record<string, unknown> {
  return { ...s, _links: selfLink(ctx, `/api/v4/leads/pipelines/${s.pipeline_id}/statuses/${s.id}`) };
}

function renderPipeline(ctx: Ctx, p: KPipeline): Record<string, unknown> {
  const { _embedded, ...rest } = p;
  return { ...rest, _links: selfLink(ctx, `/api/v4/leads/pipelines/${p.id}`), _embedded: { statuses: _embedded.statuses.map((s) => renderStatus(ctx, s)) } };
}

/** §4/§7: the pipelines list is not paged and carries `_total_items`. */
export function listPipelines(ctx: Ctx): EmuResponse {
  return runList(ctx, '/api/v4/leads/pipelines', ctx.state.pipelines.values(), { key: 'pipelines', totalItems: true, unpaged: true }, (p) =>
    renderPipeline(ctx, p),
  );
}

/** §7: a missing pipeline is 404 "Pipeline not found" (fixture GET_leads_pipelines_id_statuses.404.json). */
function pipelineOr404(ctx: Ctx, id: number): KPipeline {
  const p = ctx.state.pipelines.get(id);
  if (!p) throw notFound('Pipeline not found');
  return p;
}

export function getPipeline(ctx: Ctx, id: number): EmuResponse {
  onlyParams(ctx, []);
  return hal(renderPipeline(ctx, pipelineOr404(ctx, id)));
}

export function listStatuses(ctx: Ctx, pipelineId: number): EmuResponse {
  const p = pipelineOr404(ctx, pipelineId);
  return runList(ctx, `/api/v4/leads/pipelines/${p.id}/statuses`, p._embedded.statuses, { key: 'statuses', totalItems: true, unpaged: true }, (s) =>
    renderStatus(ctx, s),
  );
}

/** A missing status: the sheet has no example; "Status not found" follows the documented "Pipeline not found". */
export function getStatus(ctx: Ctx, pipelineId: number, statusId: number): EmuResponse {
  onlyParams(ctx, []);
  const st = pipelineOr404(ctx, pipelineId)._embedded.statuses.find((x) => x.id === statusId);
  if (!st) throw notFound('Status not found');
  return hal(renderStatus(ctx, st));
}

// ---------------------------------------------------------------- custom fields (§8)

function renderField(ctx: Ctx, f: KCustomField): Record<string, unknown> {
  return { ...f, enums: f.enums ? f.enums.map((e) => ({ ...e })) : null, _links: selfLink(ctx, `/api/v4/${f.entity_type}/custom_fields/${f.id}`) };
}

/**
 * amoCRM docs crm_platform/custom-fields: "Метод возвращает до 50 полей за один запрос" although `limit`
 * is documented up to 250, so a page never holds more than 50 whatever `limit` asks (the `_links` then
 * page by 50). `order[sort|id]` per the same page; `_page_count` as in Kommo's list example (withone copy
 * of developers.kommo.com/reference/custom-fields, §8).
 */
export function listFields(ctx: Ctx, entity: EntityType): EmuResponse {
  const spec = {
    key: 'custom_fields',
    totalItems: true,
    pageCount: true,
    maxLimit: CUSTOM_FIELDS_PAGE_CAP,
    order: { sort: (f: KCustomField) => f.sort, id: (f: KCustomField) => f.id },
  };
  return runList(ctx, `/api/v4/${entity}/custom_fields`, ctx.state.customFields[entity].values(), spec, (f) => renderField(ctx, f));
}

export const CUSTOM_FIELDS_PAGE_CAP = 50;

/** §8: a missing field is 404 "Custom field not found" (fixture GET_leads_custom_fields_id.404.json). */
export function getField(ctx: Ctx, entity: EntityType, id: number): EmuResponse {
  onlyParams(ctx, []);
  const f = ctx.state.customFields[entity].get(id);
  if (!f) throw notFound('Custom field not found');
  return hal(renderField(ctx, f));
}

// ---------------------------------------------------------------- users (§9)

// §9: `with` for users.
const USER_WITH = ['role', 'group', 'uuid', 'amojo_id', 'user_rank', 'phone_number'];

function renderUser(ctx: Ctx, u: KUser, w: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: u.id,
    name: u.name,
    email: u.email,
    lang: u.lang,
    rights: structuredClone(u.rights),
    _links: selfLink(ctx, `/api/v4/users/${u.id}`),
  };
  const emb: Record<string, unknown> = {};
  if (w.has('role')) emb.roles = [];
  if (w.has('group')) emb.groups = ctx.state.account.users_groups.filter((g) => g.id === u.rights.group_id).map((g) => ({ id: g.id, name: g.name }));
  if (w.has('uuid')) out.uuid = `00000000-0000-4000-8000-${String(u.id).padStart(12, '0')}`;
  if (w.has('amojo_id')) out.amojo_id = `10000000-0000-4000-8000-${String(u.id).padStart(12, '0')}`;
  if (Object.keys(emb).length) out._embedded = emb;
  return out;
}

/** §9: admin-only; the envelope carries `_total_items`, `_page`, `_page_count`. Every emulator token is an admin's. */
export function listUsers(ctx: Ctx): EmuResponse {
  const w = withSet(ctx, USER_WITH);
  return runList(ctx, '/api/v4/users', ctx.state.users.values(), { key: 'users', with: USER_WITH, totalItems: true, pageCount: true }, (u) =>
    renderUser(ctx, u, w),
  );
}

/** A missing user: no documented body; 204 like the other single-entity reads. */
export function getUser(ctx: Ctx, id: number): EmuResponse {
  onlyParams(ctx, ['with']);
  const w = withSet(ctx, USER_WITH);
  const u = ctx.state.users.get(id);
  return u ? hal(renderUser(ctx, u, w)) : { status: 204 };
}

// ---------------------------------------------------------------- tags (§9)

const renderTag = (t: KTag) => ({ id: t.id, name: t.name, color: t.color });

/** §9: `filter[name]` (exact), `filter[id]`, `query`; no tags → 204 "No data found". */
export function listTags(ctx: Ctx, entity: EntityType): EmuResponse {
  const spec = {
    key: 'tags',
    filters: { name: stringFilter<KTag>((t) => t.name, { ci: true }), id: intFilter<KTag>((t) => t.id) },
    query: (t: KTag, q: string) => t.name.toLowerCase().includes(q.toLowerCase()),
  };
  return runList(ctx, `/api/v4/${entity}/tags`, ctx.state.tags[entity].values(), spec, renderTag);
}

/** §9: `[{name, color?, request_id?}]` → `{_total_items, _embedded:{tags:[{id,name,request_id}]}}`; an existing name is reused. */
export function createTags(ctx: Ctx, entity: EntityType): EmuResponse {
  onlyParams(ctx, []);
  const items = arrayBody(ctx);
  const v = new Validation();
  const names = items.map((item, i) => {
    const errs: FieldError[] = [];
    let name: string | undefined;
    if (!isObject(item)) errs.push(E.type('', 'object'));
    else {
      const r = new BodyReader(item, '', errs, ['name', 'color', 'request_id']);
      name = r.str('name');
      r.str('color');
      r.str('request_id');
      if (!r.has('name') || (name !== undefined && !name.trim())) errs.push(E.blank('name'));
    }
    v.add(requestIdOf(item, i), errs);
    return { name: name?.trim() ?? '', color: isObject(item) && typeof item.color === 'string' ? item.color : null };
  });
  v.throwIfFailed();
  const out = names.map((n, i) => {
    const [ref] = ensureTags(ctx.state, entity, [findTag(ctx.state, entity, n.name) ? { name: n.name } : { name: n.name, color: n.color }]);
    return { id: ref!.id, name: ref!.name, request_id: requestIdOf(items[i], i) };
  });
  return hal({ _total_items: out.length, _embedded: { tags: out } });
}
