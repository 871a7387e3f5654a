/**
 * Configuration from the environment (the common single-account case) and an optional JSON file with
 * several named connections. Validated with zod; every error names the variable or the file path.
 * A malformed safety flag stops the server: we never guess towards more access.
 */
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import type { PolicyFlags } from '../policy/policy.js';
import type { ToolFilter } from '../policy/tool-filter.js';
import type { ConnectionBase } from '../crms/contract.js';
import { defaultRegistry } from '../crms/registry.js';
import type { LogLevel } from '../util/log.js';
import { registerSecret } from '../util/redact.js';
import { registerConnectionSecrets } from './secrets.js';
import { parseToolsets, TOOLSET_NAMES } from '../tools/toolsets.js';
import { storeSpecProblem } from '../store/store.js';
import { checkToolNames } from './checks.js';
import { parseRateLimit, type RateLimitOptions } from './rate-limit-setting.js';
import { approvalSettingsFrom, type ApprovalSettings } from '../approvals/settings.js';
import { ENV_TABLE, V, type EnvVar } from './env-table.js';
import { FALSE, parseInt10, list, type Source, envSource, fileSource, layered, boolFrom, intFrom, oneOf, policyFrom, TABLE_FLAGS } from './sources.js';

/**
 * A configured connection: `{name, provider, policy}` plus what its CRM's module parsed (contract.ts). Only
 * that module reads the rest; the `provider` names it in the registry.
 */
export type Connection = ConnectionBase;

export interface AppConfig {
  connections: Connection[];
  tools: ToolFilter;
  http: { timeoutMs: number; maxRetries: number };
  logLevel: LogLevel;
  /** CRM_MCP_STORE as given (undefined = default file). */
  store?: string;
  /** The HTTP service (`--http`). */
  service: ServiceConfig;
  /** CRM_CONFIRM_WRITES, CRM_CONFIRM_VIA, CRM_CONFIRM_TTL (src/approvals/); absent in hand-built configs = off. */
  approvals?: ApprovalSettings;
  /** CRM_EVENTS_POLL_S: seconds between pulls of offline events (0 = off); absent in hand-built configs = off. */
  eventsPollSec?: number;
  /** CRM_EVENTS_RETENTION: how many events the event log keeps; absent in hand-built configs = the default. */
  eventsRetention?: number;
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
  /** CRM_MCP_HTTP_RATE_LIMIT: tools/call token bucket per HTTP client (undefined = off, the default). */
  rateLimit?: RateLimitOptions;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** The zod rule of a variable's file form: JSON booleans, numbers and arrays where the environment has text. */
function fileValue(v: EnvVar): z.ZodType {
  switch (v.type) {
    case 'boolean':
      return z.boolean().optional();
    case 'int':
      return z.number().int().min(v.min).max(v.max).optional();
    case 'enum':
      return z.enum(v.choices as [string, ...string[]]).optional();
    case 'list':
      return z.array(z.string()).optional();
    default:
      return z.string().optional();
  }
}

/**
 * The `--config` file's schema, from the table's file keys: every connection-scoped variable with a key can
 * be set per connection (the CRMs share `client_id` & co.), every global one at the top level.
 */
function buildFileSchema() {
  const kinds = defaultRegistry.modules().map((m) => m.kind);
  const connection: Record<string, z.ZodType> = { provider: z.enum(kinds as [string, ...string[]]) };
  const top: Record<string, z.ZodType> = {};
  const nested: Record<string, Record<string, z.ZodType>> = {};
  for (const v of ENV_TABLE) {
    if (!v.fileKey || v.internal) continue;
    if (v.scope === 'connection') connection[v.fileKey] = fileValue(v);
    else {
      const [outer, inner] = v.fileKey.split('.') as [string, string | undefined];
      if (inner) (nested[outer] ??= {})[inner] = fileValue(v);
      else top[outer] = fileValue(v);
    }
  }
  for (const [k, shape] of Object.entries(nested)) top[k] = z.object(shape).strict().optional();
  const connections = z.record(z.string().regex(/^[a-z0-9_-]{1,32}$/i, 'connection names are letters, digits, _ and -'), z.object(connection).strict());
  return z.object({ connections, ...top }).strict();
}

const fileSchema = buildFileSchema();

type FileConnection = Record<string, unknown> & { provider: string };

/**
 * A parsed `--config` file (JSON already parsed: the file is read once, by loadConfig) → its connections,
 * and its top level as a source of the global settings.
 */
function fromFile(path: string, data: unknown, defaults: PolicyFlags, problems: string[]): { connections: Connection[]; top?: Source } {
  if (data === undefined) return { connections: [] }; // unreadable (JSON never parses to undefined)
  const parsed = fileSchema.safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    return { connections: [] };
  }
  const file = parsed.data as Record<string, unknown> & { connections: Record<string, FileConnection> };
  const out: Connection[] = [];
  for (const [name, c] of Object.entries(file.connections)) {
    // The same parsers as the environment, reading the connection's keys: both sources follow the same rules,
    // and problems name the file's keys.
    const src = fileSource(c);
    const sub: string[] = [];
    const policy = policyFrom(src, defaults, sub);
    // The schema's enum admits only registered kinds.
    const spec = defaultRegistry.get(c.provider)!.connection;
    const conn = spec.parse(src, policy, sub);
    if (conn) out.push({ ...conn, name });
    else if (!sub.length) sub.push(spec.incomplete(src));
    for (const p of sub) problems.push(`${path}: connections.${name}: ${p}`);
  }
  return { connections: out, top: fileSource(file, `${path}: `) };
}

