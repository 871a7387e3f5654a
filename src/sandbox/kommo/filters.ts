/** The `GET /leads|contacts|companies` list specs: filters, order and `with` per entity (§5.1, §6). */
import { isObject, type KommoBehaviour } from './context.js';
import { type FilterDef, type ListSpec, intFilter, rangeFilter, statusesFilter, stringFilter } from './list.js';
import { matchesQuery } from './render.js';
import { badParam } from './responses.js';
import type { EntityType, KCompany, KContact, KCustomFieldValue, KLead, KommoState } from './types.js';

// §5.1 / §6: known `with` values per entity.
export const LEAD_WITH = ['contacts', 'only_deleted', 'loss_reason', 'is_price_modified_by_robot', 'catalog_elements', 'source_id', 'source'] as const;
export const CONTACT_WITH = ['leads', 'customers', 'catalog_elements', 'social_profiles'] as const;
export const COMPANY_WITH = ['leads', 'customers', 'contacts', 'catalog_elements'] as const;

/**
 * §5.1: `filter[custom_fields_values][{field_id}][]=value` or `[from]/[to]`. A value matches the stored
 * value text (case-insensitive) or an enum id.
 */
function cfFilter<T extends { custom_fields_values: KCustomFieldValue[] | null }>(s: KommoState, entity: EntityType): FilterDef<T> {
  return (raw, path) => {
    if (!isObject(raw)) throw badParam(path, 'type', 'array');
    const preds = Object.entries(raw).map(([fid, v]) => {
      const p = `${path}.${fid}`;
      if (!/^\d+$/.test(fid) || !s.customFields[entity].has(Number(fid))) throw badParam(p);
      const id = Number(fid);
      const valuesOf = (x: T) => (x.custom_fields_values ?? []).find((f) => f.field_id === id)?.values ?? [];
      if (isObject(v)) {
        return rangeFilter<T>((x) => {
          const n = Number(valuesOf(x)[0]?.value);
          return Number.isFinite(n) && valuesOf(x).length ? n : null;
        })(v, p);
      }
      const want = (typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined)?.map((w) => {
        if (typeof w !== 'string') throw badParam(p, 'type', 'string');
        return w.toLowerCase();
      });
      if (!want) throw badParam(p, 'type', 'array');
      return (x: T) =>
        valuesOf(x).some((val) => want.includes(String(val.value).toLowerCase()) || (val.enum_id !== undefined && want.includes(String(val.enum_id))));
    });
    return (x) => preds.every((f) => f(x));
  };
}

function common<T extends KLead | KContact | KCompany>(s: KommoState, entity: EntityType): Record<string, FilterDef<T>> {
  return {
    id: intFilter<T>((x) => x.id),
    name: stringFilter<T>((x) => x.name),
    created_by: intFilter<T>((x) => x.created_by),
    updated_by: intFilter<T>((x) => x.updated_by),
    responsible_user_id: intFilter<T>((x) => x.responsible_user_id),
    created_at: rangeFilter<T>((x) => x.created_at),
    updated_at: rangeFilter<T>((x) => x.updated_at),
    closest_task_at: rangeFilter<T>((x) => x.closest_task_at),
    custom_fields_values: cfFilter<T>(s, entity),
  };
}

export function leadSpec(
  s: KommoState,
  statusFilter: KommoBehaviour['statusFilter'] = 'pairs',
  phoneQuery: KommoBehaviour['phoneQuery'] = 'digits',
): ListSpec<KLead> {
  return {
    key: 'leads',
    filtersGated: true,
    with: LEAD_WITH,
    filters: {
      ...common<KLead>(s, 'leads'),
      price: rangeFilter((x) => x.price),
      statuses: statusesFilter<KLead>(statusFilter),
      pipeline_id: intFilter((x) => x.pipeline_id),
      closed_at: rangeFilter((x) => x.closed_at),
    },
    order: { created_at: (x) => x.created_at, updated_at: (x) => x.updated_at, id: (x) => x.id },
    query: (x, q) => matchesQuery(x, q, phoneQuery),
  };
}

export function contactSpec(s: KommoState, phoneQuery: KommoBehaviour['phoneQuery'] = 'digits'): ListSpec<KContact> {
  return {
    key: 'contacts',
    with: CONTACT_WITH,
    filters: common<KContact>(s, 'contacts'),
    filtersGated: true,
    // §6: contacts can be ordered by updated_at and id only.
    order: { updated_at: (x) => x.updated_at, id: (x) => x.id },
    query: (x, q) => matchesQuery(x, q, phoneQuery),
  };
}

export function companySpec(s: KommoState, phoneQuery: KommoBehaviour['phoneQuery'] = 'digits'): ListSpec<KCompany> {
  return {
    key: 'companies',
    with: COMPANY_WITH,
    filters: common<KCompany>(s, 'companies'),
    filtersGated: true,
    order: { updated_at: (x) => x.updated_at, id: (x) => x.id },
    query: (x, q) => matchesQuery(x, q, phoneQuery),
  };
}
