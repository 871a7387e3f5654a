/**
 * The one declarative table of every environment variable crm-mcp reads: name, aliases, type, default,
 * whether it carries a credential, the README text and its `--config` file key. Data only (no I/O, no
 * credentials needed), so the config parser, the README table, server.json, `config claude`, the secret list
 * and doctor's hints all read the same rows instead of keeping their own lists (which drifted: issue 11).
 *
 * A variable read anywhere in src/ and missing here fails test/env-table.test.ts. Each CRM's rows live in its
 * wing (src/crms/<kind>/env.ts, given to the registry by its module), everything else in env-server.ts;
 * the row type is env-types.ts's, and this file has the whole table and the look-ups.
 */
import { defaultRegistry } from '../crms/registry.js';
import { SERVER_ENV, SERVER_VARS } from './env-server.js';
import type { EnvVar } from './env-types.js';
import { namesOf } from './env-types.js';

export type { EnvGroup, EnvType, EnvVar } from './env-types.js';
export { namesOf, readVar } from './env-types.js';
export { LOG_LEVELS } from './env-types.js';

/** A server row's canonical name. */
export type EnvName = (typeof SERVER_VARS)[number]['name'];

/** Every variable, in the order the README and `config claude` list them: the CRMs' (registry order), then the server's. */
export const ENV_TABLE: readonly EnvVar[] = [...defaultRegistry.modules().flatMap((m) => m.env), ...SERVER_VARS];

/** The server's rows by canonical name, typed: `V.CRM_ALLOW_WRITES.default` is a boolean. A CRM's rows: its wing's lookup. */
export const V = SERVER_ENV;

/** The row for a name or an alias. */
export function envVar(name: string): EnvVar | undefined {
  return ENV_TABLE.find((v) => namesOf(v).includes(name));
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
