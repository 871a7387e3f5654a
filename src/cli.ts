#!/usr/bin/env node
/**
 * The crm-mcp binary: parses argv/env, builds config and providers, and serves MCP over stdio (what Claude
 * Desktop runs) or Streamable HTTP; `--sandbox` starts the built-in CRM emulators with demo data.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ConfigError, loadConfig, type Connection } from './config/config.js';
import { buildProviders } from './providers/factory.js';
import { createServer, planTools } from './server.js';
import { openStore } from './store/store.js';
import { createLogger, setLogger, type LogLevel } from './util/log.js';
import { VERSION } from './version.js';
import { startHttpServer } from './http-server.js';

const HELP = `crm-mcp ${VERSION}: MCP server for Kommo/amoCRM and Bitrix24

Usage:
  crm-mcp                       serve MCP over stdio (Claude Desktop)
  crm-mcp --http [--host 127.0.0.1] [--port 3333]
                                serve Streamable HTTP at /mcp
  crm-mcp --sandbox [--http]    use built-in emulated CRM accounts with demo data
  crm-mcp --config FILE         several named connections from a JSON file

Safety (environment): CRM_ALLOW_WRITES=true enables creating records; CRM_SAFE_MODE=false also allows
changing them; CRM_ALLOW_DELETE=true allows deleting. See README.md for every variable.
`;

interface Cleanup {
  (): Promise<void>;
}

async function main(argv: string[]): Promise<void> {
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

  const config = loadConfig({ configPath: values.config, connections: sandboxConnections });
  const logger = createLogger({ level: config.logLevel as LogLevel });
  setLogger(logger);
  const store = await openStore(config.store ?? (values.sandbox ? 'memory' : undefined));
  cleanups.push(() => store.close());
  const providers = await buildProviders(config, { store, logger });
  const deps = { config, providers };
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
    const http = await startHttpServer({ host: values.host!, port, makeServer: () => createServer(deps), logger });
    cleanups.unshift(() => http.close());
    const policy = providers[0]!.policy;
    const lines = [
      `crm-mcp ${VERSION} serving MCP (Streamable HTTP) at ${http.url}`,
      ...(sandboxInfo ? [sandboxInfo] : []),
      `Mode: ${policy.allowWrites ? (policy.safeMode ? 'create-only (safe mode)' : policy.allowDelete ? 'full' : 'write') : 'read-only'}; ${plan.enabled.length} tools.`,
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
