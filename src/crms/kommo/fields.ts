/** Custom-field inputs into Kommo's write shape (`custom_fields_values`), over the shared resolution. */
import { byName, resolveCustomFields, type FieldDialect } from '../../domain/custom-fields.js';
import { toolRef } from '../../domain/tool-hints.js';
import type { CallContext, CustomFieldInput } from '../types.js';
import type { EntityPath } from './api.js';
import { toUnix } from './ids.js';
import { mapFieldDef, type KCustomFieldWrite } from './map.js';
import type { KommoParts } from './metadata.js';

/** Kommo names a field by its numeric id, its code (PHONE, EMAIL, …) or its name. */
function dialect(entity: EntityPath): FieldDialect {
  return {
    names: (input) => !!(input.field_id || input.field_code || input.field_name),
    find: (defs, input) =>
      input.field_id !== undefined
        ? defs.find((d) => d.id === Number(input.field_id))
        : input.field_code
          ? defs.find((d) => typeof d.code === 'string' && d.code.toLowerCase() === input.field_code!.toLowerCase())
          : byName(defs, input.field_name),
    missing: 'give field_id, field_code or field_name.',
    unknown: (input, defs) =>
      `no ${entity} custom field ${JSON.stringify(input.field_id ?? input.field_code ?? input.field_name)}. Known fields: ${defs
        .slice(0, 30)
        .map((d) => `${d.name} (${d.id})`)
        .join(', ')}. The full list: ${toolRef('get_custom_fields')}.`,
    isOptionId: (id, v) => id === Number(v),
    numeric: ['numeric', 'price', 'monetary'],
  };
}

/** Resolves custom field inputs (by id, code or name; enum options by label) into Kommo's write shape. */
export async function resolveFields(
  k: KommoParts,
  ctx: CallContext,
  entity: EntityPath,
  inputs: CustomFieldInput[] | undefined,
): Promise<KCustomFieldWrite[] | undefined> {
  if (!inputs?.length) return undefined;
  const defs = (await k.meta.fields(ctx, entity)).map((f) => mapFieldDef(f, entity));
  return resolveCustomFields(defs, inputs, dialect(entity)).map(({ def, where, values }) => ({
    field_id: Number(def.id),
    values: values.map((v) => {
      if ('option' in v) return { enum_id: Number(v.option) };
      if ('number' in v) return { value: v.number };
      if (def.type === 'date' || def.type === 'date_time' || def.type === 'birthday') return { value: toUnix(String(v.value), where) };
      if (def.type === 'checkbox') return { value: v.value === true || v.value === 'true' || v.value === 1 };
      return { value: String(v.value) };
    }),
  }));
}
