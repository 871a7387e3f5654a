/** Custom-field inputs into Bitrix24 `UF_CRM_*` fields, over the shared resolution (services/custom-fields.ts). */
import { byName, resolveCustomFields, type FieldDialect } from '../../domain/custom-fields.js';
import type { CallContext, CustomFieldInput } from '../types.js';
import { customFields, type BitrixParts, type Entity } from './metadata.js';

/** A Bitrix24 user field's name is its id and its code (`UF_CRM_…`, any case); or it is named by its label. */
function dialect(entity: Entity): FieldDialect {
  const key = (input: CustomFieldInput) => String(input.field_id ?? input.field_code ?? '').toUpperCase();
  return {
    names: (input) => !!key(input) || !!input.field_name,
    find: (defs, input) => (key(input) ? defs.find((d) => String(d.id).toUpperCase() === key(input)) : byName(defs, input.field_name)),
    missing: 'give field_id (UF_CRM_…), field_code or field_name.',
    unknown: (input, defs) =>
      `no ${entity} user field ${JSON.stringify(input.field_id ?? input.field_code ?? input.field_name)}. Known: ${defs.map((d) => `${d.name} (${d.id})`).join(', ') || 'none'}.`,
    isOptionId: (id, v) => String(id) === String(v),
    numeric: ['double', 'integer'],
  };
}

export async function resolveFields(
  b: BitrixParts,
  ctx: CallContext,
  entity: Entity,
  inputs: CustomFieldInput[] | undefined,
): Promise<Record<string, unknown>> {
  if (!inputs?.length) return {};
  const plural = { lead: 'leads', deal: 'deals', contact: 'contacts', company: 'companies' } as const;
  const defs = await customFields(b, ctx, plural[entity]);
  const out: Record<string, unknown> = {};
  for (const { def, values } of resolveCustomFields(defs, inputs, dialect(entity))) {
    const conv = values.map((v) => {
      if ('option' in v) return v.option;
      if ('number' in v) return v.number;
      if (def.type === 'boolean') return v.value === true || v.value === 'true' || v.value === 1 || v.value === 'Y' ? 'Y' : 'N';
      return String(v.value);
    });
    out[String(def.id)] = conv.length === 1 ? conv[0] : conv;
  }
  return out;
}
