/**
 * A strict reader of the form bodies Kommo's account webhooks send (fact sheet §10.2): `application/x-www-form-
 * urlencoded` with PHP-bracket keys, `leads[status][0][old_status_id]=142` → `{leads: {status: {0: {…}}}}`.
 * Strict, because the body comes from the network unauthenticated until its account is checked: a key that is
 * not `name[part]…`, a percent-escape that does not decode, a key used both as a value and as a group, a prototype
 * key, a depth or a number of pairs past the bounds: each is a MalformedForm, never a partial result.
 */

export class MalformedForm extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedForm';
  }
}

/** A decoded group: its keys in arrival order (numeric keys stay strings, `items()` lists them in order). */
export type FormValue = string | FormGroup;
export interface FormGroup {
  [key: string]: FormValue;
}

const MAX_PAIRS = 20_000;
const MAX_DEPTH = 10;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const PART = /\[([A-Za-z0-9_-]{0,64})\]/y;
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new MalformedForm(`${what} is not valid percent-encoding`);
  }
}

/** The key's parts: `leads[status][0][id]` → ['leads', 'status', '0', 'id']; `[]` appends (''). */
function keyParts(key: string): string[] {
  const open = key.indexOf('[');
  const name = open < 0 ? key : key.slice(0, open);
  if (!NAME.test(name)) throw new MalformedForm('a key is not a form field name');
  const parts = [name];
  if (open < 0) return parts;
  PART.lastIndex = open;
  while (PART.lastIndex < key.length) {
    const m = PART.exec(key);
    if (!m) throw new MalformedForm('a key has unbalanced or unexpected brackets');
    parts.push(m[1]!);
    if (parts.length > MAX_DEPTH) throw new MalformedForm(`a key is nested deeper than ${MAX_DEPTH}`);
  }
  return parts;
}

function child(group: FormGroup, k: string): FormGroup {
  const cur = Object.hasOwn(group, k) ? group[k] : undefined;
  if (typeof cur === 'string') throw new MalformedForm('a key is used both as a value and as a group');
  if (cur) return cur;
  const g = Object.create(null) as FormGroup;
  group[k] = g;
  return g;
}

/** Parses a whole body; an empty body is malformed (a delivery always names its account). */
export function parsePhpForm(body: string): FormGroup {
  const root = Object.create(null) as FormGroup;
  const trimmed = body.trim();
  if (!trimmed) throw new MalformedForm('the body is empty');
  const pairs = trimmed.split('&');
  if (pairs.length > MAX_PAIRS) throw new MalformedForm(`the body has more than ${MAX_PAIRS} fields`);
  for (const pair of pairs) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const key = decode(rawKey, 'a key');
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1), 'a value');
    const parts = keyParts(key);
    if (parts.some((p) => FORBIDDEN.has(p))) throw new MalformedForm('a key names an object prototype');
    let g = root;
    for (let i = 0; i < parts.length - 1; i++) {
      let p = parts[i]!;
      if (p === '') p = String(Object.keys(g).length);
      g = child(g, p);
    }
    let last = parts[parts.length - 1]!;
    if (last === '') last = String(Object.keys(g).length);
    if (Object.hasOwn(g, last) && typeof g[last] !== 'string') throw new MalformedForm('a key is used both as a value and as a group');
    g[last] = value;
  }
  return root;
}

/** A group's members that are groups, in numeric key order (a PHP list of items). */
export function items(v: FormValue | undefined): FormGroup[] {
  if (!v || typeof v === 'string') return [];
  return Object.keys(v)
    .sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))
    .map((k) => v[k]!)
    .filter((x): x is FormGroup => typeof x !== 'string');
}

export function str(g: FormGroup | undefined, k: string): string | undefined {
  const v = g && Object.hasOwn(g, k) ? g[k] : undefined;
  return typeof v === 'string' ? v : undefined;
}

export function group(g: FormGroup | undefined, k: string): FormGroup | undefined {
  const v = g && Object.hasOwn(g, k) ? g[k] : undefined;
  return v && typeof v !== 'string' ? v : undefined;
}
