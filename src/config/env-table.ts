/**
 * The one declarative table of every environment variable crm-mcp reads: name, aliases, type, default,
 * whether it carries a credential, the README text and its `--config` file key. Data only (no I/O, no
 * credentials needed), so the config parser, the README table, server.json, `config claude`, the secret list
 * and doctor's hints all read the same rows instead of keeping their own lists (which drifted: issue 11).
 *
 * A variable read anywhere in src/ and missing here fails test/env-table.test.ts. The rows live in env-crm.ts
 * (the CRM connections) and env-server.ts (everything else); this file has their type and the look-ups.
 */
import { CRM_VARS } from './env-crm.js';
import { SERVER_VARS } from './env-server.js';

/** What the value is; decides the parser's rule, the registry's `format` and doctor's generic hint. */
export type EnvType = 'string' | 'boolean' | 'int' | 'url' | 'list' | 'enum' | 'path';

export type EnvGroup = 'kommo' | 'bitrix24' | 'safety' | 'tools' | 'server' | 'audit' | 'http' | 'auth' | 'test';

interface Common {
  readonly name: string;
  /** Older or vendor names read too; the first one set wins, the canonical name first. */
  readonly aliases?: readonly string[];
  /** Carries a credential: masked by `config claude`, marked secret in server.json, never printed by doctor. */
  readonly secret: boolean;
  /** The README's "meaning" cell (markdown). */
  readonly description: string;
  /** The README's "default" cell when the default is not a plain value (or is applied outside the parser). */
  readonly defaultDoc?: string;
  /**
   * The `--config` JSON key: inside each connection (`scope: 'connection'`) or at the top level, dotted for
   * nested objects (`http.timeout_ms`). Absent: the variable has no file form.
   */
  readonly fileKey?: string;
  readonly group: EnvGroup;
  /**
   * `connection`: describes one CRM connection (with `--config`, the file's connections replace the
   * environment's, except the safety flags, which become the defaults of every file connection);
   * `global`: the whole process.
   */
  readonly scope: 'connection' | 'global';
  /** `server`: the config loader (serve, doctor, config claude, auth); `auth`: only `crm-mcp auth`; `test`: the test suite. */
  readonly readBy: 'server' | 'auth' | 'test';
  /** Not for users: kept out of the README, server.json and `config claude`. */
  readonly internal?: boolean;
  /** Used once and then useless (a one-time code): never copied into a long-lived client config. */
  readonly oneTime?: boolean;
  /** Only part of the value is the credential (the webhook URL's secret path segment). */
  readonly secretPart?: 'webhook-secret';
  /** server.json `placeholder`. */
  readonly example?: string;
  /** doctor's fix for a problem with this variable when its type's generic hint would not help. */
  readonly hint?: string;
}

export type EnvVar = Common &
  (
    | { readonly type: 'boolean'; readonly default: boolean }
    | { readonly type: 'int'; readonly default?: number; readonly min: number; readonly max: number }
    | { readonly type: 'enum'; readonly choices: readonly string[]; readonly default?: string }
    | { readonly type: 'string' | 'url' | 'list' | 'path'; readonly default?: string }
  );

export { LOG_LEVELS } from './env-types.js';

const TABLE = [...CRM_VARS, ...SERVER_VARS] as const;

export type EnvName = (typeof TABLE)[number]['name'];

/** Every variable, in the order the README and `config claude` list them. */
export const ENV_TABLE: readonly EnvVar[] = TABLE;

/** The rows by canonical name, typed: `V.CRM_ALLOW_WRITES.default` is a boolean. */
export const V = Object.fromEntries(TABLE.map((v) => [v.name, v])) as unknown as { readonly [K in EnvName]: Extract<(typeof TABLE)[number], { name: K }> };

/** The canonical name and the aliases. */
export function namesOf(v: EnvVar): readonly string[] {
  return [v.name, ...(v.aliases ?? [])];
}

/** The row for a name or an alias. */
export function envVar(name: string): EnvVar | undefined {
  return ENV_TABLE.find((v) => namesOf(v).includes(name));
}

/** The first of the variable's names set to a non-blank value (blank counts as unset: UIs write empty strings). */
export function readVar(env: Record<string, string | undefined>, v: EnvVar): { name: string; value: string } | undefined {
  for (const n of namesOf(v)) {
    const raw = env[n];
    if (raw !== undefined && raw.trim() !== '') return { name: n, value: raw.trim() };
  }
  return undefined;
}

/**
 * Still read from the environment when `--config FILE` is given: the process-wide settings and the safety
 * flags (the defaults of the file's connections). The CRM credentials come from the file only.
 */
export function appliesWithConfigFile(v: EnvVar): boolean {
  return v.scope === 'global' || v.group === 'safety';
}

/** Every name (canonical and aliases) that carries a credential. */
export const SECRET_NAMES: ReadonlySet<string> = new Set(ENV_TABLE.filter((v) => v.secret).flatMap(namesOf));