function serviceFrom(src: Source, problems: string[]): ServiceConfig {
  const tokenIn = src.get(V.CRM_MCP_HTTP_TOKEN);
  const token = tokenIn?.value;
  if (tokenIn && (tokenIn.value.length < 16 || /\s/.test(tokenIn.value))) {
    problems.push(`${tokenIn.name}: use at least 16 characters without spaces (e.g. \`openssl rand -hex 32\`)`);
  }
  const corsIn = src.get(V.CRM_MCP_HTTP_CORS_ORIGINS);
  const corsOrigins: string[] = [];
  for (const o of list(corsIn?.value) ?? []) {
    let u: URL | undefined;
    try {
      u = new URL(o);
    } catch {
      u = undefined;
    }
    if (!u || !['http:', 'https:'].includes(u.protocol) || u.origin !== o.replace(/\/$/, '')) {
      problems.push(`${corsIn!.name}: "${o}" is not an origin (scheme://host[:port], no path, no "*")`);
    } else corsOrigins.push(u.origin);
  }
  const rawAudit = src.get(V.CRM_MCP_AUDIT_LOG)?.value;
  const auditLog = rawAudit === undefined ? undefined : FALSE.has(rawAudit.toLowerCase()) ? false : rawAudit;
  const metricsIn = src.get(V.CRM_MCP_METRICS);
  // Unset stays undefined: the defaults of metrics and rotation are applied where they are used.
  const metrics = metricsIn ? boolFrom(src, V.CRM_MCP_METRICS, problems) : undefined;
  const maxIn = src.get(V.CRM_MCP_AUDIT_MAX_BYTES);
  const { min: minBytes, max: maxBytes } = V.CRM_MCP_AUDIT_MAX_BYTES;
  const auditMaxBytes = maxIn ? parseInt10(maxIn.name, maxIn.value, 0, minBytes, maxBytes, problems) : undefined;
  const rateIn = src.get(V.CRM_MCP_HTTP_RATE_LIMIT);
  const rate = parseRateLimit(rateIn?.value);
  let rateLimit: RateLimitOptions | undefined;
  if (rate && 'error' in rate) problems.push(`${rateIn!.name}: ${rate.error}`);
  else rateLimit = rate;
  const keepIn = src.get(V.CRM_MCP_AUDIT_KEEP);
  const auditKeep = keepIn ? parseInt10(keepIn.name, keepIn.value, 0, V.CRM_MCP_AUDIT_KEEP.min, V.CRM_MCP_AUDIT_KEEP.max, problems) : undefined;
  return {
    ...(token ? { token } : {}),
    corsOrigins,
    ...(auditLog !== undefined ? { auditLog } : {}),
    ...(metrics !== undefined ? { metrics } : {}),
    ...(auditMaxBytes ? { auditMaxBytes } : {}),
    ...(auditKeep !== undefined ? { auditKeep } : {}),
    ...(rateLimit ? { rateLimit } : {}),
  };
}

export interface LoadOptions {
  env?: Env;
  configPath?: string;
  /** Connections (the sandbox's) that replace env/file ones; they get the flags from the environment. */
  connections?: (policy: PolicyFlags) => Connection[];
}

