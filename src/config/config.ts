/**
 * Configuration from the environment (the common single-account case) and an optional JSON file with
 * several named connections. Validated with zod; every error names the variable or the file path.
 * A malformed safety flag stops the server: we never guess towards more access.
 */
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { DEFAULT_FLAGS, type PolicyFlags } from '../policy/policy.js';
import type { ToolFilter } from '../policy/tool-filter.js';
import type { LogLevel } from '../util/log.js';
import { registerSecret } from '../util/redact.js';
import { registerConnectionSecrets } from './secrets.js';
import { storeSpecProblem } from '../store/store.js';
import { checkToolNames } from './checks.js';

export interface KommoOAuthConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  refreshToken?: string;
  authCode?: string;
}

export interface KommoConnection {
  name: string;
  provider: 'kommo';
  /** Account origin, e.g. https://acme.kommo.com */
  baseUrl: string;
  accessToken?: string;
  oauth?: KommoOAuthConfig;
  policy: PolicyFlags;
}

export interface BitrixConnection {
  name: string;
  provider: 'bitrix24';
  /** Inbound webhook base `https://portal/rest/{user}/{secret}/`. */
  webhookUrl?: string;
  oauth?: { clientId: string; clientSecret: string; refreshToken?: string; portal: string; oauthServer?: string };
  plan: 'standard' | 'enterprise';
  outboundToken?: string;
  policy: PolicyFlags;
}

export type Connection = KommoConnection | BitrixConnection;

export interface AppConfig {
  connections: Connection[];
  tools: ToolFilter;
  http: { timeoutMs: number; maxRetries: number };
  logLevel: LogLevel;
  /** CRM_MCP_STORE as given (undefined = default file). */
  store?: string;
  /** The HTTP service (`--http`). */
  service: ServiceConfig;
}

export interface ServiceConfig {
  /** CRM_MCP_HTTP_TOKEN: bearer token required on /mcp and /metrics. */
  token?: string;
  /** CRM_MCP_HTTP_CORS_ORIGINS: browser origins allowed to call /mcp (CORS off when empty). */
  corsOrigins: string[];
  /** CRM_MCP_AUDIT_LOG: a file path, `off`, or undefined for the default `<data dir>/audit.log`. */
  auditLog?: string | false;
  /** CRM_MCP_METRICS: serve /metrics over HTTP (undefined = the default, on). */
  metrics?: boolean;
  /** CRM_MCP_AUDIT_MAX_BYTES: size past which the audit file is rotated (undefined = the audit log's default, 10 MiB). */
  auditMaxBytes?: number;
  /** CRM_MCP_AUDIT_KEEP: rotated audit files kept (undefined = the audit log's default, 5). */
  auditKeep?: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** Strict boolean: anything but a plain yes/no word is an error, never a guess. */
function parseBool(name: string, raw: string | undefined, fallback: boolean, problems: string[]): boolean {
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (TRUE.has(v)) return true;
  if (FALSE.has(v)) return false;
  problems.push(`${name}: "${raw}" is not a boolean; use true or false`);
  return fallback;
}

function parseInt10(name: string, raw: string | undefined, fallback: number, min: number, max: number, problems: string[]): number {
  if (raw === undefined || raw.trim() === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    problems.push(`${name}: "${raw}" is not a whole number`);
    return fallback;
  }
  const n = Number(raw);
  if (n < min || n > max) {
    problems.push(`${name}: ${n} is out of range (${min}..${max})`);
    return fallback;
  }
  return n;
}

function list(raw: string | undefined): string[] | undefined {
  if (!raw?.trim()) return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function pick(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v.trim() !== '') return { name: n, value: v.trim() };
  }
  return undefined;
}

/** https only, except loopback (emulators, local proxies). */
function checkOrigin(name: string, raw: string, problems: string[]): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    problems.push(`${name}: "${raw}" is not a URL (expected e.g. https://acme.kommo.com)`);
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

