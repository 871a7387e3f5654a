/**
 * Validation of write bodies (fact sheet §5.3–§5.5, §6, §8, §11): types are checked ("This value should be
 * of type int."), references must exist ("NotSupportedChoice"), unknown keys are refused. Validation never
 * changes state; callers apply a batch only when every element passed, so a 400 leaves no partial write.
 */
import { type Ctx, isObject } from './context.js';
import { E, type FieldError } from './responses.js';
import type { EntityType, KCustomField, KCustomFieldValue, KCustomFieldValueItem, KTagRef, KommoState } from './types.js';

/** Reads typed fields of one body object, collecting errors under `prefix`. */
export class BodyReader {
  constructor(
    readonly obj: Record<string, unknown>,
    readonly prefix: string,
    readonly errs: FieldError[],
    allowed: readonly string[],
  ) {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) errs.push(E.extra(this.path(k)));
  }

  path(key: string): string {
    return `${this.prefix}${key}`;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  int(key: string, opts: { min?: number; nullable?: boolean } = {}): number | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null && opts.nullable) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.errs.push(E.type(this.path(key), 'int'));
      return undefined;
    }
    if (opts.min !== undefined && v < opts.min) {
      this.errs.push(E.choice(this.path(key)));
      return undefined;
    }
    return v;
  }

  str(key: string): string | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') {
      this.errs.push(E.type(this.path(key), 'string'));
      return undefined;
    }
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      this.errs.push(E.type(this.path(key), 'bool'));
      return undefined;
    }
    return v;
  }

  /** A user id that must exist (0 allowed where Kommo means "robot", §5.3). */
  user(ctx: Ctx, key: string, allowRobot = false): number | undefined {
    const v = this.int(key);
    if (v === undefined || v === null) return undefined;
    if ((allowRobot && v === 0) || ctx.state.users.has(v)) return v;
    this.errs.push(E.choice(this.path(key)));
    return undefined;
  }

  object(key: string): Record<string, unknown> | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (!isObject(v)) {
      this.errs.push(E.type(this.path(key), 'object'));
      return undefined;
    }
    return v;
  }

  array(key: string, nullable = false): unknown[] | null | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (v === null && nullable) return null;
    if (!Array.isArray(v)) {
      this.errs.push(E.type(this.path(key), 'array'));
      return undefined;
    }
    return v;
  }
}

// ---------------------------------------------------------------- custom fields (§8)

export interface CfChange {
  def: KCustomField;
  /** null clears the field. */
  values: KCustomFieldValueItem[] | null;
}

const TEXT_TYPES = new Set(['text', 'textarea', 'url', 'streetaddress', 'smart_address', 'legal_entity', 'tracking_data']);
const NUMBER_TYPES = new Set(['numeric', 'price', 'monetary']);
const DATE_TYPES = new Set(['date', 'date_time', 'birthday']);
const ENUM_TYPES = new Set(['select', 'radiobutton', 'category', 'multiselect']);

/**
 * Write shape `[{field_id | field_code, values: [{value} | {enum_id} | {enum_code, value}]}]` → stored read
 * shape. Unknown field → NotSupportedChoice at `custom_fields_values.N.field_id` (fixture
 * ERROR_400_validation.json). `values: null` clears a field (emulator choice; the sheet does not cover it).
 */
