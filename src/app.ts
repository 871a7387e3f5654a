/**
 * buildApp(config) → what every way of running crm-mcp needs once the configuration is known: the token
 * store, the providers (one per connection), the audit log and the metrics. `serve` builds it and hands it
 * to a transport; a command that checks connections can build the same thing without serving.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { AuditLog } from './audit/audit-log.js';
import { ConfigError, type AppConfig } from './config/config.js';
import type { EndpointLabeler, Metrics, MetricsOptions } from './metrics/metrics.js';
import type { CrmModule } from './crms/contract.js';
import { buildProviders } from './crms/registry.js';
import { ALL_TOOLS, defaultRegistry } from './crms/registry.js';
import type { CrmProvider } from './crms/types.js';
import { defaultDataDir, openStore, storeSpecProblem, type Store } from './store/store.js';
import { IDENTITY_LOCK_TIMES, IdentityLocks } from './store/identity-lock.js';
import { withDeadline } from './util/deadline.js';
import type { EventLog } from './events/log.js';
import { openEventLog } from './events/open.js';

export interface AppOptions {
  logger: Logger;
  /** The built-in emulators: the store and the audit log stay in memory unless configured otherwise. */
  sandbox?: boolean;
  /**
   * Collect Prometheus metrics (served by the HTTP service only, so stdio does not load prom-client);
   * CRM_MCP_METRICS=false turns them off.
   */
  metrics?: boolean;
  /** Origins of the emulators `--sandbox` started: a credential may follow a redirect between two of them. */
  trustedOrigins?: readonly string[];
  /** CRM_EVENTS_RETENTION: how many events the event log keeps (default events/log.ts DEFAULT_RETENTION). */
  eventsRetention?: number;
}

export interface App {
  config: AppConfig;
  store: Store;
  providers: CrmProvider[];
  /** Where write decisions are recorded; absent with CRM_MCP_AUDIT_LOG=off. */
  audit?: AuditLog;
  metrics?: Metrics;
  /** Where the audit log is written (undefined: in memory, or off). */
  auditFile?: string;
  /** Per-person locks of dedupe-then-create through the store, by account (every instance on the store shares them). */
  identityLocks: IdentityLocks;
  /** What changed in the CRMs: the log the receivers append to and the change feed reads (beside the store). */
  events: EventLog;
  close(): Promise<void>;
}

/**
 * How long start-up waits for one check of the disk (the store's directory, the audit file): a local disk
 * answers in milliseconds, and a path that does not answer at all must not leave the server silent.
 */
export const STARTUP_CHECK_MS = 5000;