function kommoFromEnv(env: Env, policy: PolicyFlags, problems: string[]): KommoConnection | undefined {
  const sub = pick(env, 'KOMMO_SUBDOMAIN');
  const base = pick(env, 'KOMMO_BASE_URL');
  const domain = pick(env, 'AMOCRM_DOMAIN');
  const token = pick(env, 'KOMMO_ACCESS_TOKEN', 'KOMMO_LONG_LIVED_TOKEN', 'KOMMO_JWT_TOKEN');
  const clientId = pick(env, 'KOMMO_CLIENT_ID', 'AMOCRM_CLIENT_ID');
  const clientSecret = pick(env, 'KOMMO_CLIENT_SECRET', 'AMOCRM_CLIENT_SECRET');
  const redirectUri = pick(env, 'KOMMO_REDIRECT_URI', 'AMOCRM_REDIRECT_URI');
  const refresh = pick(env, 'KOMMO_REFRESH_TOKEN', 'AMOCRM_REFRESH_TOKEN');
  const code = pick(env, 'KOMMO_AUTH_CODE', 'AMOCRM_AUTH_CODE');
  const anyKommo = sub || base || domain || token || clientId || clientSecret || refresh || code;
  if (!anyKommo) return undefined;

  let baseUrl: string | undefined;
  const given = [sub, base, domain].filter(Boolean);
  if (given.length > 1) problems.push(`KOMMO_SUBDOMAIN, KOMMO_BASE_URL and AMOCRM_DOMAIN: set only one (got ${given.map((g) => g!.name).join(', ')})`);
  if (base) baseUrl = checkOrigin(base.name, base.value, problems);
  else if (sub) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(sub.value)) problems.push(`KOMMO_SUBDOMAIN: "${sub.value}" is not a subdomain (e.g. acme for acme.kommo.com)`);
    else baseUrl = `https://${sub.value.toLowerCase()}.kommo.com`;
  } else if (domain) {
    const host = domain.value.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (!/^[a-z0-9-]+\.(amocrm\.(ru|com)|kommo\.com)$/i.test(host)) problems.push(`AMOCRM_DOMAIN: "${domain.value}" is not an amoCRM/Kommo account host (e.g. acme.amocrm.ru)`);
    else baseUrl = `https://${host.toLowerCase()}`;
  } else {
    problems.push('KOMMO_SUBDOMAIN (or KOMMO_BASE_URL / AMOCRM_DOMAIN): required to reach your Kommo account');
  }

  let oauth: KommoOAuthConfig | undefined;
  if (clientId || clientSecret || redirectUri || refresh || code) {
    const missing = [
      !clientId && 'KOMMO_CLIENT_ID',
      !clientSecret && 'KOMMO_CLIENT_SECRET',
      !redirectUri && 'KOMMO_REDIRECT_URI',
    ].filter(Boolean);
    if (missing.length) problems.push(`${missing.join(', ')}: required for OAuth (you set ${[clientId, clientSecret, redirectUri, refresh, code].filter(Boolean).map((x) => x!.name).join(', ')})`);
    else oauth = { clientId: clientId!.value, clientSecret: clientSecret!.value, redirectUri: redirectUri!.value, refreshToken: refresh?.value, authCode: code?.value };
  }
  if (!token && !oauth && !problems.some((p) => p.startsWith('KOMMO_CLIENT'))) {
    problems.push('KOMMO_ACCESS_TOKEN: required (a long-lived token from Settings → Integrations), or configure OAuth with KOMMO_CLIENT_ID/KOMMO_CLIENT_SECRET/KOMMO_REDIRECT_URI');
  }
  if (!baseUrl) return undefined;
  return { name: 'kommo', provider: 'kommo', baseUrl, accessToken: token?.value, oauth, policy };
}