/** Reads the `--config` file (once) and parses the whole configuration; throws ConfigError listing every problem. */
export function loadConfig(options: LoadOptions = {}): AppConfig {
  const env = options.env ?? process.env;
  let file: ParseOptions['file'];
  const problems: string[] = [];
  if (options.configPath && !options.connections) {
    try {
      file = { path: options.configPath, data: JSON.parse(readFileSync(options.configPath, 'utf8')) as unknown };
    } catch (err) {
      problems.push(`--config ${options.configPath}: ${(err as Error).message}`);
      // Still a config-file setup: the environment's connections must not stand in for the unreadable file.
      file = { path: options.configPath, data: undefined };
    }
  }
  return parseConfig({ env, file, connections: options.connections }, problems);
}

export interface ParseOptions {
  env: Env;
  /** The `--config` file, already parsed (`data` undefined: it could not be read, and that problem is already listed). */
  file?: { path: string; data: unknown };
  connections?: LoadOptions['connections'];
}

/**
 * The configuration from the environment and an already-parsed config file: no I/O, so the same input
 * always gives the same result (and the file is never read twice). `problems` may carry earlier ones.
 */
export function parseConfig(options: ParseOptions, problems: string[] = []): AppConfig {
  const env = envSource(options.env);
  const policy = policyFrom(env, TABLE_FLAGS, problems);
  let connections: Connection[];
  // The file's top-level keys win over the environment's process-wide settings.
  let src: Source = env;
  if (options.connections) connections = options.connections(policy);
  else if (options.file) {
    const f = fromFile(options.file.path, options.file.data, policy, problems);
    connections = f.connections;
    if (f.top) src = layered(f.top, env);
  } else {
    connections = defaultRegistry
      .modules()
      .map((m) => m.connection.parse(env, policy, problems))
      .filter((c): c is Connection => !!c);
  }
  const http = { timeoutMs: intFrom(src, V.CRM_HTTP_TIMEOUT_MS, problems), maxRetries: intFrom(src, V.CRM_MAX_RETRIES, problems) };
  const logLevel: LogLevel = oneOf(src, V.CRM_LOG_LEVEL, V.CRM_LOG_LEVEL.default, problems);
  const include = src.get(V.CRM_TOOLS);
  const exclude = src.get(V.CRM_EXCLUDE_TOOLS);
  const toolsetsIn = src.get(V.CRM_TOOLSETS);
  // Unset: the default toolsets (core, activity), which keep the tool list within its context budget.
  const toolsets = parseToolsets(toolsetsIn ? list(toolsetsIn.value) : undefined);
  if (toolsets?.unknown.length) {
    const u = toolsets.unknown;
    problems.push(
      `${toolsetsIn?.name ?? V.CRM_TOOLSETS.name}: unknown toolset${u.length > 1 ? 's' : ''} ${u.map((n) => `"${n}"`).join(', ')}; the toolsets are ${TOOLSET_NAMES.join(', ')} (or all)`,
    );
  }
  const tools: ToolFilter = { include: list(include?.value), exclude: list(exclude?.value), ...(toolsets ? { toolsets: toolsets.toolsets } : {}) };
  checkToolNames(include?.name ?? V.CRM_TOOLS.name, tools.include, problems);
  checkToolNames(exclude?.name ?? V.CRM_EXCLUDE_TOOLS.name, tools.exclude, problems);
  const storeIn = src.get(V.CRM_MCP_STORE);
  const store = storeIn?.value;
  const storeProblem = storeSpecProblem(store);
  if (storeProblem) problems.push(`${storeIn?.name ?? V.CRM_MCP_STORE.name}: ${storeProblem}`);
  const service = serviceFrom(env, problems);
  const approvals = approvalSettingsFrom(options.env, problems);
  const eventsPollSec = intFrom(src, V.CRM_EVENTS_POLL_S, problems);
  const eventsRetention = intFrom(src, V.CRM_EVENTS_RETENTION, problems);
  if (!problems.length && connections.length === 0) {
    const each = defaultRegistry.modules().map((m) => `${m.connection.setup} (${m.fullLabel ?? m.label})`);
    problems.push(`No CRM configured: set ${each.join(' or ')}, pass --config FILE, or try the demo with --sandbox`);
  }
  if (problems.length) throw new ConfigError(problems);

  for (const c of connections) registerConnectionSecrets(c);
  registerSecret(service.token);
  return { connections, tools, http, logLevel, store, service, approvals, eventsPollSec, eventsRetention };
}
