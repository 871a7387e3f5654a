/**
 * `batch` (fact sheet §4.2): `cmd` as a map or an array of `method?query` strings (query in PHP bracket form),
 * `halt`, `$result[key][…]` (and `$next`, `$total`, `$time`, `$error`) references, at most 50 commands run,
 * the rest answered with ERROR_BATCH_LENGTH_EXCEEDED inside a 200 response; empty maps serialise as `[]`.
 */
import { parsePhpQuery } from '../harness.js';
import type { MethodResult } from './context.js';
import { BxError, errors } from './errors.js';
import { flag, foldKeys, isObject, type Params } from './params.js';
import type { BxTime } from './time.js';

export const BATCH_MAX_LENGTH = 50;

export interface CommandOutcome {
  res: MethodResult;
  time: BxTime;
}

/** Runs one command (throws BxError for a per-command error). */
export type CommandRunner = (method: string, params: Params) => CommandOutcome;

interface Maps {
  result: Record<string, unknown>;
  error: Record<string, { error: string; error_description: string }>;
  total: Record<string, number>;
  next: Record<string, number>;
  time: Record<string, BxTime>;
}

/** PHP serialises an empty array as `[]` and a 0..n-1 keyed one as a JSON list (§3, §4.2). */
export function phpArray(map: Record<string, unknown>): unknown {
  const keys = Object.keys(map);
  if (keys.length === 0) return [];
  if (keys.every((k, i) => k === String(i))) return keys.map((k) => map[k]);
  return map;
}

const REF = /\$(result|next|total|time|error)((?:\[[^\]\s]*\])+)/gi;

function lookup(maps: Maps, kind: string, path: string): unknown {
  const root: unknown = { result: maps.result, next: maps.next, total: maps.total, time: maps.time, error: maps.error }[kind.toLowerCase()];
  let node = root;
  for (const m of path.matchAll(/\[([^\]]*)\]/g)) {
    const k = m[1]!;
    // The walk stops at the last existing level when a key is missing, without an error (§4.2).
    if (Array.isArray(node) && /^\d+$/.test(k) && Number(k) < node.length) node = node[Number(k)];
    else if (isObject(node) && Object.prototype.hasOwnProperty.call(node, k)) node = node[k];
    else break;
  }
  return node;
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? '1' : '';
  return undefined;
}

/** Substitutes references in one string: a whole-value reference inserts the value as is (§4.2). */
function substitute(value: string, maps: Maps): unknown {
  const whole = new RegExp(`^${REF.source}$`, 'i').exec(value.trim());
  if (whole) return structuredClone(lookup(maps, whole[1]!, whole[2]!));
  return value.replace(REF, (all, kind: string, path: string) => scalarText(lookup(maps, kind, path)) ?? all);
}

function substituteDeep(v: unknown, maps: Maps): unknown {
  if (typeof v === 'string') return v.includes('$') ? substitute(v, maps) : v;
  if (Array.isArray(v)) return v.map((x) => substituteDeep(x, maps));
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const key = k.includes('$') ? String(scalarText(substitute(k, maps)) ?? k) : k;
      out[key] = substituteDeep(x, maps);
    }
    return out;
  }
  return v;
}

/** `method?query` → method (lower-cased, §1.1) and parameters parsed like PHP `parse_str`. */
export function parseCommand(cmd: string, maps: Maps): { method: string; params: Params } {
  const q = cmd.indexOf('?');
  const method = (q < 0 ? cmd : cmd.slice(0, q))
    .trim()
    .replace(/\.json$/i, '')
    .toLowerCase();
  const query = q < 0 ? '' : cmd.slice(q + 1);
  const params = substituteDeep(parsePhpQuery(new URLSearchParams(query).entries()), maps) as Params;
  // The outer call's auth applies to every command (§4.2).
  delete params.auth;
  return { method, params };
}

export function runBatch(params: Params, run: CommandRunner): MethodResult {
  // The core's methodsBatch starts with array_change_key_case(…, CASE_UPPER): `cmd`, `CMD` and `Cmd` are one
  // name, and of two the later wins (§4.2).
  const p = foldKeys(params);
  const cmd = p.CMD;
  if (cmd !== undefined && !Array.isArray(cmd) && !isObject(cmd))
    throw errors.unsupported('batch: cmd must be a map or an array of "method?query" strings (§4.2).');
  const halt = flag(p.HALT, false);
  const entries: Array<[string, unknown]> = Array.isArray(cmd) ? cmd.map((v, i) => [String(i), v]) : Object.entries(cmd ?? {});
  const maps: Maps = { result: {}, error: {}, total: {}, next: {}, time: {} };
  let count = 0;
  for (const [key, value] of entries) {
    // Non-string entries are skipped silently (§4.2).
    if (typeof value !== 'string') continue;
    if (count++ < BATCH_MAX_LENGTH) {
      try {
        const { method, params } = parseCommand(value, maps);
        const out = run(method, params);
        maps.result[key] = out.res.result;
        if (out.res.total !== undefined) maps.total[key] = out.res.total;
        if (out.res.next !== undefined) maps.next[key] = out.res.next;
        maps.time[key] = out.time;
      } catch (e) {
        if (!(e instanceof BxError)) throw e;
        maps.error[key] = e.body();
      }
    } else {
      maps.error[key] = errors.batchLengthExceeded().body();
    }
    if (maps.error[key] && halt) break;
  }
  return {
    result: {
      result: phpArray(maps.result),
      result_error: phpArray(maps.error),
      result_total: phpArray(maps.total),
      result_next: phpArray(maps.next),
      result_time: phpArray(maps.time),
    },
  };
}
