/**
 * Prometheus metrics for the HTTP service, on prom-client with a Registry of its own (the global one would
 * mix in whatever else the process loads, and tests build several servers in one process).
 *
 * Labels never carry a secret or an id: a Bitrix24 endpoint is the REST method name (the webhook path with
 * its secret is dropped), a Kommo endpoint is the path template with numeric ids replaced by `:id`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpEvent } from '../http/client.js';
import type { CrmProvider } from '../providers/types.js';

const PREFIX = 'crm_mcp_';

/** Bitrix24: `…/crm.deal.list.json` → `crm.deal.list`; Kommo: `/api/v4/leads/123/notes` → `/api/v4/leads/:id/notes`. */
export function endpointOf(provider: string, path: string): string {
  if (provider === 'bitrix24') {
    // Drop `/rest/` and a webhook's `{user}/{secret}/`: what is left is the method name, or nothing.
    const method = path.replace(/^\/rest\/(\d+\/[^/]+\/)?/, '').replace(/\.json$/i, '').toLowerCase();
    // Only a dotted method name may become a label: anything else could be (part of) a webhook secret.
    return /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/.test(method) && method.length <= 80 ? method : 'other';
  }
  if (provider === 'kommo') {
    if (!path.startsWith('/api/v4/')) return 'other';
    const parts = path
      .split('/')
      .filter(Boolean)
      .slice(0, 8)
      .map((seg, i) => (i < 2 || /^[a-z_]{1,40}$/.test(seg) ? seg : ':id'));
    return `/${parts.join('/')}`;
  }
  return 'other';
}

/** Tool outcome label: `ok` or the stable error code. */
export type ToolOutcome = 'ok' | string;

interface AuthView {
  tokens?: { refreshCount: number; peek(): { expires_at: number } | undefined };
  info?: () => Promise<{ expires_at: string | null }>;
}

export interface MetricsOptions {
  /** Also export process metrics (CPU, memory, event loop); default true. */
  processMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly providers: CrmProvider[] = [];
  private readonly refreshesSeen = new Map<string, number>();

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
  private readonly denials = new Counter({
    name: `${PREFIX}policy_denials_total`,
    help: 'Tool calls the safety policy refused (at call time or at the HTTP core), by connection, tool and effect.',
    labelNames: ['connection', 'tool', 'effect'] as const,
    registers: [this.registry],
  });

  constructor(o: MetricsOptions = {}) {
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
  watchProviders(providers: readonly CrmProvider[]): void {
    this.providers.push(...providers);
  }

  /** HttpCore's per-attempt hook. */
  readonly onHttpEvent = (e: HttpEvent): void => {
    const endpoint = endpointOf(e.provider, e.path);
    const status = e.status > 0 ? String(e.status) : (e.error ?? 'network');
    this.crmRequests.inc({ provider: e.provider, endpoint, method: e.method, status });
    this.crmLatency.observe({ provider: e.provider, endpoint }, e.ms / 1000);
    this.limiterWait.observe({ provider: e.provider }, e.limiterWaitMs / 1000);
    if (e.attempt > 0) this.retries.inc({ provider: e.provider, endpoint });
  };

  toolCall(tool: string, outcome: ToolOutcome, seconds: number): void {
    this.toolCalls.inc({ tool, outcome });
    this.toolLatency.observe({ tool }, seconds);
  }

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

function authOf(p: CrmProvider): AuthView | undefined {
  return (p as unknown as { auth?: AuthView }).auth;
}

/** Epoch ms when the provider's credential expires, when it does. */
async function expiryOf(p: CrmProvider): Promise<number | undefined> {
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
