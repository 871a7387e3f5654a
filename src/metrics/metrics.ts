/**
 * Prometheus metrics for the HTTP service, on prom-client with a Registry of its own (the global one would
 * mix in whatever else the process loads, and tests build several servers in one process).
 *
 * Labels never carry a secret or an id, and the label set is bounded: the generic tools let an agent choose
 * any path or method, and every new label value is a new time series for Prometheus to keep. What a CRM
 * request's `endpoint` is, only its CRM knows: the app passes in a labeller built from the CRM modules
 * (contract.ts `metricsLabel`: a known endpoint or `other`), and a hard cap per provider stops whatever still
 * gets through. Tool names are passed in the same way (metrics is infrastructure: it reads no tool or CRM).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpEvent } from '../http/client.js';

const PREFIX = 'crm_mcp_';

/** A CRM request's `endpoint` label: bounded (unknown is `other`), never a secret or an id. */
export type EndpointLabeler = (provider: string, method: string, path: string) => string;

/**
 * MCP methods that become a `method` label (2025 and 2026-07-28 revisions); any other method name a client
 * sends is `other`, as is a name that is not a registered tool.
 */
const MCP_METHODS = new Set([
  'initialize',
  'ping',
  'server/discover',
  'subscriptions/listen',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'batch',
  'response',
  'invalid',
]);

/** Distinct endpoint labels kept per provider before every further one is `other`. */
export const MAX_ENDPOINT_LABELS = 100;

/** Tool outcome label: `ok` or the stable error code. */
export type ToolOutcome = 'ok' | string;

/** What the metrics read of a provider (a CRM provider has these): who it is, and its credential's refreshes and expiry. */
export interface WatchedProvider {
  readonly connection: string;
  readonly kind: string;
}

interface AuthView {
  tokens?: { refreshCount: number; peek(): { expires_at: number } | undefined };
  info?: () => Promise<{ expires_at: string | null }>;
}

export interface MetricsOptions {
  /** Also export process metrics (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
  /** Each CRM's endpoint labels (the app builds it from the CRM modules); without it every endpoint is `other`. */
  endpointLabel?: EndpointLabeler;
  /** The registered tools: the `tool` label of an MCP request is one of these or `other`. */
  toolNames?: Iterable<string>;
  /** The webhook receivers' paths (each CRM module's `events.hookPath`): the `hook` label is one of these or `other`. */
  hookPaths?: Iterable<string>;
}

/**
 * Delivery statuses the webhook receiver answers (transports/hooks/receiver.ts), kept as themselves; any
 * other is its class (`2xx`…), so the label set stays fixed whatever a wing's verdict says.
 */
const HOOK_STATUSES = new Set([200, 400, 403, 404, 405, 413, 415, 429, 503]);

/** One answered webhook delivery, as the receiver reports it (`onDelivery`). */
export interface HookDeliveryRecord {
  hook: string;
  status: number;
  stored: number;
  duplicates: number;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly providers: WatchedProvider[] = [];
  private readonly refreshesSeen = new Map<string, number>();
  private readonly endpointLabels = new Map<string, Set<string>>();
  private readonly endpointOf: EndpointLabeler;
  private readonly toolNames: ReadonlySet<string>;
  private readonly hookPaths: ReadonlySet<string>;

