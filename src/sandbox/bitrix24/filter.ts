/**
 * `filter` and `order` of list methods (fact sheet §7.3): key prefixes `>=`, `>`, `<=`, `<`, `@`, `!@`, `%`,
 * `=%`/`%=`, `!%`, `!=%`/`!%=`, `=`, `!=`, `!`; an array value without a prefix means IN. String comparisons
 * are case-insensitive (a MySQL collation, as on a portal).
 */
import { errors } from './errors.js';
import { isObject } from './params.js';
import { isDateType, isNumericType } from './schema.js';
import { parseBxDate } from './time.js';

export interface FieldAccess {
  type: string;
  /** All values of the field on a record (multi-fields and link lists have several). */
  values(rec: Record<string, unknown>): unknown[];
  /** LIKE is not allowed on directory/link fields (§7.3); the portal answers with an error. */
  noLike?: boolean;
}

export type FieldResolver = (name: string) => FieldAccess | undefined;

type Op = '>=' | '<=' | '!=%' | '!%=' | '=%' | '%=' | '!@' | '!=' | '!%' | '>' | '<' | '@' | '%' | '!' | '=';
const OPS: Op[] = ['!=%', '!%=', '>=', '<=', '=%', '%=', '!@', '!=', '!%', '>', '<', '@', '%', '!', '='];

export interface Condition {
  op: Op;
  field: string;
  access: FieldAccess;
  value: unknown;
}

export function parseFilterKey(key: string): { op: Op; field: string } {
  for (const op of OPS) {
    if (key.startsWith(op) && key.length > op.length) return { op, field: key.slice(op.length) };
  }
  return { op: '=', field: key };
}

/**
 * Compiles a filter object. Unknown fields fail loudly (the emulator does not silently ignore what it does
 * not model); `ignore` lists keys that are accepted and have no effect (e.g. CHECK_PERMISSIONS).
 */
export function compileFilter(filter: Record<string, unknown> | undefined, resolve: FieldResolver, ignore: string[] = []): Condition[] {
  if (!filter) return [];
  const out: Condition[] = [];
  for (const [key, value] of Object.entries(filter)) {
    const { op, field } = parseFilterKey(key.trim());
    const name = field.toUpperCase();
    if (ignore.includes(name)) continue;
    const access = resolve(name);
    if (!access) throw errors.unsupported(`Filter field "${field}" is not known to the emulator.`);
    if (access.noLike && op.includes('%')) throw errors.argument(`Filter operation not allowed: LIKE on ${name}`);
    out.push({ op, field: name, access, value });
  }
  return out;
}

export function matches(rec: Record<string, unknown>, conds: Condition[]): boolean {
  return conds.every((c) => matchOne(rec, c));
}

function asList(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (isObject(v)) return Object.values(v);
  return [v];
}

function matchOne(rec: Record<string, unknown>, c: Condition): boolean {
  const vals = c.access.values(rec);
  const t = c.access.type;
  const any = (pred: (x: unknown) => boolean) => (vals.length === 0 ? pred(null) : vals.some(pred));
  switch (c.op) {
    case '=':
      if (Array.isArray(c.value) || isObject(c.value)) return any((x) => asList(c.value).some((w) => eq(t, x, w)));
      return any((x) => eq(t, x, c.value));
    case '@':
      return any((x) => asList(c.value).some((w) => eq(t, x, w)));
    case '!':
    case '!=':
      return !any((x) => asList(c.value).some((w) => eq(t, x, w)));
    case '!@':
      return !any((x) => asList(c.value).some((w) => eq(t, x, w)));
    case '>':
      return any((x) => cmp(t, x, c.value) > 0);
    case '>=':
      return any((x) => cmp(t, x, c.value) >= 0);
    case '<':
      return any((x) => cmp(t, x, c.value) < 0);
    case '<=':
      return any((x) => cmp(t, x, c.value) <= 0);
    case '%':
      return any((x) => contains(x, c.value));
    case '!%':
      return !any((x) => contains(x, c.value));
    case '=%':
    case '%=':
      return any((x) => like(x, c.value));
    case '!=%':
    case '!%=':
      return !any((x) => like(x, c.value));
    default:
      return false;
  }
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === '' || v === false;
}

function boolish(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  const s = String(v ?? '').toUpperCase();
  if (['Y', '1', 'TRUE'].includes(s)) return true;
  if (['N', '0', 'FALSE', ''].includes(s)) return false;
  return undefined;
}

function eq(type: string, a: unknown, b: unknown): boolean {
  if (type === 'boolean') return boolish(a) === boolish(b);
  if (b === '' || b === null || b === undefined) return isEmpty(a);
  if (isEmpty(a)) return false;
  if (isNumericType(type)) return Number(a) === Number(b);
  if (isDateType(type)) return parseBxDate(a) === parseBxDate(b);
  return String(a).toLowerCase() === String(b).toLowerCase();
}

/** Sort/compare; empty values sort first (MySQL NULLs), and compare false against any bound. */
function cmp(type: string, a: unknown, b: unknown): number {
  if (isEmpty(a)) return Number.NaN;
  if (isNumericType(type)) return Number(a) - Number(b);
  if (isDateType(type)) {
    const x = parseBxDate(a);
    const y = parseBxDate(b);
    if (x === undefined || y === undefined) return Number.NaN;
    return x - y;
  }
  return String(a).toLowerCase().localeCompare(String(b).toLowerCase());
}

function contains(a: unknown, b: unknown): boolean {
  if (isEmpty(a)) return false;
  return String(a)
    .toLowerCase()
    .includes(String(b ?? '').toLowerCase());
}

function like(a: unknown, pattern: unknown): boolean {
  if (isEmpty(a)) return false;
  const re = String(pattern ?? '')
    .split('')
    .map((ch) => (ch === '%' ? '.*' : ch === '_' ? '.' : ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${re}$`, 'is').test(String(a));
}

export interface OrderKey {
  field: string;
  access: FieldAccess;
  desc: boolean;
}

/** `order: {FIELD: "ASC"|"DESC"}` (§7.3). */
export function compileOrder(order: Record<string, unknown> | undefined, resolve: FieldResolver): OrderKey[] {
  if (!order) return [];
  const out: OrderKey[] = [];
  for (const [field, dir] of Object.entries(order)) {
    const name = field.toUpperCase();
    const d = String(dir ?? 'ASC').toUpperCase();
    if (d !== 'ASC' && d !== 'DESC') throw errors.argument('Order direction should be one of {ASC|DESC}');
    const access = resolve(name);
    if (!access) throw errors.unsupported(`Order field "${field}" is not known to the emulator.`);
    out.push({ field: name, access, desc: d === 'DESC' });
  }
  return out;
}

export function sortRecords<T extends Record<string, unknown>>(rows: T[], keys: OrderKey[]): T[] {
  if (keys.length === 0) return rows;
  return [...rows].sort((a, b) => {
    for (const k of keys) {
      const x = k.access.values(a)[0];
      const y = k.access.values(b)[0];
      let c: number;
      if (isEmpty(x) && isEmpty(y)) c = 0;
      else if (isEmpty(x)) c = -1;
      else if (isEmpty(y)) c = 1;
      else c = cmp(k.access.type, x, y);
      if (Number.isNaN(c)) c = 0;
      if (c !== 0) return k.desc ? -c : c;
    }
    return 0;
  });
}

/** A simple accessor for a scalar field. */
export function scalar(type: string, name: string, noLike = false): FieldAccess {
  return { type, values: (r) => [r[name]], noLike };
}
