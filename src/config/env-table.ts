/**
 * The one declarative table of every environment variable crm-mcp reads: name, aliases, type, default,
 * whether it carries a credential, the README text and its `--config` file key. Data only (no I/O, no
 * credentials needed), so the config parser, the README table, server.json, `config claude`, the secret list
 * and doctor's hints all read the same rows instead of keeping their own lists (which drifted: issue 11).
 *
 * A variable read anywhere in src/ and missing here fails test/env-table.test.ts.
 */

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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const TABLE = [
  // ------------------------------------------------------------ Kommo / amoCRM
  {
    name: 'KOMMO_SUBDOMAIN',
    type: 'string',
    secret: false,
    description: 'account subdomain → `https://{subdomain}.kommo.com`',
    fileKey: 'subdomain',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
    example: 'yourcompany',
  },
  {
    name: 'KOMMO_BASE_URL',
    type: 'url',
    secret: false,
    description: 'any account origin instead (`https://acme.amocrm.ru`; `http://127.0.0.1:PORT` for a local emulator)',
    fileKey: 'base_url',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'AMOCRM_DOMAIN',
    type: 'string',
    secret: false,
    // No file key of its own: `base_url: "https://acme.amocrm.ru"` says the same in a file.
    description: 'amoCRM account host instead (`acme.amocrm.ru`; in a `--config` file use `base_url`)',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'KOMMO_ACCESS_TOKEN',
    aliases: ['KOMMO_LONG_LIVED_TOKEN', 'KOMMO_JWT_TOKEN'],
    type: 'string',
    secret: true,
    description: 'long-lived token or OAuth access token; its JWT claims give expiry and account',
    fileKey: 'access_token',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
    hint: 'Create a long-lived token in Kommo → Settings → Integrations → your private integration → Keys and scopes and set KOMMO_ACCESS_TOKEN, or set up OAuth and run `crm-mcp auth kommo`.',
  },
  {
    name: 'KOMMO_CLIENT_ID',
    aliases: ['AMOCRM_CLIENT_ID'],
    type: 'string',
    secret: false,
    description: 'OAuth integration ID',
    fileKey: 'client_id',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'KOMMO_CLIENT_SECRET',
    aliases: ['AMOCRM_CLIENT_SECRET'],
    type: 'string',
    secret: true,
    description: 'OAuth integration secret key',
    fileKey: 'client_secret',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'KOMMO_REDIRECT_URI',
    aliases: ['AMOCRM_REDIRECT_URI'],
    type: 'url',
    secret: false,
    description: 'OAuth redirect URI registered with the integration (for `crm-mcp auth`: `http://127.0.0.1:PORT/…`)',
    fileKey: 'redirect_uri',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'KOMMO_REFRESH_TOKEN',
    aliases: ['AMOCRM_REFRESH_TOKEN'],
    type: 'string',
    secret: true,
    description: 'OAuth refresh token to start the rotating chain from',
    fileKey: 'refresh_token',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'KOMMO_AUTH_CODE',
    aliases: ['AMOCRM_AUTH_CODE'],
    type: 'string',
    secret: true,
    oneTime: true,
    description: 'one-time authorization code, exchanged at start-up (once)',
    fileKey: 'auth_code',
    group: 'kommo',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'KOMMO_OAUTH_URL',
    aliases: ['AMOCRM_OAUTH_URL'],
    type: 'url',
    secret: false,
    description: "`crm-mcp auth`: the consent page instead of Kommo's (an emulator's, in tests)",
    defaultDoc: '`https://www.kommo.com/oauth` (amoCRM: `https://www.amocrm.ru/oauth`)',
    group: 'kommo',
    scope: 'global',
    readBy: 'auth',
  },
  // ------------------------------------------------------------ Bitrix24
  {
    name: 'BITRIX_WEBHOOK_BASE',
    aliases: ['BITRIX24_WEBHOOK_URL'],
    type: 'url',
    secret: true,
    secretPart: 'webhook-secret',
    description: 'inbound webhook `https://{portal}/rest/{user_id}/{secret}/` (the secret is a credential)',
    fileKey: 'webhook_url',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
    hint: 'Copy the inbound webhook URL from Bitrix24 → Developer resources → Other → Inbound webhook; it looks like https://yourportal.bitrix24.com/rest/1/xxxxxxxx/.',
  },
  {
    name: 'BITRIX_CLIENT_ID',
    type: 'string',
    secret: false,
    description: 'OAuth app `client_id`, instead of a webhook (1 h access tokens, rotating refresh token)',
    fileKey: 'client_id',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_CLIENT_SECRET',
    type: 'string',
    secret: true,
    description: 'OAuth app `client_secret`',
    fileKey: 'client_secret',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_PORTAL',
    type: 'string',
    secret: false,
    description: 'OAuth: the portal address (`yourportal.bitrix24.com` or `https://…`)',
    fileKey: 'portal',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
    hint: "Set BITRIX_PORTAL to your portal's address, e.g. yourportal.bitrix24.com (https:// is assumed).",
  },
  {
    name: 'BITRIX_REFRESH_TOKEN',
    type: 'string',
    secret: true,
    description: 'OAuth refresh token to start the rotating chain from',
    fileKey: 'refresh_token',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_OAUTH_SERVER',
    type: 'url',
    secret: false,
    description: "OAuth token server for refreshes and `crm-mcp auth bitrix24` (an emulator's, in tests)",
    // Applied by the Bitrix24 token client (providers/bitrix24/auth.ts), not by the parser.
    defaultDoc: '`https://oauth.bitrix.info`',
    fileKey: 'oauth_server',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_PLAN',
    type: 'enum',
    choices: ['standard', 'enterprise'],
    default: 'standard',
    secret: false,
    description: 'rate-limit profile: `standard` (burst 50, 2/s) or `enterprise` (burst 250, 5/s)',
    fileKey: 'plan',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_OUTBOUND_TOKEN',
    type: 'string',
    secret: true,
    description: '`application_token` that outbound events must carry',
    fileKey: 'outbound_token',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_REDIRECT_URI',
    type: 'url',
    secret: false,
    description: '`crm-mcp auth bitrix24`: the loopback address (`http://127.0.0.1:PORT/…`) the portal sends you back to',
    group: 'bitrix24',
    scope: 'global',
    readBy: 'auth',
  },
  // ------------------------------------------------------------ safety (per connection; the file may override)
  {
    name: 'CRM_ALLOW_WRITES',
    type: 'boolean',
    default: false,
    secret: false,
    description: 'allow creating records',
    fileKey: 'allow_writes',
    group: 'safety',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'CRM_SAFE_MODE',
    type: 'boolean',
    default: true,
    secret: false,
    description: 'allow only creating, never changing or deleting',
    fileKey: 'safe_mode',
    group: 'safety',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'CRM_ALLOW_DELETE',
    type: 'boolean',
    default: false,
    secret: false,
    description: 'allow deletes (needs writes and safe mode off)',
    fileKey: 'allow_delete',
    group: 'safety',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'CRM_ALLOW_ADMIN',
    type: 'boolean',
    default: false,
    secret: false,
    description: 'allow `admin` operations: account configuration and outbound messages (needs writes and safe mode off; not implied by deletes)',
    fileKey: 'allow_admin',
    group: 'safety',
    scope: 'connection',
    readBy: 'server',
  },
  // ------------------------------------------------------------ tools
  {
    name: 'CRM_TOOLS',
    type: 'list',
    secret: false,
    description: 'comma list of the tool names to offer (the others are not registered)',
    defaultDoc: 'all',
    fileKey: 'tools',
    group: 'tools',
    scope: 'global',
    readBy: 'server',
    hint: 'Use only tool names from the list above (README → Tools), separated by commas, or remove CRM_TOOLS to offer every tool.',
  },
  {
    name: 'CRM_TOOLSETS',
    type: 'list',
    secret: false,
    description: 'comma list of the toolsets to offer (`core`, `activity`, `metadata`, `audit`, `raw`), or `all`; an explicit `CRM_TOOLS` list wins',
    defaultDoc: '`core,activity`',
    fileKey: 'toolsets',
    group: 'tools',
    scope: 'global',
    readBy: 'server',
    hint: 'Use only toolset names from the list above, separated by commas (or all), or remove CRM_TOOLSETS for the default ones.',
  },
  {
    name: 'CRM_EXCLUDE_TOOLS',
    type: 'list',
    secret: false,
    description: 'comma list of tool names not to offer',
    defaultDoc: 'none',
    fileKey: 'exclude_tools',
    group: 'tools',
    scope: 'global',
    readBy: 'server',
    hint: 'Use only tool names from the list above (README → Tools), separated by commas, or remove CRM_EXCLUDE_TOOLS.',
  },
  // ------------------------------------------------------------ the server
  {
    name: 'CRM_HTTP_TIMEOUT_MS',
    type: 'int',
    default: 30_000,
    min: 100,
    max: 600_000,
    secret: false,
    description: 'per-request timeout to the CRM, in milliseconds',
    fileKey: 'http.timeout_ms',
    group: 'server',
    scope: 'global',
    readBy: 'server',
  },
  {
    name: 'CRM_MAX_RETRIES',
    type: 'int',
    default: 3,
    min: 0,
    max: 10,
    secret: false,
    description: 'retries for reads (and for writes the CRM certainly refused)',
    fileKey: 'http.max_retries',
    group: 'server',
    scope: 'global',
    readBy: 'server',
  },
  {
    name: 'CRM_LOG_LEVEL',
    type: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    secret: false,
    description: '`fatal`…`trace`, `silent`; `debug` logs every CRM request with secrets masked',
    fileKey: 'log_level',
    group: 'server',
    scope: 'global',
    readBy: 'server',
  },
  {
    name: 'CRM_MCP_STORE',
    type: 'string',
    secret: false,
    description:
      'token/cache store: a file path (default `~/.crm-mcp/store.json`, written atomically, mode 0600), `memory`, or `redis://host:port/db` to share tokens, refresh locks and the CRM rate limits between several instances',
    defaultDoc: 'file',
    fileKey: 'store',
    group: 'server',
    scope: 'global',
    readBy: 'server',
    hint: 'Point CRM_MCP_STORE at a file path, `memory`, or a redis://host:port/db URL (or remove it for the default ~/.crm-mcp/store.json).',
  },
  {
    name: 'CRM_MCP_HOME',
    type: 'path',
    secret: false,
    description: 'data directory (the default store and audit log live there)',
    defaultDoc: '`~/.crm-mcp`',
    group: 'server',
    scope: 'global',
    readBy: 'server',
  },
  // ------------------------------------------------------------ the audit log
  {
    name: 'CRM_MCP_AUDIT_LOG',
    type: 'string',
    secret: false,
    description: 'audit log file (JSON lines, mode 0600), or `off`; with writes on, a file that cannot be written stops the start and refuses writes',
    defaultDoc: '`~/.crm-mcp/audit.log` (sandbox: memory)',
    group: 'audit',
    scope: 'global',
    readBy: 'server',
  },
  {
    name: 'CRM_MCP_AUDIT_MAX_BYTES',
    type: 'int',
    default: 10 * 1024 * 1024,
    // At least 4 KiB (a few entries) so rotation cannot turn into a rename per line; at most 4 GiB.
    min: 4096,
    max: 4 * 1024 ** 3,
    secret: false,
    description: 'size (bytes, 4096 or more) past which the audit log is rotated to `audit.log.1`',
    defaultDoc: '`10485760` (10 MiB)',
    group: 'audit',
    scope: 'global',
    readBy: 'server',
  },
  {
    name: 'CRM_MCP_AUDIT_KEEP',
    type: 'int',
    default: 5,
    min: 0,
    max: 100,
    secret: false,
    description: 'rotated audit files kept (`.1` … `.N`; `0` = start over without keeping one)',
    group: 'audit',
    scope: 'global',
    readBy: 'server',
  },
  // ------------------------------------------------------------ the HTTP service (--http)
  {
    name: 'CRM_MCP_HTTP_TOKEN',
    type: 'string',
    secret: true,
    description: '`--http`: bearer token required on `/mcp` and `/metrics` (16+ characters); required to bind anything but loopback',
    defaultDoc: 'none',
    group: 'http',
    scope: 'global',
    readBy: 'server',
    hint: 'Set CRM_MCP_HTTP_TOKEN to a long random value without spaces, e.g. the output of `openssl rand -hex 32`.',
  },
  {
    name: 'CRM_MCP_HTTP_CORS_ORIGINS',
    type: 'list',
    secret: false,
    description: '`--http`: comma list of browser origins allowed to call `/mcp` (CORS and preflights for those only)',
    defaultDoc: 'none (CORS off)',
    group: 'http',
    scope: 'global',
    readBy: 'server',
    hint: 'Set CRM_MCP_HTTP_CORS_ORIGINS to origins (scheme://host[:port]) separated by commas, e.g. https://app.example.com,http://localhost:5173 (no path, no "*").',
  },
  {
    name: 'CRM_MCP_METRICS',
    type: 'boolean',
    default: true,
    secret: false,
    description: '`--http`: serve Prometheus metrics at `/metrics`',
    group: 'http',
    scope: 'global',
    readBy: 'server',
  },
  {
    name: 'CRM_MCP_HTTP_RATE_LIMIT',
    type: 'string',
    secret: false,
    description:
      "`--http`: `tools/call` requests allowed per client (bearer token and address) and instance, as a token bucket: `120/min`, `5/s` or `600/h`, optionally `,burst=20` (default burst: a tenth of a minute's worth); over it, HTTP 429 with `Retry-After`",
    defaultDoc: '`off`',
    group: 'http',
    scope: 'global',
    readBy: 'server',
    example: '120/min',
    hint: 'Give a rate such as 120/min, 5/s or 600/h (optionally ",burst=20"), or off.',
  },
  // ------------------------------------------------------------ `crm-mcp auth`
  {
    name: 'CRM_MCP_NO_BROWSER',
    type: 'enum',
    choices: ['1'],
    secret: false,
    description: '`crm-mcp auth`: `1` prints the consent address without opening a browser (as `--no-browser`)',
    group: 'auth',
    scope: 'global',
    readBy: 'auth',
  },
  // ------------------------------------------------------------ the test suite
  {
    name: 'CRM_TEST_REDIS_URL',
    type: 'url',
    secret: false,
    description: 'tests: a running Redis to use instead of starting a private redis-server',
    group: 'test',
    scope: 'global',
    readBy: 'test',
    internal: true,
  },
  {
    name: 'CRM_TEST_CONFORMANCE_LATEST',
    type: 'path',
    secret: false,
    description: 'tests (.ci/run): the newest MCP conformance suite, installed outside the project',
    group: 'test',
    scope: 'global',
    readBy: 'test',
    internal: true,
  },
  {
    name: 'CRM_TEST_INSPECTOR_LATEST',
    type: 'path',
    secret: false,
    description: 'tests (.ci/run): the newest MCP Inspector, installed outside the project',
    group: 'test',
    scope: 'global',
    readBy: 'test',
    internal: true,
  },
] as const satisfies readonly EnvVar[];

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