function bitrixFromEnv(env: Env, policy: PolicyFlags, problems: string[]): BitrixConnection | undefined {
  const hook = pick(env, 'BITRIX_WEBHOOK_BASE', 'BITRIX24_WEBHOOK_URL');
  const clientId = pick(env, 'BITRIX_CLIENT_ID');
  const clientSecret = pick(env, 'BITRIX_CLIENT_SECRET');
  const refresh = pick(env, 'BITRIX_REFRESH_TOKEN');
  const portal = pick(env, 'BITRIX_PORTAL');
  const planRaw = pick(env, 'BITRIX_PLAN');
  const outbound = pick(env, 'BITRIX_OUTBOUND_TOKEN');
  const oauthServer = pick(env, 'BITRIX_OAUTH_SERVER');
  if (!hook && !clientId && !clientSecret && !refresh && !portal) return undefined;
  let plan: BitrixConnection['plan'] = 'standard';
  if (planRaw) {
    if (planRaw.value === 'standard' || planRaw.value === 'enterprise') plan = planRaw.value;
    else problems.push(`BITRIX_PLAN: "${planRaw.value}" must be standard or enterprise`);
  }
  let webhookUrl: string | undefined;
  if (hook) webhookUrl = parseWebhook(hook.name, hook.value, problems);
  let oauth: BitrixConnection['oauth'];
  if (clientId || clientSecret || refresh || portal) {
    const missing = [!clientId && 'BITRIX_CLIENT_ID', !clientSecret && 'BITRIX_CLIENT_SECRET', !portal && 'BITRIX_PORTAL'].filter(Boolean);
    if (missing.length && !webhookUrl) problems.push(`${missing.join(', ')}: required for a Bitrix24 OAuth app`);
    else if (!missing.length) {
      const origin = checkOrigin('BITRIX_PORTAL', portal!.value.includes('://') ? portal!.value : `https://${portal!.value}`, problems);
      const server = oauthServer ? checkOrigin('BITRIX_OAUTH_SERVER', oauthServer.value, problems) : undefined;
      if (origin) oauth = { clientId: clientId!.value, clientSecret: clientSecret!.value, refreshToken: refresh?.value, portal: origin, ...(server ? { oauthServer: server } : {}) };
    }
  }
  if (!webhookUrl && !oauth) return undefined;
  return { name: 'bitrix24', provider: 'bitrix24', webhookUrl, oauth, plan, outboundToken: outbound?.value, policy };
}

function parseWebhook(name: string, raw: string, problems: string[]): string | undefined {
  const origin = checkOrigin(name, raw, problems);
  if (!origin) return undefined;
  const u = new URL(raw);
  const m = /^\/rest\/(\d+)\/([A-Za-z0-9_]+)\/?$/.exec(u.pathname);
  if (!m || u.search) {
    problems.push(`${name}: expected https://{portal}/rest/{user_id}/{secret}/ (the inbound webhook URL from Bitrix24 → Developer resources)`);
    return undefined;
  }
  return `${origin}/rest/${m[1]}/${m[2]}/`;
}

const fileConnection = z
  .object({
    provider: z.enum(['kommo', 'bitrix24']),
    base_url: z.string().optional(),
    subdomain: z.string().optional(),
    access_token: z.string().optional(),
    client_id: z.string().optional(),
    client_secret: z.string().optional(),
    redirect_uri: z.string().optional(),
    refresh_token: z.string().optional(),
    auth_code: z.string().optional(),
    webhook_url: z.string().optional(),
    portal: z.string().optional(),
    plan: z.enum(['standard', 'enterprise']).optional(),
    outbound_token: z.string().optional(),
    allow_writes: z.boolean().optional(),
    safe_mode: z.boolean().optional(),
    allow_delete: z.boolean().optional(),
    allow_admin: z.boolean().optional(),
  })
  .strict();

const fileSchema = z
  .object({
    connections: z.record(z.string().regex(/^[a-z0-9_-]{1,32}$/i, 'connection names are letters, digits, _ and -'), fileConnection),
    tools: z.array(z.string()).optional(),
    exclude_tools: z.array(z.string()).optional(),
    http: z.object({ timeout_ms: z.number().int().min(100).max(600_000).optional(), max_retries: z.number().int().min(0).max(10).optional() }).strict().optional(),
    log_level: z.enum(LOG_LEVELS).optional(),
    store: z.string().optional(),
  })
  .strict();

