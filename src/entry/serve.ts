/**
 * `crm-mcp [--http] [--sandbox] [--config FILE]`: builds the configuration and the app, then serves MCP over
 * stdio (what Claude Desktop runs) or Streamable HTTP. Both transports answer the 2026-07-28 revision and the
 * 2025 ones from the same server factory; `--sandbox` starts the built-in CRM emulators with demo data.
 */
import { parseArgs } from 'node:util';
import { buildApp } from '../app.js';
import { configWarnings } from '../config/checks.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { V } from '../config/env-table.js';
import { readVar } from '../config/env-types.js';
import type { PolicyFlags } from '../policy/policy.js';
import { CLI_PATH } from '../paths.js';
import type { ConnectionBase } from '../crms/contract.js';
import { defaultRegistry } from '../crms/registry.js';
import { createServer, planTools, type ServerDeps } from '../server.js';
import { openStore, type Store } from '../store/store.js';
import { createLogger, setLogger, type LogLevel } from '../util/log.js';
import { VERSION } from '../version.js';

export interface ServeArgs {
  http: boolean;
  host: string;
  port: number;
  sandbox: boolean;
  config?: string;
  help: boolean;
  version: boolean;
}

/** The serve flags; throws ERR_PARSE_ARGS_* for unknown ones (the caller prints the help then). */
export function parseServeArgs(argv: string[]): ServeArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      http: { type: 'boolean', default: false },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '3333' },
      sandbox: { type: 'boolean', default: false },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!values.help && !values.version && (!Number.isInteger(port) || port < 0 || port > 65535))
    throw new ConfigError([`--port: "${values.port}" is not a port number`]);
  return { http: values.http, host: values.host, port, sandbox: values.sandbox, config: values.config, help: values.help, version: values.version };
}

type Cleanup = () => Promise<void>;

interface Sandbox {
  connections: (policy: PolicyFlags) => ConnectionBase[];
  /** The banner line, given the connections' names. */
  info(names: readonly string[]): string;
  /** A credential may follow a redirect between two of these (the emulators just started), and nowhere else on loopback. */
  origins: string[];
  close: Cleanup[];
}