  private readonly crmRequests = new Counter({
    name: `${PREFIX}crm_requests_total`,
    help: 'Requests sent to the CRM (every attempt), by provider, endpoint, HTTP method and status (or network error code).',
    labelNames: ['provider', 'endpoint', 'method', 'status'] as const,
    registers: [this.registry],
  });
  private readonly crmLatency = new Histogram({
    name: `${PREFIX}crm_request_duration_seconds`,
    help: 'CRM request latency per attempt, from send to the whole response body.',
    labelNames: ['provider', 'endpoint'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly limiterWait = new Histogram({
    name: `${PREFIX}rate_limiter_wait_seconds`,
    help: 'Time a request waited in the client-side rate limiter before it was sent.',
    labelNames: ['provider'] as const,
    buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: `${PREFIX}crm_retries_total`,
    help: 'Repeated attempts of a CRM request (after a 429, 5xx, network failure or a refreshed credential).',
    labelNames: ['provider', 'endpoint'] as const,
    registers: [this.registry],
  });
  private readonly toolCalls = new Counter({
    name: `${PREFIX}tool_calls_total`,
    help: 'MCP tool calls by tool and outcome (ok or the error code).',
    labelNames: ['tool', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly toolLatency = new Histogram({
    name: `${PREFIX}tool_call_duration_seconds`,
    help: 'MCP tool call duration, including every CRM request it made.',
    labelNames: ['tool'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly mcpRequests = new Counter({
    name: `${PREFIX}mcp_requests_total`,
    help: 'MCP requests the HTTP service answered, by method and tool (as the Mcp-Method/Mcp-Name headers and the body agree), protocol era and HTTP status.',
    labelNames: ['method', 'tool', 'era', 'status'] as const,
    registers: [this.registry],
  });
  private readonly denials = new Counter({
    name: `${PREFIX}policy_denials_total`,
    help: 'Tool calls the safety policy refused (at call time or at the HTTP core), by connection, tool and effect.',
    labelNames: ['connection', 'tool', 'effect'] as const,
    registers: [this.registry],
  });

  private readonly hookDeliveries = new Counter({
    name: `${PREFIX}hook_deliveries_total`,
    help: 'CRM webhook deliveries the receiver answered, by hook (the CRM receiver path, or other) and HTTP status (a fixed set, else its class).',
    labelNames: ['hook', 'status'] as const,
    registers: [this.registry],
  });
  private readonly hookStored = new Counter({
    name: `${PREFIX}hook_events_stored_total`,
    help: 'Events from webhook deliveries appended to the event log, by hook.',
    labelNames: ['hook'] as const,
    registers: [this.registry],
  });
  private readonly hookDuplicates = new Counter({
    name: `${PREFIX}hook_events_duplicates_total`,
    help: 'Events from webhook deliveries the event log already held (a redelivery), by hook.',
    labelNames: ['hook'] as const,
    registers: [this.registry],
  });

  constructor(o: MetricsOptions = {}) {
    this.endpointOf = o.endpointLabel ?? (() => 'other');
    this.toolNames = new Set(o.toolNames ?? []);
    this.hookPaths = new Set(o.hookPaths ?? []);
    const providers = this.providers;
    const seen = this.refreshesSeen;
    new Counter({
      name: `${PREFIX}oauth_refreshes_total`,
      help: 'OAuth access-token refreshes this process performed, by connection.',
      labelNames: ['connection', 'provider'] as const,
      registers: [this.registry],
      collect() {
        for (const p of providers) {
          const count = authOf(p)?.tokens?.refreshCount;
          if (count === undefined) continue;
          const delta = count - (seen.get(p.connection) ?? 0);
          seen.set(p.connection, count);
          // Touch the series even at zero so a dashboard shows the connection before its first refresh.
          this.inc({ connection: p.connection, provider: p.kind }, Math.max(0, delta));
        }
      },
    });
    new Gauge({
      name: `${PREFIX}token_expiry_seconds`,
      help: 'Seconds until the CRM access token expires (negative: expired); absent for credentials that do not expire.',
      labelNames: ['connection', 'provider'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const p of providers) {
          const at = await expiryOf(p);
          if (at !== undefined) this.set({ connection: p.connection, provider: p.kind }, Math.round((at - Date.now()) / 1000));
        }
      },
    });
    if (o.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  /** Providers whose OAuth refreshes and token expiry are reported. */
  watchProviders(providers: readonly WatchedProvider[]): void {
    this.providers.push(...providers);
  }

  /** HttpCore's per-attempt hook. */
  readonly onHttpEvent = (e: HttpEvent): void => {
    const endpoint = this.boundedEndpoint(e.provider, e.method, e.path);
    const status = e.status > 0 ? String(e.status) : (e.error ?? 'network');
    this.crmRequests.inc({ provider: e.provider, endpoint, method: e.method, status });
    this.crmLatency.observe({ provider: e.provider, endpoint }, e.ms / 1000);
    this.limiterWait.observe({ provider: e.provider }, e.limiterWaitMs / 1000);
    if (e.attempt > 0) this.retries.inc({ provider: e.provider, endpoint });
  };

  /** The endpoint label, or `other` once the provider has MAX_ENDPOINT_LABELS distinct ones. */
  private boundedEndpoint(provider: string, method: string, path: string): string {
    const endpoint = this.endpointOf(provider, method, path);
    let seen = this.endpointLabels.get(provider);
    if (!seen) this.endpointLabels.set(provider, (seen = new Set()));
    if (seen.has(endpoint)) return endpoint;
    if (seen.size >= MAX_ENDPOINT_LABELS) return 'other';
    seen.add(endpoint);
    return endpoint;
  }

  toolCall(tool: string, outcome: ToolOutcome, seconds: number): void {
    this.toolCalls.inc({ tool, outcome });
    this.toolLatency.observe({ tool }, seconds);
  }

  /**
   * One answered MCP request. Bounded: the method is a known MCP method or `other`, the tool a registered
   * tool name or `other` (empty for methods without one), the status an HTTP status this service answers.
   */
  readonly mcpRequest = (r: { method: string; name?: string; era: 'modern' | 'legacy'; status: number }): void => {
    const method = MCP_METHODS.has(r.method) ? r.method : 'other';
    const tool = method !== 'tools/call' ? '' : r.name !== undefined && this.toolNames.has(r.name) ? r.name : 'other';
    const status = r.status >= 100 && r.status < 600 ? String(r.status) : 'other';
    this.mcpRequests.inc({ method, tool, era: r.era, status });
  };

  /**
   * The receiver's `onDelivery`. The hook is checked again against the known receiver paths: the path after
   * `/hooks/` may hold a secret, and no label may ever carry one.
   */
  readonly hookDelivery = (r: HookDeliveryRecord): void => {
    const hook = this.hookPaths.has(r.hook) ? r.hook : 'other';
    const status = HOOK_STATUSES.has(r.status) ? String(r.status) : r.status >= 100 && r.status < 600 ? `${Math.floor(r.status / 100)}xx` : 'other';
    this.hookDeliveries.inc({ hook, status });
    // Touched at zero too, so a dashboard shows the hook from its first delivery.
    this.hookStored.inc({ hook }, Math.max(0, r.stored));
    this.hookDuplicates.inc({ hook }, Math.max(0, r.duplicates));
  };

  policyDenied(connection: string, tool: string, effect: string): void {
    this.denials.inc({ connection, tool, effect });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

function authOf(p: WatchedProvider): AuthView | undefined {
  return (p as unknown as { auth?: AuthView }).auth;
}

/** Epoch ms when the provider's credential expires, when it does. */
async function expiryOf(p: WatchedProvider): Promise<number | undefined> {
  const auth = authOf(p);
  if (!auth) return undefined;
  const rec = auth.tokens?.peek();
  if (rec?.expires_at) return rec.expires_at;
  if (auth.info) {
    const info = await auth.info().catch(() => undefined);
    if (info?.expires_at) return Date.parse(info.expires_at);
  }
  return undefined;
}