function connectionsFromFile(path: string, env: Env, defaults: PolicyFlags, problems: string[]): Connection[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    problems.push(`--config ${path}: ${(err as Error).message}`);
    return [];
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    return [];
  }
  const out: Connection[] = [];
  for (const [name, c] of Object.entries(parsed.data.connections)) {
    const policy: PolicyFlags = {
      allowWrites: c.allow_writes ?? defaults.allowWrites,
      safeMode: c.safe_mode ?? defaults.safeMode,
      allowDelete: c.allow_delete ?? defaults.allowDelete,
      allowAdmin: c.allow_admin ?? defaults.allowAdmin,
    };
    const at = `${path}: connections.${name}`;
    // Reuse the env parsers on a synthetic environment so both sources follow exactly the same rules.
    const sub: string[] = [];
    if (c.provider === 'kommo') {
      const k = kommoFromEnv(
        {
          KOMMO_SUBDOMAIN: c.subdomain,
          KOMMO_BASE_URL: c.base_url,
          KOMMO_ACCESS_TOKEN: c.access_token,
          KOMMO_CLIENT_ID: c.client_id,
          KOMMO_CLIENT_SECRET: c.client_secret,
          KOMMO_REDIRECT_URI: c.redirect_uri,
          KOMMO_REFRESH_TOKEN: c.refresh_token,
          KOMMO_AUTH_CODE: c.auth_code,
        },
        policy,
        sub,
      );
      if (k) out.push({ ...k, name });
      else if (!sub.length) sub.push('KOMMO: incomplete connection');
    } else {
      const b = bitrixFromEnv(
        {
          BITRIX_WEBHOOK_BASE: c.webhook_url,
          BITRIX_CLIENT_ID: c.client_id,
          BITRIX_CLIENT_SECRET: c.client_secret,
          BITRIX_REFRESH_TOKEN: c.refresh_token,
          BITRIX_PORTAL: c.portal,
          BITRIX_PLAN: c.plan,
          BITRIX_OUTBOUND_TOKEN: c.outbound_token,
        },
        policy,
        sub,
      );
      if (b) out.push({ ...b, name });
      else if (!sub.length) sub.push('webhook_url or client_id/client_secret/portal: required');
    }
    for (const p of sub) problems.push(`${at}: ${fileKeyName(p)}`);
  }
  void env;
  return out;
}

/** Rewrites env-variable names in a message to the config file's key names. */
function fileKeyName(problem: string): string {
  const map: Record<string, string> = {
    KOMMO_SUBDOMAIN: 'subdomain',
    KOMMO_BASE_URL: 'base_url',
    KOMMO_ACCESS_TOKEN: 'access_token',
    KOMMO_CLIENT_ID: 'client_id',
    KOMMO_CLIENT_SECRET: 'client_secret',
    KOMMO_REDIRECT_URI: 'redirect_uri',
    BITRIX_WEBHOOK_BASE: 'webhook_url',
    BITRIX_PLAN: 'plan',
    BITRIX_PORTAL: 'portal',
  };
  return problem.replace(/\b(KOMMO_[A-Z_]+|BITRIX_[A-Z_]+)\b/g, (m) => map[m] ?? m);
}

function serviceFromEnv(env: Env, problems: string[]): ServiceConfig {
  const token = env.CRM_MCP_HTTP_TOKEN?.trim() || undefined;
  if (token !== undefined && (token.length < 16 || /\s/.test(token))) {
    problems.push('CRM_MCP_HTTP_TOKEN: use at least 16 characters without spaces (e.g. `openssl rand -hex 32`)');
  }
  const corsOrigins: string[] = [];
  for (const o of list(env.CRM_MCP_HTTP_CORS_ORIGINS) ?? []) {
    let u: URL | undefined;
    try {
      u = new URL(o);
    } catch {
      u = undefined;
    }
    if (!u || !['http:', 'https:'].includes(u.protocol) || u.origin !== o.replace(/\/$/, '')) {
      problems.push(`CRM_MCP_HTTP_CORS_ORIGINS: "${o}" is not an origin (scheme://host[:port], no path, no "*")`);
    } else corsOrigins.push(u.origin);
  }
  const rawAudit = env.CRM_MCP_AUDIT_LOG?.trim() || undefined;
  const auditLog = rawAudit === undefined ? undefined : FALSE.has(rawAudit.toLowerCase()) ? false : rawAudit;
  const metrics = env.CRM_MCP_METRICS?.trim() ? parseBool('CRM_MCP_METRICS', env.CRM_MCP_METRICS, true, problems) : undefined;
  // At least 4 KiB (a few entries) so rotation cannot turn into a rename per line; at most 4 GiB.
  const auditMaxBytes = env.CRM_MCP_AUDIT_MAX_BYTES?.trim() ? parseInt10('CRM_MCP_AUDIT_MAX_BYTES', env.CRM_MCP_AUDIT_MAX_BYTES, 0, 4096, 4 * 1024 ** 3, problems) : undefined;
  const auditKeep = env.CRM_MCP_AUDIT_KEEP?.trim() ? parseInt10('CRM_MCP_AUDIT_KEEP', env.CRM_MCP_AUDIT_KEEP, 0, 0, 100, problems) : undefined;
  return {
    ...(token ? { token } : {}),
    corsOrigins,
    ...(auditLog !== undefined ? { auditLog } : {}),
    ...(metrics !== undefined ? { metrics } : {}),
    ...(auditMaxBytes ? { auditMaxBytes } : {}),
    ...(auditKeep !== undefined ? { auditKeep } : {}),
  };
}

