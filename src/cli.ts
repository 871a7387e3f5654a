#!/usr/bin/env node
/**
 * The crm-mcp binary: parses argv/env, builds config and providers, and serves MCP over stdio (what Claude
 * Desktop runs) or Streamable HTTP; `--sandbox` starts the built-in CRM emulators with demo data.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { configWarnings } from './config/checks.js';
import { ConfigError, loadConfig, type Connection } from './config/config.js';
import { buildProviders } from './providers/factory.js';
import { createServer, planTools } from './server.js';
import { openStore } from './store/store.js';
import { createLogger, setLogger, type LogLevel } from './util/log.js';
import { VERSION } from './version.js';
import { join } from 'node:path';
import { AuditLog } from './audit/audit-log.js';
import { defaultDataDir } from './store/store.js';

const HELP = `crm-mcp ${VERSION}: MCP server for Kommo/amoCRM and Bitrix24

Usage:
  crm-mcp                       serve MCP over stdio (Claude Desktop)
  crm-mcp --http [--host 127.0.0.1] [--port 3333]
                                serve Streamable HTTP at /mcp
  crm-mcp --sandbox [--http]    use built-in emulated CRM accounts with demo data
  crm-mcp --config FILE         several named connections from a JSON file
  crm-mcp auth kommo|amocrm|bitrix24
                                sign in to an OAuth integration/app and save its tokens
  crm-mcp doctor [--json]       check every connection, token, scope and setting, with fixes
                                (exit 0 healthy, 1 problems, 3 warnings only)
  crm-mcp config claude [--with-secrets]
                                print the Claude Desktop mcpServers entry for this setup

Safety (environment): CRM_ALLOW_WRITES=true enables creating records; CRM_SAFE_MODE=false also allows
changing them; CRM_ALLOW_DELETE=true allows deleting. See README.md for every variable.
`;

interface Cleanup {
  (): Promise<void>;
}

async function main(argv: string[]): Promise<void> {
  // Sub-commands print to stdout (they are not the stdio server) and are loaded only when used.
  const sub = argv[0];
  if (sub === 'auth' || sub === 'doctor' || sub === 'config') {
    const cmd = sub === 'auth' ? await import('./commands/auth.js') : sub === 'doctor' ? await import('./commands/doctor.js') : await import('./commands/config-claude.js');
    const code = await cmd.run(argv.slice(1));
    // Exit explicitly (after stdout drains): keep-alive sockets of the HTTP client must not hold the process.
    process.stdout.write('', () => process.exit(code));
    return;
  }
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
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError([`--port: "${values.port}" is not a port number`]);

  const cleanups: Cleanup[] = [];
  let sandboxConnections: ((policy: import('./policy/policy.js').PolicyFlags) => Connection[]) | undefined;
  let sandboxInfo = '';
  if (values.sandbox) {
    const [{ startKommoEmulator }, { startBitrixEmulator }] = await Promise.all([
      import('./sandbox/kommo/index.js'),
      import('./sandbox/bitrix24/index.js'),
    ]);
    const [kommo, bitrix] = await Promise.all([startKommoEmulator({}), startBitrixEmulator({})]);
    cleanups.push(() => kommo.close(), () => bitrix.close());
    const token = kommo.createLongLivedToken({ expiresInSec: 30 * 86400 });
    sandboxConnections = (policy) => [
      { name: 'kommo', provider: 'kommo', baseUrl: kommo.url, accessToken: token, policy },
      { name: 'bitrix24', provider: 'bitrix24', webhookUrl: bitrix.webhookUrl, plan: 'standard', policy },
    ];
    sandboxInfo = `Sandbox: Kommo account emulated at ${kommo.url}, Bitrix24 portal at ${bitrix.url} (pass crm: "kommo" or "bitrix24")`;
  }

  // After `crm-mcp auth kommo` without a configured address, the account host it learnt is in the store.
  let env: Record<string, string | undefined> = process.env;
  if (!values.sandbox && !values.config && (process.env.KOMMO_CLIENT_ID || process.env.AMOCRM_CLIENT_ID)) {
    const { learntKommoHost } = await import('./commands/common.js');
    const learnt = await learntKommoHost(process.env).catch(() => undefined);
    if (learnt) env = { ...process.env, KOMMO_BASE_URL: learnt };
  }
  const config = loadConfig({ env, configPath: values.config, connections: sandboxConnections });
  // Refuse an open bind before anything starts or is logged as starting (startHttpServer checks again).
  const { isLoopback } = values.http ? await import('./http-server.js') : { isLoopback: () => true };
  if (values.http && !isLoopback(values.host!) && !config.service.token) {
    throw new ConfigError([`CRM_MCP_HTTP_TOKEN: required to listen on ${values.host} (anything but loopback): without it anyone who can reach the port could use your CRM. Set a long random token (e.g. \`openssl rand -hex 32\`) or bind to 127.0.0.1.`]);
  }
  const logger = createLogger({ level: config.logLevel as LogLevel });
  setLogger(logger);
  for (const warning of configWarnings(config)) logger.warn(warning);
  const store = await openStore(config.store ?? (values.sandbox ? 'memory' : undefined));
  cleanups.push(() => store.close());
  const auditFile = config.service.auditLog === false ? undefined : (config.service.auditLog ?? (values.sandbox ? undefined : join(defaultDataDir(), 'audit.log')));
  const audit = config.service.auditLog === false ? undefined : new AuditLog({ file: auditFile, maxBytes: config.service.auditMaxBytes, keep: config.service.auditKeep });
  // With writes on, the audit log fails closed: refuse to start rather than serve writes nobody could review.
  if (audit && config.connections.some((c) => c.policy.allowWrites)) {
    await audit.ensureWritable().catch((err: unknown) => {
      const why = ((err as Error).cause as { code?: string } | undefined)?.code ?? 'not writable';
      throw new ConfigError([
        `CRM_MCP_AUDIT_LOG: the audit log ${auditFile} cannot be written (${why}), and writes are enabled (CRM_ALLOW_WRITES=true): every write must leave an audit line. Point CRM_MCP_AUDIT_LOG at a writable file (its directory is created if missing), fix the permissions, or set CRM_MCP_AUDIT_LOG=off to run without an audit log.`,
      ]);
    });
  }
  // Metrics are served over HTTP only; the audit log is kept in both modes (in memory for the sandbox's demo data).
  // Loaded only with --http: the stdio start-up does not pay for prom-client or the HTTP transport.
  const metrics = values.http && config.service.metrics !== false ? new (await import('./metrics/metrics.js')).Metrics() : undefined;
  const providers = await buildProviders(config, { store, logger, onEvent: metrics?.onHttpEvent });
  metrics?.watchProviders(providers);
  const deps = { config, providers, audit, metrics };
  const plan = planTools(deps);
  logger.info(
    { connections: providers.map((p) => `${p.connection} (${p.kind})`), tools: plan.enabled.length, disabled: plan.disabled.length, store: store.description },
    'crm-mcp starting',
  );

  const shutdown = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());

  if (values.http) {
    const { startHttpServer } = await import('./http-server.js');
    const host = values.host!;
    const ready = async () => {
      // A probe read proves the store answers (file, or Redis when configured); bounded so a hung store fails the probe.
      const storeOk = await Promise.race([
        store.get('health:probe').then(() => true, () => false),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2000).unref()),
      ]);
      return {
        ok: storeOk && providers.length > 0,
        details: { store: storeOk ? 'reachable' : 'unreachable', connections: providers.map((p) => ({ name: p.connection, provider: p.kind })) },
      };
    };
    const http = await startHttpServer({
      host,
      port,
      makeServer: (scope) => createServer({ ...deps, narrow: scope.narrow }),
      logger,
      token: config.service.token,
      corsOrigins: config.service.corsOrigins,
      ready,
      metrics,
    });
    cleanups.unshift(() => http.close());
    const policy = providers[0]!.policy;
    const lines = [
      `crm-mcp ${VERSION} serving MCP (Streamable HTTP) at ${http.url}`,
      ...(sandboxInfo ? [sandboxInfo] : []),
      `Mode: ${policy.allowWrites ? (policy.safeMode ? 'create-only (safe mode)' : policy.allowDelete ? 'full' : 'write') : 'read-only'}; ${plan.enabled.length} tools.`,
      `Auth: ${config.service.token ? 'bearer token (CRM_MCP_HTTP_TOKEN)' : 'none (loopback only)'}; metrics: ${metrics ? http.url.replace(/\/mcp$/, '/metrics') : 'off'}; audit log: ${audit?.description ?? 'off'}.`,
      '',
      'Connect with the MCP Inspector:',
      `  npx @modelcontextprotocol/inspector@0.15.0 --cli ${http.url} --transport http --method tools/list`,
      '',
      'Claude Desktop (stdio) entry for the same sandbox:',
      JSON.stringify({ mcpServers: { crm: { command: process.execPath, args: [fileURLToPath(import.meta.url), '--sandbox'], env: { CRM_ALLOW_WRITES: 'false' } } } }, null, 2),
      '',
      'Press Ctrl+C to stop.',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } else {
    const server = createServer(deps);
    await server.connect(new StdioServerTransport());
    if (sandboxInfo) logger.info(sandboxInfo);
    process.stdin.on('end', () => void shutdown());
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`crm-mcp: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as Error & { code?: string };
  if (e?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    process.stderr.write(`crm-mcp: ${e.message}\n\n${HELP}`);
    process.exit(2);
  }
  process.stderr.write(`crm-mcp: ${e?.message ?? String(err)}\n`);
  process.exit(1);
});
