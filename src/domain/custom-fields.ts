/**
 * Custom-field resolution both CRMs share: an input names a field (by id, code or name), its value is one or
 * several, an option is given by id or by label, a numeric field takes numbers. What differs per CRM is how a
 * field is named (Kommo: numeric id or a code such as PHONE; Bitrix24: `UF_CRM_*`, which is both id and
 * code), the words of two messages, and the write shape: that is the `FieldDialect` each provider passes.
 */
import { validationError } from './errors.js';
import type { CustomFieldInput } from './inputs.js';
import type { CustomFieldDef, Id } from './records.js';

export type FieldScalar = string | number | boolean;

/** One value as the CRM will take it: an option id, a number, or the value for the provider to convert. */
export type ResolvedValue = { option: Id } | { number: number } | { value: FieldScalar };

export interface ResolvedField {
  def: CustomFieldDef;
  /** `custom_fields[i]`, for the provider's own conversion messages. */
  where: string;
  values: ResolvedValue[];
}

export interface FieldDialect {
  /** Whether the input names a field at all. */
  names(input: CustomFieldInput): boolean;
  /** The definition the input names, if any. */
  find(defs: CustomFieldDef[], input: CustomFieldInput): CustomFieldDef | undefined;
  /** What to say (after `custom_fields[i]: `) when the input names no field. */
  missing: string;
  /** What to say (after `custom_fields[i]: `) when no definition matches. */
  unknown(input: CustomFieldInput, defs: CustomFieldDef[]): string;
  /** Whether a value given as an id is this option's id (ids compare differently per CRM). */
  isOptionId(optionId: Id, v: FieldScalar): boolean;
  /** The field types whose values are numbers. */
  numeric: readonly string[];
}

/** Resolves custom-field inputs against the definitions; throws a validation error naming the input. */
export function resolveCustomFields(defs: CustomFieldDef[], inputs: CustomFieldInput[], d: FieldDialect): ResolvedField[] {
  return inputs.map((input, i) => {
    const where = `custom_fields[${i}]`;
    const def = d.find(defs, input);
    if (!d.names(input)) throw validationError(`${where}: ${d.missing}`);
    if (!def) throw validationError(`${where}: ${d.unknown(input, defs)}`);
    const given = Array.isArray(input.value) ? input.value : [input.value];
    const options = def.options;
    const values = given.map((v): ResolvedValue => {
      if (options?.length) {
        const opt = options.find((o) => d.isOptionId(o.id, v) || o.value.toLowerCase() === String(v).trim().toLowerCase());
        if (!opt) throw validationError(`${where}: "${String(v)}" is not an option of "${def.name}". Options: ${options.map((o) => o.value).join(', ')}.`);
        return { option: opt.id };
      }
      if (d.numeric.includes(def.type)) {
        const n = Number(v);
        if (!Number.isFinite(n)) throw validationError(`${where}: "${def.name}" takes a number, got ${JSON.stringify(v)}.`);
        return { number: n };
      }
      return { value: v };
    });
    return { def, where, values };
  });
}

/** A field name as people type it: case and surrounding spaces do not matter. */
export function byName(defs: CustomFieldDef[], name: string | undefined): CustomFieldDef | undefined {
  return name ? defs.find((d) => d.name.toLowerCase() === name.trim().toLowerCase()) : undefined;
}
