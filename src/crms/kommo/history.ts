/**
 * A Kommo record's history (get_record_history) from the change log `GET /api/v4/events` (fact sheet §9:
 * `filter[entity]` + `filter[entity_id]`, at most 100 per page: the RU doc says 100, the EN doc 250, the
 * stricter is used), newest first, one sentence per entry with names beside ids from the cached metadata
 * (pipelines and stages, users, custom fields). `created_by: 0` is a robot or automation
 * (events-calls-bulk-hosting.md 2.1). Values quoted from the CRM are untrusted text, cut short.
 */
import { z } from 'zod';
import { CrmError } from '../../domain/errors.js';
import type { HistoryEntry, RecordHistory, RecordHistoryQuery } from '../../domain/history.js';
import { validationError } from '../../domain/errors.js';
import type { CallContext } from '../types.js';
import { toId } from './ids.js';
import { iso, recordUrl, type Lookups } from './map.js';
import type { KommoParts } from './metadata.js';
import { rawEntity, rawLead } from './records.js';

/** §9: the events page cap. */
export const EVENTS_PAGE_MAX = 100;

const KEventRow = z.looseObject({
  id: z.union([z.string(), z.number()]),
  type: z.string(),
  entity_id: z.number().nullish(),
  entity_type: z.string().nullish(),
  created_by: z.number().nullish(),
  created_at: z.number().nullish(),
  value_after: z.array(z.unknown()).nullish(),
  value_before: z.array(z.unknown()).nullish(),
});
type KEventRow = z.infer<typeof KEventRow>;

type Val = Record<string, Record<string, unknown> | undefined>;
const first = (v: unknown[] | null | undefined): Val => ((v ?? [])[0] ?? {}) as Val;
const short = (s: unknown) => (typeof s === 'string' || typeof s === 'number' ? String(s).slice(0, 200) : '');
const q = (s: string | null) => (s === null ? 'unknown' : `"${s}"`);

interface Names {
  l: Lookups;
  fields: Map<number, string>;
}

function stage(n: Names, v: Record<string, unknown> | undefined): { id: number; name: string | null; pipeline: string | null } | null {
  if (!v || typeof v.id !== 'number') return null;
  const p = typeof v.pipeline_id === 'number' ? n.l.pipelines.get(v.pipeline_id) : undefined;
  const s = p?._embedded?.statuses?.find((x) => x.id === v.id);
  return { id: v.id, name: s?.name ?? null, pipeline: p?.name ?? null };
}

function user(n: Names, id: unknown): { id: number; name: string | null } | null {
  if (typeof id !== 'number') return null;
  if (id === 0) return { id: 0, name: 'robot' };
  return { id, name: n.l.users.get(id)?.name ?? null };
}

function entry(n: Names, e: KEventRow): HistoryEntry {
  const by = e.created_by === undefined || e.created_by === null ? null : user(n, e.created_by);
  const who = by ? (by.id === 0 ? ' by a robot' : ` by ${by.name ?? `user ${by.id}`}`) : '';
  const after = first(e.value_after);
  const before = first(e.value_before);
  const at = iso(e.created_at);
  const base = { at, by };
  if (e.type === 'lead_status_changed') {
    const to = stage(n, after.lead_status);
    const from = stage(n, before.lead_status);
    const label = (s: typeof to, other: typeof to) =>
      s ? `${s.pipeline && other && other.pipeline !== s.pipeline ? `${s.pipeline} / ` : ''}${s.name ?? `stage ${s.id}`}` : 'unknown';
    return {
      ...base,
      type: 'stage_changed',
      text: `stage moved from ${label(from, to)} to ${label(to, from)}${who}`,
      from: from ? { id: from.id, name: from.name } : null,
      to: to ? { id: to.id, name: to.name } : null,
    };
  }
  if (e.type === 'entity_responsible_changed') {
    const from = user(n, before.responsible_user?.id);
    const to = user(n, after.responsible_user?.id);
    const name = (u: typeof to) => (u ? (u.name ?? `user ${u.id}`) : 'nobody');
    return { ...base, type: 'responsible_changed', text: `responsible changed from ${name(from)} to ${name(to)}${who}`, from, to };
  }
  const cf = /^custom_field_(\d+)_value_changed$/.exec(e.type);
  if (cf || e.type === 'custom_field_value_changed') {
    const id = cf ? Number(cf[1]) : undefined;
    const field = id !== undefined ? (n.fields.get(id) ?? `field ${id}`) : 'a field';
    const value = after.custom_field_value;
    return { ...base, type: 'field_changed', text: `${field} changed to ${q(value ? short(value.text ?? value.enum_id) : null)}${who}` };
  }
  if (e.type === 'name_field_changed') return { ...base, type: 'field_changed', text: `name changed to ${q(short(after.name_field_value?.name))}${who}` };
  if (e.type === 'sale_field_changed')
    return {
      ...base,
      type: 'field_changed',
      text: `price changed from ${short(before.sale_field_value?.sale) || '0'} to ${short(after.sale_field_value?.sale) || '0'}${who}`,
    };
  const m = /^(lead|contact|company|customer)_(added|deleted|restored)$/.exec(e.type);
  if (m) return { ...base, type: m[2]!, text: `${m[1]} ${m[2] === 'added' ? 'created' : m[2]}${who}` };
  const tag = /^entity_tag_(added|deleted)$/.exec(e.type);
  if (tag)
    return { ...base, type: `tag_${tag[1]}`, text: `tag ${q(short(after.tag?.name ?? before.tag?.name))} ${tag[1] === 'added' ? 'added' : 'removed'}${who}` };
  if (/_note_added$/.test(e.type) || e.type === 'common_note_added') return { ...base, type: 'note_added', text: `note added${who}` };
  return { ...base, type: e.type, text: `${e.type.replace(/_/g, ' ')}${who}` };
}

export async function recordHistory(k: KommoParts, ctx: CallContext, query: RecordHistoryQuery): Promise<RecordHistory> {
  if (query.entity === 'deal') throw validationError('entity: Kommo has no deals; use "lead".');
  const id = toId(query.id, 'id');
  const plural = query.entity === 'company' ? 'companies' : (`${query.entity}s` as 'leads' | 'contacts');
  // The record first: it must exist (not_found otherwise, nothing else sent), and it gives the name.
  const record =
    query.entity === 'lead'
      ? await rawLead(k, ctx, id)
      : await rawEntity(k, ctx, plural as 'contacts' | 'companies', id, query.entity === 'contact' ? 'leads' : 'contacts');
  const params: Array<[string, string]> = [
    ['filter[entity]', query.entity],
    ['filter[entity_id]', String(id)],
  ];
  const page = await k.api.listPage(ctx, '/api/v4/events', 'events', KEventRow, params, Math.min(query.limit, EVENTS_PAGE_MAX), query.cursor);
  const [l, fields] = await Promise.all([
    k.meta.lookups(ctx),
    k.meta.fields(ctx, plural).catch((err: unknown) => {
      if (err instanceof CrmError) return [];
      throw err;
    }),
  ]);
  const names: Names = { l, fields: new Map(fields.map((f) => [f.id, f.name])) };
  return {
    entity: query.entity,
    id,
    name: record.name ?? null,
    url: recordUrl(l.web, query.entity, id),
    entries: page.items.map((e) => entry(names, e)),
    has_more: page.has_more,
    cursor: page.cursor,
  };
}
