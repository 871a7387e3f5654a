/** The environment table's row type and the constants its rows share (data only: every layer may read it). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** What the value is; decides the parser's rule, the registry's `format` and doctor's generic hint. */
export type EnvType = 'string' | 'boolean' | 'int' | 'url' | 'list' | 'enum' | 'path';

/** A CRM's rows use its kind; the rest one of the server's groups (env-server.ts). */
export type EnvGroup = string;

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

/** A lookup of rows by canonical name, typed per row: `V.CRM_ALLOW_WRITES.default` is a boolean. */
export type RowsByName<T extends readonly EnvVar[]> = { readonly [K in T[number]['name']]: Extract<T[number], { name: K }> };

/** The typed lookup of a list of rows (each wing's own, the server's). */
export function byName<const T extends readonly EnvVar[]>(rows: T): RowsByName<T> {
  return Object.fromEntries(rows.map((v) => [v.name, v])) as RowsByName<T>;
}

/** The canonical name and the aliases. */
export function namesOf(v: EnvVar): readonly string[] {
  return [v.name, ...(v.aliases ?? [])];
}

/** The first of the variable's names set to a non-blank value (blank counts as unset: UIs write empty strings). */
export function readVar(env: Record<string, string | undefined>, v: EnvVar): { name: string; value: string } | undefined {
  for (const n of namesOf(v)) {
    const raw = env[n];
    if (raw !== undefined && raw.trim() !== '') return { name: n, value: raw.trim() };
  }
  return undefined;
}
