/**
 * `crm-mcp [--http] [--sandbox] [--config FILE]`: builds the configuration and the app, then serves MCP over
 * stdio (what Claude Desktop runs) or Streamable HTTP. Both transports answer the 2026-07-28 revision and the
 * 2025 ones from the same server factory; `--sandbox` starts the built-in CRM emulators with demo data.
 */
import { parseArgs } from 'node:util';
import { ImportDesk } from '../import/jobs.js';
import { buildApp, openStoreBounded } from '../app.js';
import { ApprovalDesk } from '../approvals/desk.js';
import { configWarnings } from '../config/checks.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { V } from '../config/env-table.js';
import { readVar } from '../config/env-types.js';
import { defaultRegistry } from '../crms/registry.js';
import { toolSelected } from '../policy/tool-filter.js';
import { createServer, planTools, serverFactory, type ServerDeps } from '../server.js';
import type { Store } from '../store/store.js';
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

export async function serve(args: ServeArgs): Promise<void> {
  const cleanups: Cleanup[] = [];
  // The sandbox (and, below, the change notifier) are loaded only by the starts that use them: a plain start does not read them.
  const sandbox = args.sandbox ? await (await import('../commands/sandbox.js')).startSandbox() : undefined;
  if (sandbox) cleanups.push(...sandbox.close);

  // What a sign-in learnt that the environment does not say yet (`crm-mcp auth` without a configured account
  // address keeps the one the CRM named in the store); each CRM checks its own variables before reading the store.
  let env: Record<string, string | undefined> = process.env;
  if (!args.sandbox && !args.config) {
    for (const m of defaultRegistry.modules()) {
      const learnt = await m.signIn
        ?.learnt?.(process.env, () => openConfiguredStore(process.env))
        .catch((err: unknown) => {
          // A store that does not answer at all stops the start (openStoreBounded); any other failure only means nothing was learnt.
          if (err instanceof ConfigError) throw err;
          return undefined;
        });
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
  const app = await buildApp(config, {
    logger,
    sandbox: args.sandbox,
    metrics: args.http,
    trustedOrigins: sandbox?.origins,
    eventsRetention: config.eventsRetention,
  });
  cleanups.push(() => app.close());
  const { providers, audit, metrics, identityLocks } = app;
  // CRM_CONFIRM_WRITES: the desk keeps its records and its key in the store (created now, so a store that
  // cannot hold them stops the start rather than the first write).
  const approvals = config.approvals?.on ? new ApprovalDesk(app.store, config.approvals) : undefined;
  if (approvals) {
    await approvals.secret();
    if (app.store.description.startsWith('memory'))
      logger.warn(
        'CRM_CONFIRM_WRITES: the store is in memory, so `crm-mcp approve` cannot reach it; approve on the --http page /approvals, or set CRM_MCP_STORE',
      );
  }
  // With the events toolset, subscribers of the crm://…/changes resources hear of new events (events/notify.ts):
  // this process's appends, other instances' through Redis, other processes' on one data directory by a look each second.
  const notifier = toolSelected('list_changes', config.tools, 'events')
    ? await new (await import('../events/notify.js')).ChangeNotifier(app.events, {
        redis: app.store.redis,
        pollMs: app.store.filePath ? 1000 : 0,
        onError: (err) => logger.warn({ err: err.message }, 'change notifications: a message was lost'),
      }).start()
    : undefined;
  if (notifier) cleanups.push(() => notifier.close());
  // A stdio server lives as long as its connection and sends the updates itself; over HTTP the SDK's listen streams take them from the bus.
  const events = { log: app.events, store: app.store, notifier: args.http ? undefined : notifier };
  const deps: ServerDeps = { config, providers, audit, metrics, identityLocks, approvals, imports: new ImportDesk(app.store), events };
  // Offline events (Bitrix24): pulled over stdio and HTTP alike, once bound (`crm-mcp events bind`).
  const pollSec = config.eventsPollSec ?? 0;
  if (pollSec > 0) {
    const { startPuller } = await import('../events/puller.js');
    const puller = startPuller({
      targets: providers.map((p) => ({ connection: p.connection, kind: p.kind })),
      pullOf: (t) => {
        const p = providers.find((x) => x.connection === t.connection);
        const pull = defaultRegistry.modules().find((m) => m.kind === t.kind)?.events?.pull;
        return p && pull ? (_t, ctx, store) => pull(p, ctx, store) : undefined;
      },
      log: app.events,
      store: app.store,
      intervalSec: pollSec,
      logger,
    });
    cleanups.push(() => puller.stop());
  }
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

  // Told to the webhook receiver first thing: from then on deliveries get 503 (the CRM retries) while the HTTP
  // service drains, rather than reaching an event log that is about to close.
  let stopping = false;
  const shutdown = async () => {
    stopping = true;
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
      prepareServer: (scope) => serverFactory({ ...deps, narrow: scope.narrow }),
      logger,
      token: config.service.token,
      corsOrigins: config.service.corsOrigins,
      rateLimit: config.service.rateLimit,
      ready,
      metrics,
      approvals,
      bus: notifier?.bus(),
      hooks: (await import('../transports/hooks/receiver.js')).hooksRoute({
        modules: defaultRegistry.modules(),
        connections: config.connections,
        log: app.events,
        store: app.store,
        logger,
        onDelivery: metrics?.hookDelivery,
        closing: () => stopping,
      }),
    });
    // Pushed last, so it runs first (cleanups run in reverse): the service drains while the store and the event log are still open.
    cleanups.push(() => http.close());
    const policy = providers[0]!.policy;
    const rate = config.service.rateLimit;
    const lines = [
      `crm-mcp ${VERSION} serving MCP (Streamable HTTP) at ${http.url}`,
      'Protocol: 2026-07-28 (server/discover, stateless) and the 2025 revisions (initialize), on the same endpoint.',
      ...(sandbox ? [sandbox.info(config.connections.map((c) => c.name))] : []),
      `Mode: ${policy.allowWrites ? (policy.safeMode ? `create-only (safe mode${policy.safeUpdates?.length ? `; CRM_SAFE_UPDATES=${policy.safeUpdates.join(',')}` : ''})` : policy.allowDelete ? 'full' : 'write') : 'read-only'}; ${plan.enabled.length} tools.`,
      `Auth: ${config.service.token ? 'bearer token (CRM_MCP_HTTP_TOKEN)' : 'none (loopback only)'}; metrics: ${metrics ? http.url.replace(/\/mcp$/, '/metrics') : 'off'}; audit log: ${audit?.description ?? 'off'}; tool-call rate limit: ${rate ? `${Math.round(rate.perMinute * 100) / 100}/min per client` : 'off'}.`,
      '',
      'Connect with the MCP Inspector:',
      `  npx @modelcontextprotocol/inspector@0.15.0 --cli ${http.url} --transport http --method tools/list`,
      '',
      ...(sandbox
        ? ['Claude Desktop (stdio) entry for the same sandbox, in the same mode (crm-mcp config claude --sandbox prints it):', await sandboxEntry(), '']
        : []),
      'Press Ctrl+C to stop.',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } else {
    // serveStdio owns the era: the opening message (server/discover or initialize) pins the connection to
    // 2026-07-28 or to a 2025 revision, and one server from the factory serves it for its lifetime.
    const { serveStdio, StdioServerTransport } = await import('@modelcontextprotocol/server/stdio');
    const { withServedVersions } = await import('../transports/versions.js');
    const wire = new StdioServerTransport();
    const send = wire.send.bind(wire);
    // A -32022 answer names the 2025 revisions this connection would also accept (transports/versions.ts).
    wire.send = (message) => send(withServedVersions(message));
    const make = serverFactory(deps);
    const stdio = serveStdio((c) => make(c), { transport: wire, onerror: (err) => logger.debug({ err: err.message }, 'MCP stdio error') });
    cleanups.unshift(() => stdio.close());
    if (sandbox) logger.info(sandbox.info(config.connections.map((c) => c.name)));
    process.stdin.on('end', () => void shutdown());
  }
}

/** The token store as CRM_MCP_STORE configures it (opened only when a CRM's sign-in hook asks), bounded in time like every start-up check. */
function openConfiguredStore(env: Record<string, string | undefined>): Promise<Store> {
  return openStoreBounded(readVar(env, V.CRM_MCP_STORE)?.value);
}

/** The sandbox banner's Claude Desktop entry: what `config claude --sandbox` prints for this environment (its mode, its settings). */
async function sandboxEntry(): Promise<string> {
  const { buildEntry } = await import('../commands/config-claude.js');
  const { entry } = await buildEntry(process.env, { withSecrets: false, name: 'crm', npx: false, sandbox: true });
  return JSON.stringify(entry, null, 2);
}