export async function buildApp(config: AppConfig, o: AppOptions): Promise<App> {
  const store = await openStoreBounded(config.store ?? (o.sandbox ? 'memory' : undefined));
  try {
    const { auditLog } = config.service;
    const auditFile = auditLog === false ? undefined : (auditLog ?? (o.sandbox ? undefined : join(defaultDataDir(), 'audit.log')));
    const audit = auditLog === false ? undefined : new AuditLog({ file: auditFile, maxBytes: config.service.auditMaxBytes, keep: config.service.auditKeep });
    // With writes on, the audit log fails closed: refuse to start rather than serve writes nobody could review.
    if (audit && config.connections.some((c) => c.policy.allowWrites)) {
      const where = `the audit log ${auditFile}${auditLog === undefined ? ' (the default, under CRM_MCP_HOME)' : ''}`;
      const hung = () =>
        new ConfigError([
          `CRM_MCP_AUDIT_LOG: ${where} did not answer within ${STARTUP_CHECK_MS / 1000} s (a hung mount, a FIFO or a device?), and writes are enabled (CRM_ALLOW_WRITES=true): every write must leave an audit line. Point CRM_MCP_AUDIT_LOG at a file on a local disk, or set CRM_MCP_AUDIT_LOG=off to run without an audit log.`,
        ]);
      // Opening a FIFO for writing blocks until a reader comes, in a thread not even exit can take back: a
      // path that is there but no regular file is refused before it is opened.
      const kind = auditFile
        ? await withDeadline(
            stat(auditFile).then(
              (st) => (st.isFile() ? undefined : 'not a regular file (a FIFO, a device or a directory?)'),
              () => undefined,
            ),
            STARTUP_CHECK_MS,
            hung,
          )
        : undefined;
      if (kind) throw new ConfigError([`CRM_MCP_AUDIT_LOG: ${where} is ${kind}. Point CRM_MCP_AUDIT_LOG at a regular file, or set CRM_MCP_AUDIT_LOG=off.`]);
      await withDeadline(audit.ensureWritable(), STARTUP_CHECK_MS, hung).catch((err: unknown) => {
        if (err instanceof ConfigError) throw err;
        const why = ((err as Error).cause as { code?: string } | undefined)?.code ?? 'not writable';
        throw new ConfigError([
          `CRM_MCP_AUDIT_LOG: ${where} cannot be written (${why}), and writes are enabled (CRM_ALLOW_WRITES=true): every write must leave an audit line. Point CRM_MCP_AUDIT_LOG at a writable file (its directory is created if missing), fix the permissions, or set CRM_MCP_AUDIT_LOG=off to run without an audit log.`,
        ]);
      });
    }
    const metrics = o.metrics && config.service.metrics !== false ? new (await import('./metrics/metrics.js')).Metrics(metricsOptions()) : undefined;
    const providers = await buildProviders(config, { store, logger: o.logger, onEvent: metrics?.onHttpEvent, trustedOrigins: o.trustedOrigins });
    metrics?.watchProviders(providers);
    // Locks are named by the account (kind and address), so instances configured with other connection names
    // still meet on one account's people, and two accounts never wait for each other.
    const accounts = new Map(
      config.connections.map((c) => {
        const m = defaultRegistry.modules().find((x) => x.kind === c.provider);
        return [c.name, `${c.provider}:${m ? m.connection.address(c) : c.name}`] as const;
      }),
    );
    const identityLocks = new IdentityLocks(store, IDENTITY_LOCK_TIMES, (name) => accounts.get(name));
    const events = openEventLog(store, o.eventsRetention);
    const close = async () => {
      await events.close();
      await store.close();
    };
    return { config, store, providers, audit, metrics, auditFile, identityLocks, events, close };
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}

/**
 * openStore, bounded: the file store creates its directory synchronously, and a directory that never answers
 * (a hung mount) would stop the process before it could say anything. So the directory is first created
 * asynchronously under a deadline; a failure other than a timeout is left to openStore, whose message says more.
 */
export async function openStoreBounded(spec: string | undefined): Promise<Store> {
  // The file openStore would use (store.ts): no file for memory and Redis (whose connect has its own timeout).
  const file =
    spec === 'memory' || storeSpecProblem(spec) || /^rediss?:\/\//i.test(spec ?? '')
      ? undefined
      : spec
        ? spec.replace(/^file:(\/\/)?/i, '')
        : join(defaultDataDir(), 'store.json');
  if (file) {
    const variable = spec ? 'CRM_MCP_STORE' : 'CRM_MCP_HOME';
    const hung = () =>
      new ConfigError([
        `${variable}: the store's directory ${dirname(file)} did not answer within ${STARTUP_CHECK_MS / 1000} s (a hung mount?). Point ${variable} at a directory on a local disk${spec ? ', or use CRM_MCP_STORE=redis://…' : ''}.`,
      ]);
    await withDeadline(mkdir(dirname(file), { recursive: true, mode: 0o700 }), STARTUP_CHECK_MS, hung).catch((err: unknown) => {
      if (err instanceof ConfigError) throw err;
    });
  }
  return openStore(spec);
}

/** What the metrics need to know of the CRMs and the tools, which they do not import: each CRM's endpoint labels, the tool names. */
export function metricsOptions(
  modules: readonly LabelledModule[] = defaultRegistry.modules(),
): Pick<MetricsOptions, 'endpointLabel' | 'toolNames' | 'hookPaths'> {
  return {
    endpointLabel: endpointLabeler(modules),
    toolNames: ALL_TOOLS.map((t) => t.name),
    hookPaths: modules.flatMap((m) => (m.events?.receive ? [m.events.hookPath] : [])),
  };
}

type LabelledModule = Pick<CrmModule, 'kind' | 'metricsLabel'> & { readonly events?: Pick<NonNullable<CrmModule['events']>, 'hookPath' | 'receive'> };

/** A CRM request's metrics label, by the module of its kind (contract.ts `metricsLabel`); `other` for a CRM without labels. */
export function endpointLabeler(modules: readonly LabelledModule[] = defaultRegistry.modules()): EndpointLabeler {
  const byKind = new Map(modules.map((m) => [m.kind, m] as const));
  return (provider, method, path) => byKind.get(provider)?.metricsLabel?.(method, path) ?? 'other';
}

const defaultLabeler = endpointLabeler();

/** `kind`, path → the endpoint label the registered CRMs give a request (the method does not change it for the shipped ones). */
export function endpointOf(provider: string, path: string, method = 'GET'): string {
  return defaultLabeler(provider, method, path);
}