export interface LoadOptions {
  env?: Env;
  configPath?: string;
  /** Connections (the sandbox's) that replace env/file ones; they get the flags from the environment. */
  connections?: (policy: PolicyFlags) => Connection[];
}

export function loadConfig(options: LoadOptions = {}): AppConfig {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const policy: PolicyFlags = {
    allowWrites: parseBool('CRM_ALLOW_WRITES', env.CRM_ALLOW_WRITES, DEFAULT_FLAGS.allowWrites, problems),
    safeMode: parseBool('CRM_SAFE_MODE', env.CRM_SAFE_MODE, DEFAULT_FLAGS.safeMode, problems),
    allowDelete: parseBool('CRM_ALLOW_DELETE', env.CRM_ALLOW_DELETE, DEFAULT_FLAGS.allowDelete, problems),
    allowAdmin: parseBool('CRM_ALLOW_ADMIN', env.CRM_ALLOW_ADMIN, DEFAULT_FLAGS.allowAdmin, problems),
  };
  const http = {
    timeoutMs: parseInt10('CRM_HTTP_TIMEOUT_MS', env.CRM_HTTP_TIMEOUT_MS, 30_000, 100, 600_000, problems),
    maxRetries: parseInt10('CRM_MAX_RETRIES', env.CRM_MAX_RETRIES, 3, 0, 10, problems),
  };
  let logLevel: LogLevel = 'info';
  if (env.CRM_LOG_LEVEL) {
    if ((LOG_LEVELS as readonly string[]).includes(env.CRM_LOG_LEVEL)) logLevel = env.CRM_LOG_LEVEL as LogLevel;
    else problems.push(`CRM_LOG_LEVEL: "${env.CRM_LOG_LEVEL}" must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const tools: ToolFilter = { include: list(env.CRM_TOOLS), exclude: list(env.CRM_EXCLUDE_TOOLS) };
  let store = env.CRM_MCP_STORE?.trim() || undefined;
  // Which source a value came from, so a problem names the right one (the file's key, or the variable).
  const fileTools: ToolFilter = {};
  let fileStore: string | undefined;
  const service = serviceFromEnv(env, problems);

  let connections: Connection[];
  if (options.connections) connections = options.connections(policy);
  else if (options.configPath) {
    connections = connectionsFromFile(options.configPath, env, policy, problems);
    try {
      const file = JSON.parse(readFileSync(options.configPath, 'utf8')) as z.infer<typeof fileSchema>;
      if (file.tools) tools.include = fileTools.include = file.tools;
      if (file.exclude_tools) tools.exclude = fileTools.exclude = file.exclude_tools;
      if (file.http?.timeout_ms) http.timeoutMs = file.http.timeout_ms;
      if (file.http?.max_retries !== undefined) http.maxRetries = file.http.max_retries;
      if (file.log_level) logLevel = file.log_level;
      if (file.store) store = fileStore = file.store;
    } catch {
      // already reported by connectionsFromFile
    }
  } else {
    connections = [kommoFromEnv(env, policy, problems), bitrixFromEnv(env, policy, problems)].filter((c): c is Connection => !!c);
  }
  checkToolNames(options.configPath && fileTools?.include ? `${options.configPath}: tools` : 'CRM_TOOLS', tools.include, problems);
  checkToolNames(options.configPath && fileTools?.exclude ? `${options.configPath}: exclude_tools` : 'CRM_EXCLUDE_TOOLS', tools.exclude, problems);
  const storeProblem = storeSpecProblem(store);
  if (storeProblem) problems.push(`${options.configPath && fileStore ? `${options.configPath}: store` : 'CRM_MCP_STORE'}: ${storeProblem}`);
  if (!problems.length && connections.length === 0) {
    problems.push(
      'No CRM configured: set KOMMO_SUBDOMAIN and KOMMO_ACCESS_TOKEN (Kommo/amoCRM) or BITRIX_WEBHOOK_BASE (Bitrix24), pass --config FILE, or try the demo with --sandbox',
    );
  }
  if (problems.length) throw new ConfigError(problems);

  for (const c of connections) registerConnectionSecrets(c);
  registerSecret(service.token);
  return { connections, tools, http, logLevel, store, service };
}

