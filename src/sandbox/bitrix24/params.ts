/**
 * Request parameters (fact sheet §1.2–§1.4): GET query, JSON body, `application/x-www-form-urlencoded` and
 * `multipart/form-data`, all with PHP bracket flattening; and the CRM compat rule that top-level parameter
 * names may be spelled `fields`, `FIELDS`, `Fields` or `arFields`. When several spellings are sent, the one
 * the portal looks at first wins, as in the CRM core's `CCrmRestHelper` (§1.4): list and object parameters
 * (`fields`, `filter`, `order`, `select`) are looked up UPPER case first, scalars lower case first, and the
 * record id as `ID` before `id`. The batch handler instead folds every name to upper case (foldKeys, §4.2).
 */
import type { EmuRequest } from '../harness.js';
import { parsePhpQuery } from '../harness.js';
import { errors } from './errors.js';

export type Params = Record<string, unknown>;

/** Query and body merged; the body wins on a clash (merge rules are UNVERIFIED, §1.2). */
export function readParams(req: EmuRequest): Params {
  const query = parsePhpQuery(req.url.searchParams.entries());
  const body = readBody(req);
  return { ...query, ...body };
}

function readBody(req: EmuRequest): Params {
  const raw = req.rawBody;
  if (!raw || raw.trim() === '') return {};
  if (req.method !== 'POST') throw errors.unsupported(`A ${req.method} request with a body is not emulated; use POST.`);
  const ct = String(req.headers['content-type'] ?? '').toLowerCase();
  if (ct.startsWith('application/json')) {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw errors.unsupported('The JSON body does not parse.');
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw errors.unsupported('The JSON body must be an object of parameters.');
    return v as Params;
  }
  if (ct.startsWith('application/x-www-form-urlencoded')) return parsePhpQuery(new URLSearchParams(raw).entries());
  if (ct.startsWith('multipart/form-data')) {
    const m = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(String(req.headers['content-type']));
    const boundary = m?.[1] ?? m?.[2];
    if (!boundary) throw errors.unsupported('multipart/form-data without a boundary.');
    return parsePhpQuery(parseMultipart(raw, boundary.trim()));
  }
  throw errors.unsupported(`Content-Type "${ct || '(none)'}" is not emulated: send JSON, form-urlencoded or multipart.`, 415);
}

/** Text fields of a multipart body as (name, value) pairs; part names keep their PHP brackets (§1.3). */
export function parseMultipart(raw: string, boundary: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const delim = `--${boundary}`;
  const chunks = raw.split(delim);
  for (const chunk of chunks.slice(1)) {
    if (chunk.startsWith('--')) break;
    const part = chunk.replace(/^\r?\n/, '');
    const sep = part.search(/\r?\n\r?\n/);
    if (sep < 0) throw errors.unsupported('A multipart part without headers.');
    const head = part.slice(0, sep);
    const bodyStart = part.slice(sep).match(/^\r?\n\r?\n/)![0].length + sep;
    const value = part.slice(bodyStart).replace(/\r?\n$/, '');
    const name = /content-disposition:[^\n]*\bname="([^"]*)"/i.exec(head)?.[1];
    if (name === undefined) throw errors.unsupported('A multipart part without a name.');
    out.push([name, value]);
  }
  return out;
}

/**
 * Spellings the CRM compat methods accept for one top-level parameter (§1.4), in the order the core tries
 * them: `resolveArrayParam` (lists, objects) UPPER, lower, Capitalised, arHungarian; `resolveParam`
 * (scalars) lower (here: as named), UPPER, Capitalised.
 */
export function spellings(name: string, kind: 'scalar' | 'array' = 'scalar'): string[] {
  const cap = name.charAt(0).toUpperCase() + name.slice(1);
  if (kind === 'array') return [name.toUpperCase(), name, name.toLowerCase(), cap, `ar${cap}`];
  return [name, name.toUpperCase(), name.toLowerCase(), cap, `ar${cap}`];
}

/** The first present spelling of a top-level parameter. */
export function param(p: Params, name: string, onlyExact = false, kind: 'scalar' | 'array' = 'scalar'): unknown {
  if (onlyExact) return p[name];
  for (const k of spellings(name, kind)) if (p[k] !== undefined) return p[k];
  return undefined;
}

/**
 * `array_change_key_case($params, CASE_UPPER)` as the batch handler runs it (§4.2): every top-level name
 * upper-cased (ASCII only, as PHP does); when two names fold to one, the later wins.
 */
export function foldKeys(p: Params): Params {
  const out: Params = {};
  for (const [k, v] of Object.entries(p)) out[k.replace(/[a-z]+/g, (s) => s.toUpperCase())] = v;
  return out;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object-or-array parameter (PHP arrays arrive as either), or a CRM "must be array" error. */
export function objectParam(p: Params, name: string, required = false): Record<string, unknown> | undefined {
  const v = param(p, name, false, 'array');
  if (v === undefined || v === '') {
    if (required) throw errors.mustBeArray(name);
    return undefined;
  }
  if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), x]));
  if (!isObject(v)) throw errors.mustBeArray(name);
  return v;
}

/** A list parameter such as `select` (array, or an object with numeric keys from form data). */
export function listParam(p: Params, name: string): string[] | undefined {
  const v = param(p, name, false, 'array');
  if (v === undefined || v === '') return undefined;
  if (Array.isArray(v)) return v.map(String);
  if (isObject(v)) return Object.values(v).map(String);
  if (typeof v === 'string') return [v];
  throw errors.mustBeArray(name);
}

/**
 * A positive integer id, or the CRM "ID is not defined or invalid." error (§6). The record id is read as
 * `ID` before `id` (the core's `resolveEntityID`); other ids as scalars.
 */
export function idParam(p: Params, name = 'id'): number {
  const v = name === 'id' ? (p.ID ?? p.id ?? param(p, name)) : param(p, name);
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw errors.badId();
  return n;
}

/** PHP-ish truthiness for flags that arrive as 1/0, "Y"/"N", true/false or strings. */
export function flag(v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  const s = String(v).trim().toLowerCase();
  if (['1', 'y', 'true', 'yes'].includes(s)) return true;
  if (['0', 'n', 'false', 'no'].includes(s)) return false;
  return fallback;
}