export function readCustomFields(ctx: Ctx, entity: EntityType, raw: unknown, path: string, errs: FieldError[]): CfChange[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw)) {
    errs.push(E.type(path, 'array'));
    return undefined;
  }
  const out: CfChange[] = [];
  raw.forEach((item, i) => {
    const p = `${path}.${i}.`;
    if (!isObject(item)) {
      errs.push(E.type(`${path}.${i}`, 'object'));
      return;
    }
    // The read shape may be sent back as is: field_name / field_type are tolerated and ignored.
    const r = new BodyReader(item, p, errs, ['field_id', 'field_code', 'values', 'field_name', 'field_type']);
    let def: KCustomField | undefined;
    const defs = ctx.state.customFields[entity];
    if (r.has('field_id')) {
      const id = r.int('field_id');
      if (id === undefined || id === null) return;
      def = defs.get(id);
      if (!def) return void errs.push(E.choice(r.path('field_id')));
    } else if (r.has('field_code')) {
      const code = r.str('field_code');
      if (code === undefined) return;
      def = [...defs.values()].find((d) => d.code !== null && d.code === code.toUpperCase());
      if (!def) return void errs.push(E.choice(r.path('field_code')));
    } else {
      return void errs.push(E.blank(r.path('field_id')));
    }
    const values = r.array('values', true);
    if (values === undefined) {
      if (!r.has('values')) errs.push(E.blank(r.path('values')));
      return;
    }
    if (values === null || values.length === 0) return void out.push({ def, values: null });
    if ((def.type === 'select' || def.type === 'radiobutton' || def.type === 'category' || def.type === 'checkbox') && values.length > 1) {
      return void errs.push(E.choice(r.path('values')));
    }
    const items: KCustomFieldValueItem[] = [];
    values.forEach((v, j) => {
      const item = convertValue(def, v, `${p}values.${j}`, errs);
      if (item) items.push(item);
    });
    out.push({ def, values: items });
  });
  return out;
}

function convertValue(def: KCustomField, v: unknown, path: string, errs: FieldError[]): KCustomFieldValueItem | undefined {
  if (!isObject(v)) return void errs.push(E.type(path, 'object'));
  const r = new BodyReader(v, `${path}.`, errs, ['value', 'enum_id', 'enum_code', 'enum']);
  const value = v.value;
  if (ENUM_TYPES.has(def.type)) {
    const enums = def.enums ?? [];
    const enumId = r.has('enum_id') ? r.int('enum_id') : undefined;
    const e = r.has('enum_id')
      ? enums.find((x) => x.id === enumId)
      : typeof value === 'string' || typeof value === 'number'
        ? enums.find((x) => x.value.toLowerCase() === String(value).trim().toLowerCase())
        : undefined;
    if (!e) return void errs.push(E.choice(r.path(r.has('enum_id') ? 'enum_id' : 'value')));
    return { value: e.value, enum_id: e.id };
  }
  if (def.type === 'multitext') {
    if (typeof value !== 'string' && typeof value !== 'number') return void errs.push(E.type(r.path('value'), 'string'));
    const enums = def.enums ?? [];
    const code = r.has('enum_code') ? r.str('enum_code') : r.has('enum') ? r.str('enum') : undefined;
    const enumId = r.has('enum_id') ? r.int('enum_id') : undefined;
    const e = r.has('enum_id') ? enums.find((x) => x.id === enumId) : code !== undefined ? enums.find((x) => x.value === code.toUpperCase()) : enums[0];
    if (!e) return void errs.push(E.choice(r.path(r.has('enum_id') ? 'enum_id' : 'enum_code')));
    return { value: String(value), enum_id: e.id, enum: e.value };
  }
  if (r.has('enum_id') || r.has('enum_code') || r.has('enum')) return void errs.push(E.extra(r.path(r.has('enum_id') ? 'enum_id' : 'enum_code')));
  if (NUMBER_TYPES.has(def.type)) {
    // Numeric values are kept as strings, as Kommo stores them (UNVERIFIED: the sheet shows no numeric read).
    if (typeof value === 'number' && Number.isFinite(value)) return { value: String(value) };
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return { value: value.trim() };
    return void errs.push(E.type(r.path('value'), 'int'));
  }
  if (DATE_TYPES.has(def.type)) {
    // §8: Unix timestamps (RFC-3339 strings are UNVERIFIED and refused here).
    if (typeof value === 'number' && Number.isInteger(value)) return { value };
    if (typeof value === 'string' && /^\d+$/.test(value)) return { value: Number(value) };
    return void errs.push(E.type(r.path('value'), 'int'));
  }
  if (def.type === 'checkbox') {
    if (typeof value === 'boolean') return { value };
    return void errs.push(E.type(r.path('value'), 'bool'));
  }
  if (TEXT_TYPES.has(def.type)) {
    if (typeof value === 'string' || typeof value === 'number') return { value: String(value) };
    return void errs.push(E.type(r.path('value'), 'string'));
  }
  return void errs.push(E.choice(r.path('value')));
}