/** Starts every CRM's emulator (contract.ts `SandboxPart`), together. */
async function startSandbox(): Promise<Sandbox> {
  const parts = defaultRegistry.modules().flatMap((m) => (m.sandbox ? [m.sandbox] : []));
  const runs = await Promise.all(parts.map((p) => p.start()));
  return {
    connections: (policy) => runs.flatMap((r) => r.connections(policy)),
    info: (names) =>
      `Sandbox: ${runs.map((r, i) => `${r.what}${i === 0 ? ' emulated' : ''} at ${r.origin}`).join(', ')} (pass crm: ${orList(names.map((n) => `"${n}"`))})`,
    origins: runs.map((r) => r.origin),
    close: runs.map((r) => () => r.close()),
  };
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items.at(-1)}` : (items[0] ?? '');
}

export async function serve(args: ServeArgs): Promise<void> {
  const cleanups: Cleanup[] = [];
  const sandbox = args.sandbox ? await startSandbox() : undefined;
  if (sandbox) cleanups.push(...sandbox.close);

  // What a sign-in learnt that the environment does not say yet (`crm-mcp auth` without a configured account
  // address keeps the one the CRM named in the store); each CRM checks its own variables before reading the store.
  let env: Record<string, string | undefined> = process.env;
  if (!args.sandbox && !args.config) {
    for (const m of defaultRegistry.modules()) {
      const learnt = await m.signIn?.learnt?.(process.env, () => openConfiguredStore(process.env)).catch(() => undefined);
      if (learnt) env = { ...env, ...learnt.env };
    }
  }
  const config = loadConfig({ env, configPath: args.config, connections: sandbox?.connections });
  // Refuse an open bind before anything starts or is logged as starting (startHttpServer checks again).
  const { isLoopback } = args.http ? await import('../transports/http/guards.js') : { isLoopback: () => true };
  if (args.http && !isLoopback(args.host) && !config.service.token) {
    throw new ConfigError([
      `CRM_MCP_HTTP_TOKEN: required to listen on ${args.host} (anything but loopback): without it anyone who can reach the port could use your CRM. Set a long random token (e.g. \`openssl rand -hex 32\`) or bind to 127.0.0.1.`,
    ]);
  }
  const logger = createLogger({ level: config.logLevel as LogLevel });
  setLogger(logger);
  for (const warning of configWarnings(config)) logger.warn(warning);
  // Metrics are served over HTTP only; the audit log is kept in both modes (in memory for the sandbox's demo data).
  const app = await buildApp(config, { logger, sandbox: args.sandbox, metrics: args.http, trustedOrigins: sandbox?.origins });
  cleanups.push(() => app.close());
  const { providers, audit, metrics } = app;
  const deps: ServerDeps = { config, providers, audit, metrics };
  const plan = planTools(deps);
  logger.info(
    {
      connections: providers.map((p) => `${p.connection} (${p.kind})`),
      tools: plan.enabled.length,
      disabled: plan.disabled.length,
      store: app.store.description,
    },
    'crm-mcp starting',
  );

  const shutdown = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());

  if (args.http) {
    const { startHttpServer } = await import('../transports/http/service.js');
    const ready = async () => {
      // A probe read proves the store answers (file, or Redis when configured); bounded so a hung store fails the probe.
      const storeOk = await Promise.race([
        app.store.get('health:probe').then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref()),
      ]);
      return {
        ok: storeOk && providers.length > 0,
        details: { store: storeOk ? 'reachable' : 'unreachable', connections: providers.map((p) => ({ name: p.connection, provider: p.kind })) },
      };
    };
    const http = await startHttpServer({
      host: args.host,
      port: args.port,
      makeServer: (scope) => createServer({ ...deps, narrow: scope.narrow }),
      logger,
      token: config.service.token,
      corsOrigins: config.service.corsOrigins,
      rateLimit: config.service.rateLimit,
      ready,
      metrics,
    });
    cleanups.unshift(() => http.close());
    const policy = providers[0]!.policy;
    const rate = config.service.rateLimit;
    const lines = [
      `crm-mcp ${VERSION} serving MCP (Streamable HTTP) at ${http.url}`,
      'Protocol: 2026-07-28 (server/discover, stateless) and the 2025 revisions (initialize), on the same endpoint.',
      ...(sandbox ? [sandbox.info(config.connections.map((c) => c.name))] : []),
      `Mode: ${policy.allowWrites ? (policy.safeMode ? 'create-only (safe mode)' : policy.allowDelete ? 'full' : 'write') : 'read-only'}; ${plan.enabled.length} tools.`,
      `Auth: ${config.service.token ? 'bearer token (CRM_MCP_HTTP_TOKEN)' : 'none (loopback only)'}; metrics: ${metrics ? http.url.replace(/\/mcp$/, '/metrics') : 'off'}; audit log: ${audit?.description ?? 'off'}; tool-call rate limit: ${rate ? `${Math.round(rate.perMinute * 100) / 100}/min per client` : 'off'}.`,
      '',
      'Connect with the MCP Inspector:',
      `  npx @modelcontextprotocol/inspector@0.15.0 --cli ${http.url} --transport http --method tools/list`,
      '',
      'Claude Desktop (stdio) entry for the same sandbox:',
      JSON.stringify({ mcpServers: { crm: { command: process.execPath, args: [CLI_PATH, '--sandbox'], env: { CRM_ALLOW_WRITES: 'false' } } } }, null, 2),
      '',
      'Press Ctrl+C to stop.',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } else {
    // serveStdio owns the era: the opening message (server/discover or initialize) pins the connection to
    // 2026-07-28 or to a 2025 revision, and one server from the factory serves it for its lifetime.
    const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
    const stdio = serveStdio(() => createServer(deps), { onerror: (err) => logger.debug({ err: err.message }, 'MCP stdio error') });
    cleanups.unshift(() => stdio.close());
    if (sandbox) logger.info(sandbox.info(config.connections.map((c) => c.name)));
    process.stdin.on('end', () => void shutdown());
  }
}

/** The token store as CRM_MCP_STORE configures it (opened only when a CRM's sign-in hook asks). */
function openConfiguredStore(env: Record<string, string | undefined>): Promise<Store> {
  return openStore(readVar(env, V.CRM_MCP_STORE)?.value);
}
