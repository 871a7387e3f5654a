/**
 * Prometheus metrics for the HTTP service, on prom-client with a Registry of its own (the global one would
 * mix in whatever else the process loads, and tests build several servers in one process).
 *
 * Labels never carry a secret or an id: a Bitrix24 endpoint is the REST method name (the webhook path with
 * its secret is dropped), a Kommo endpoint is the path template with ids replaced by `:id`. The label set is
 * bounded: the generic tools let an agent choose any path or method, and every new label value is a new
 * time series for Prometheus to keep. So only known Kommo resources and known Bitrix24 methods become labels
 * (anything else is `other`), and a hard cap per provider stops whatever still gets through.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpEvent } from '../http/client.js';
import type { CrmProvider } from '../providers/types.js';
import { ALL_TOOLS } from '../tools/index.js';

const PREFIX = 'crm_mcp_';

/**
 * Kommo API v4 resources (developers.kommo.com → API reference; /work/shared/research/kommo-api.md): the
 * top-level ones, and the words that may follow a resource or an id. Any other word is shown as `:other`.
 */
const KOMMO_RESOURCES = new Set([
  'account',
  'leads',
  'contacts',
  'companies',
  'customers',
  'catalogs',
  'tasks',
  'events',
  'users',
  'roles',
  'webhooks',
  'widgets',
  'calls',
  'sources',
  'talks',
  'chats',
  'short_links',
  'salesbot',
  'products',
]);
const KOMMO_SUBRESOURCES = new Set([
  'notes',
  'tags',
  'custom_fields',
  'groups',
  'links',
  'link',
  'unlink',
  'complex',
  'pipelines',
  'statuses',
  'loss_reasons',
  'unsorted',
  'forms',
  'sip',
  'accept',
  'decline',
  'summary',
  'elements',
  'segments',
  'transactions',
  'bonus_points',
  'types',
  'templates',
  'close',
  'run',
  'subscriptions',
  'watch',
]);

/** Bitrix24 method names that become labels: the ones crm-mcp's tools call and the common CRM methods. */
const BITRIX_METHODS = new Set([
  'profile',
  'scope',
  'methods',
  'method.get',
  'app.info',
  'server.time',
  'batch',
  'user.current',
  'user.get',
  'user.search',
  'user.fields',
  'crm.duplicate.findbycomm',
  'crm.settings.mode.get',
  'crm.enum.ownertype',
  'crm.enum.fields',
  'crm.enum.activitytype',
  'crm.status.list',
  'crm.status.get',
  'crm.status.fields',
  'crm.status.entity.items',
  'crm.status.entity.types',
  'crm.category.list',
  'crm.category.get',
  'crm.dealcategory.list',
  'crm.dealcategory.get',
  'crm.dealcategory.stage.list',
  'crm.timeline.comment.add',
  'crm.timeline.comment.get',
  'crm.timeline.comment.list',
  'crm.timeline.comment.update',
  'crm.timeline.comment.delete',
  'crm.timeline.comment.fields',
  'crm.activity.todo.add',
  'tasks.task.add',
  'tasks.task.get',
  'tasks.task.list',
  'tasks.task.update',
  'tasks.task.delete',
  'tasks.task.getfields',
  'event.bind',
  'event.unbind',
  'event.get',
  'event.offline.get',
  'event.offline.list',
  'crm.deal.recurring.expose',
  'crm.entity.mergebatch',
  ...['lead', 'deal', 'contact', 'company', 'quote', 'activity', 'item', 'requisite', 'product'].flatMap((e) =>
    ['list', 'get', 'add', 'update', 'delete', 'fields', 'userfield.list', 'userfield.get', 'productrows.get', 'productrows.set'].map((op) => `crm.${e}.${op}`),
  ),
  ...['deal', 'lead', 'quote'].flatMap((e) => ['contact.items.get', 'contact.items.set', 'contact.add', 'contact.delete'].map((op) => `crm.${e}.${op}`)),
  ...['contact.company', 'company.contact'].flatMap((e) => ['items.get', 'items.set', 'add', 'delete'].map((op) => `crm.${e}.${op}`)),
]);

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
const TOOL_NAMES: ReadonlySet<string> = new Set(ALL_TOOLS.map((t) => t.name));

/** Distinct endpoint labels kept per provider before every further one is `other`. */
export const MAX_ENDPOINT_LABELS = 100;

/** Bitrix24: `…/crm.deal.list.json` → `crm.deal.list`; Kommo: `/api/v4/leads/123/notes` → `/api/v4/leads/:id/notes`. */
export function endpointOf(provider: string, path: string): string {
  if (provider === 'bitrix24') {
    // Drop `/rest/` and a webhook's `{user}/{secret}/`: what is left is the method name, or nothing.
    const method = path
      .replace(/^\/rest\/(\d+\/[^/]+\/)?/, '')
      .replace(/\.json$/i, '')
      .toLowerCase();
    // Only a known method may become a label: anything else could be (part of) a webhook secret, or an
    // agent-chosen name that would add a series per call.
    return BITRIX_METHODS.has(method) ? method : 'other';
  }
  if (provider === 'kommo') {
    const parts = path.split('/').filter(Boolean);
    if (parts[0] !== 'api' || parts[1] !== 'v4' || !KOMMO_RESOURCES.has(parts[2] ?? '')) return 'other';
    const tail = parts.slice(3, 8).map((seg) => (KOMMO_SUBRESOURCES.has(seg) ? seg : /^[a-z_]+$/.test(seg) ? ':other' : ':id'));
    return `/${['api', 'v4', parts[2]!, ...tail].join('/')}${parts.length > 8 ? '/…' : ''}`;
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
  private readonly endpointLabels = new Map<string, Set<string>>();

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
    const endpoint = this.boundedEndpoint(e.provider, e.path);
    const status = e.status > 0 ? String(e.status) : (e.error ?? 'network');
    this.crmRequests.inc({ provider: e.provider, endpoint, method: e.method, status });
    this.crmLatency.observe({ provider: e.provider, endpoint }, e.ms / 1000);
    this.limiterWait.observe({ provider: e.provider }, e.limiterWaitMs / 1000);
    if (e.attempt > 0) this.retries.inc({ provider: e.provider, endpoint });
  };

  /** The endpoint label, or `other` once the provider has MAX_ENDPOINT_LABELS distinct ones. */
  private boundedEndpoint(provider: string, path: string): string {
    const endpoint = endpointOf(provider, path);
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
    const tool = method !== 'tools/call' ? '' : r.name !== undefined && TOOL_NAMES.has(r.name) ? r.name : 'other';
    const status = r.status >= 100 && r.status < 600 ? String(r.status) : 'other';
    this.mcpRequests.inc({ method, tool, era: r.era, status });
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