/** Sent fields replace their values; fields not sent are untouched (§5.4). */
export function mergeCustomFields(existing: KCustomFieldValue[] | null, changes: CfChange[]): KCustomFieldValue[] | null {
  const out = (existing ?? []).map((f) => ({ ...f, values: [...f.values] }));
  for (const c of changes) {
    const i = out.findIndex((f) => f.field_id === c.def.id);
    if (i >= 0) out.splice(i, 1);
    if (c.values && c.values.length) {
      const entry: KCustomFieldValue = { field_id: c.def.id, field_name: c.def.name, field_code: c.def.code, field_type: c.def.type, values: c.values };
      if (i >= 0) out.splice(i, 0, entry);
      else out.push(entry);
    }
  }
  return out.length ? out : null;
}

// ---------------------------------------------------------------- tags (§5.4, §9)

export type TagPlan = Array<{ id?: number; name?: string; color?: string | null }>;

/** `[{id} | {name}]`; ids must exist for the entity type (tag ids are per entity, §9). */
export function readTags(
  ctx: Ctx,
  entity: EntityType,
  raw: unknown,
  path: string,
  errs: FieldError[],
  opts: { nullable?: boolean } = {},
): TagPlan | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === null && opts.nullable) return null;
  if (!Array.isArray(raw)) return void errs.push(E.type(path, 'array'));
  const plan: TagPlan = [];
  raw.forEach((t, i) => {
    if (!isObject(t)) return void errs.push(E.type(`${path}.${i}`, 'object'));
    const r = new BodyReader(t, `${path}.${i}.`, errs, ['id', 'name', 'color']);
    if (r.has('id')) {
      const id = r.int('id');
      if (typeof id === 'number' && !ctx.state.tags[entity].has(id)) errs.push(E.choice(r.path('id')));
      if (typeof id === 'number') plan.push({ id });
      return;
    }
    const name = r.str('name');
    if (name === undefined) return void (r.has('name') || errs.push(E.blank(r.path('name'))));
    if (!name.trim()) return void errs.push(E.blank(r.path('name')));
    plan.push({ name: name.trim(), color: typeof t.color === 'string' ? t.color : null });
  });
  return plan;
}

/** Resolves a validated plan to tag refs, creating tags that do not exist yet (by name, case-insensitive). */
export function ensureTags(s: KommoState, entity: EntityType, plan: TagPlan): KTagRef[] {
  const out = new Map<number, KTagRef>();
  for (const p of plan) {
    let tag = p.id !== undefined ? s.tags[entity].get(p.id) : findTag(s, entity, p.name!);
    if (!tag) {
      const id = s.nextId.tag++;
      tag = { id, name: p.name!, color: p.color ?? null, entity };
      s.tags[entity].set(id, tag);
    }
    out.set(tag.id, { id: tag.id, name: tag.name, color: tag.color });
  }
  return [...out.values()];
}

export function findTag(s: KommoState, entity: EntityType, name: string) {
  const n = name.trim().toLowerCase();
  return [...s.tags[entity].values()].find((t) => t.name.toLowerCase() === n);
}

/** Applies `_embedded.tags` (replace; null detaches all), then `tags_to_add` / `tags_to_delete` (§5.4). */
export function applyTags(s: KommoState, entity: EntityType, current: KTagRef[], replace: TagPlan | null | undefined, add?: TagPlan, del?: TagPlan): KTagRef[] {
  let tags = replace === undefined ? current : replace === null ? [] : ensureTags(s, entity, replace);
  if (add?.length) {
    for (const t of ensureTags(s, entity, add)) if (!tags.some((x) => x.id === t.id)) tags = [...tags, t];
  }
  if (del?.length) {
    tags = tags.filter((t) => !del.some((d) => (d.id !== undefined ? d.id === t.id : d.name!.toLowerCase() === t.name.toLowerCase())));
  }
  return tags;
}
