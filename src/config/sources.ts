/**
 * The config parser's building blocks: where a value comes from (the environment, a config file, or both in
 * layers) and the strict readers of booleans, numbers, lists and origins. A malformed value is a problem
 * naming its source, never a guess.
 */
import * as z from 'zod';
import { SAFE_UPDATES, type PolicyFlags, type SafeUpdate } from '../policy/policy.js';
import { SERVER_ENV as V } from './env-server.js';
import { readVar, type EnvVar } from './env-types.js';

type Env = Record<string, string | undefined>;

export const TRUE = new Set(['1', 'true', 'yes', 'on']);
export const FALSE = new Set(['0', 'false', 'no', 'off']);

/** Any case; zod's own default words (`y`, `enabled`…) are not ours. */
const BOOL = z.stringbool({ truthy: [...TRUE], falsy: [...FALSE] });
/** Digits only (no sign, point or exponent), then the row's range. */
const DIGITS = z.string().regex(/^\d+$/).transform(Number);

/** Strict boolean: anything but a plain yes/no word is an error, never a guess. */
export function parseBool(name: string, raw: string | undefined, fallback: boolean, problems: string[]): boolean {
  if (raw === undefined || raw.trim() === '') return fallback;
  const r = BOOL.safeParse(raw.trim());
  if (r.success) return r.data;
  // Our wording, not zod's: doctor's fixes (hints.ts) and the tests key on it.
  problems.push(`${name}: "${raw}" is not a boolean; use true or false`);
  return fallback;
}

export function parseInt10(name: string, raw: string | undefined, fallback: number, min: number, max: number, problems: string[]): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  const r = DIGITS.pipe(z.number().min(min).max(max)).safeParse(raw.trim());
  if (r.success) return r.data;
  if (r.error.issues.some((i) => i.code === 'invalid_format')) problems.push(`${name}: "${raw}" is not a whole number`);
  else problems.push(`${name}: ${Number(raw)} is out of range (${min}..${max})`);
  return fallback;
}

export function list(raw: string | undefined): string[] | undefined {
  if (!raw?.trim()) return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Where settings come from: the environment, or an object of the `--config` file. `get` gives the value
 * and the name a problem should use for it (the variable actually set, or the file's key); `label` names a
 * setting that may be unset (e.g. in "X: required"). Names only ever come from the env table.
 */
export interface Source {
  get(v: EnvVar): { name: string; value: string } | undefined;
  label(v: EnvVar): string;
}

export function envSource(env: Env): Source {
  return { get: (v) => readVar(env, v), label: (v) => v.name };
}

/** One object of the parsed config file: a connection, or the top level with `prefix` "file.json: ". */
export function fileSource(obj: Record<string, unknown>, prefix = ''): Source {
  const raw = (v: EnvVar): unknown =>
    v.fileKey?.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), obj);
  return {
    get(v) {
      const r = raw(v);
      if (r === undefined || r === null) return undefined;
      // The same rule as the environment: blank is unset. Lists are comma-joined for the same list parser.
      const value = (Array.isArray(r) ? r.join(',') : String(r)).trim();
      return value ? { name: `${prefix}${v.fileKey}`, value } : undefined;
    },
    label: (v) => (v.fileKey ? `${prefix}${v.fileKey}` : v.name),
  };
}

/** `first` wins where it has a value (the file over the environment). */
export function layered(first: Source, then: Source): Source {
  return { get: (v) => first.get(v) ?? then.get(v), label: (v) => (first.get(v) ? first.label(v) : then.label(v)) };
}

export function boolFrom(src: Source, v: EnvVar & { type: 'boolean' }, problems: string[], fallback: boolean = v.default): boolean {
  const r = src.get(v);
  return parseBool(r?.name ?? v.name, r?.value, fallback, problems);
}

export function intFrom(src: Source, v: EnvVar & { type: 'int'; default: number }, problems: string[]): number {
  const r = src.get(v);
  return parseInt10(r?.name ?? v.name, r?.value, v.default, v.min, v.max, problems);
}

export function oneOf<T extends string>(src: Source, v: EnvVar & { type: 'enum'; choices: readonly T[] }, fallback: T, problems: string[]): T {
  const r = src.get(v);
  if (!r) return fallback;
  if ((v.choices as readonly string[]).includes(r.value)) return r.value as T;
  const c = v.choices;
  problems.push(`${r.name}: "${r.value}" must be ${c.length === 2 ? `${c[0]} or ${c[1]}` : `one of ${c.join(', ')}`}`);
  return fallback;
}

/** The safety flags: the environment's over the table's defaults, a file connection's over the environment's. */
export function policyFrom(src: Source, fallback: PolicyFlags, problems: string[]): PolicyFlags {
  const safeUpdates = safeUpdatesFrom(src, problems, fallback.safeUpdates);
  return {
    allowWrites: boolFrom(src, V.CRM_ALLOW_WRITES, problems, fallback.allowWrites),
    safeMode: boolFrom(src, V.CRM_SAFE_MODE, problems, fallback.safeMode),
    allowDelete: boolFrom(src, V.CRM_ALLOW_DELETE, problems, fallback.allowDelete),
    allowAdmin: boolFrom(src, V.CRM_ALLOW_ADMIN, problems, fallback.allowAdmin),
    // Left out when empty: no narrow update is admitted, as before the setting existed.
    ...(safeUpdates?.length ? { safeUpdates } : {}),
  };
}

/** CRM_SAFE_UPDATES: known names only (a misspelt one would silently admit nothing, so it is a problem). */
function safeUpdatesFrom(src: Source, problems: string[], fallback: readonly SafeUpdate[] | undefined): readonly SafeUpdate[] | undefined {
  const r = src.get(V.CRM_SAFE_UPDATES);
  const names = list(r?.value);
  if (!r || !names) return fallback;
  const unknown = names.filter((n) => !(SAFE_UPDATES as readonly string[]).includes(n));
  if (unknown.length) problems.push(`${r.name}: unknown narrow update ${unknown.map((n) => `"${n}"`).join(', ')}; use ${SAFE_UPDATES.join(', ')}`);
  return SAFE_UPDATES.filter((k) => names.includes(k));
}

/** The flags with nothing set, from the table (test/env-table.test.ts checks they equal the policy's DEFAULT_FLAGS). */
export const TABLE_FLAGS: PolicyFlags = {
  allowWrites: V.CRM_ALLOW_WRITES.default,
  safeMode: V.CRM_SAFE_MODE.default,
  allowDelete: V.CRM_ALLOW_DELETE.default,
  allowAdmin: V.CRM_ALLOW_ADMIN.default,
};

/** https only, except loopback (emulators, local proxies); `example` is the caller's (a wing's) sample address. */
export function checkOrigin(name: string, raw: string, problems: string[], example: string): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    problems.push(`${name}: "${raw}" is not a URL (expected e.g. ${example})`);
    return undefined;
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
    problems.push(`${name}: must use https:// (plain http is accepted only for 127.0.0.1/localhost)`);
    return undefined;
  }
  if (u.username || u.password) {
    problems.push(`${name}: must not contain credentials`);
    return undefined;
  }
  return u.origin;
}
