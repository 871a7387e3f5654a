/**
 * `GET /api/v4/events` filters beyond the plain ones (fact sheet §9; events-calls-bulk-hosting.md 2.1):
 * `filter[value_before|value_after]` with `[leads_statuses][i][pipeline_id|status_id]` (for lead_status_changed)
 * or `[responsible_user_id]` (a comma list, for entity_responsible_changed); `[custom_field_values]` and `[value]`
 * are documented but not emulated (a 400 rather than a silent match). `filter[entity_id]` takes at most 10 ids.
 */
import { isObject } from './context.js';
import type { FilterDef } from './list.js';
import { badParam } from './responses.js';
import type { KEvent } from './types.js';

const intOf = (v: unknown, path: string): number => {
  if (typeof v === 'string' && /^\d+$/.test(v.trim())) return Number(v.trim());
  throw badParam(path, 'type', 'int');
};

export function valueFilter(side: 'value_before' | 'value_after'): FilterDef<KEvent> {
  return (raw, path) => {
    if (!isObject(raw)) throw badParam(path, 'type', 'array');
    const keys = Object.keys(raw);
    if (keys.length !== 1) throw badParam(path);
    const values = (e: KEvent) => (side === 'value_before' ? e.value_before : e.value_after) as Array<Record<string, { id?: number; pipeline_id?: number }>>;
    if (keys[0] === 'leads_statuses') {
      const list = raw.leads_statuses;
      const pairs = (Array.isArray(list) ? list : isObject(list) ? Object.values(list) : []).map((p, i) => {
        if (!isObject(p) || p.pipeline_id === undefined || p.status_id === undefined) throw badParam(`${path}.leads_statuses.${i}`);
        return [intOf(p.pipeline_id, `${path}.leads_statuses.${i}.pipeline_id`), intOf(p.status_id, `${path}.leads_statuses.${i}.status_id`)] as const;
      });
      if (!pairs.length) throw badParam(`${path}.leads_statuses`, 'type', 'array');
      return (e) => values(e).some((v) => v.lead_status !== undefined && pairs.some(([p, s]) => v.lead_status!.pipeline_id === p && v.lead_status!.id === s));
    }
    if (keys[0] === 'responsible_user_id') {
      const r = raw.responsible_user_id;
      if (typeof r !== 'string') throw badParam(`${path}.responsible_user_id`, 'type', 'string');
      const ids = new Set(r.split(',').map((x, i) => intOf(x, `${path}.responsible_user_id.${i}`)));
      return (e) => values(e).some((v) => v.responsible_user?.id !== undefined && ids.has(v.responsible_user.id));
    }
    throw badParam(`${path}.${keys[0]}`);
  };
}

/** §9: at most 10 entity ids. */
export function entityIdCount(raw: unknown): number {
  return typeof raw === 'string' ? raw.split(',').length : Array.isArray(raw) ? raw.length : isObject(raw) ? Object.keys(raw).length : 0;
}
