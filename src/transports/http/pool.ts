/**
 * One SDK handler (`createMcpHandler`) per policy scope. The handler serves both protocol eras through one
 * factory: 2026-07-28 requests per request, 2025-era ones through its stateless legacy leg. Its factory is
 * called once per request and must return a fresh server (the SDK binds an instance to one exchange and
 * writes the request's era and client identity into it, so a reused instance would carry one request's
 * state into the next); what makes that cheap is built once per scope (server.ts serverFactory: the plan,
 * the converted schemas, the hints and the call handlers). The scope — the narrowing a request's X-CRM-* headers ask for — is fixed per handler,
 * so a request can never be served by a server built for another scope.
 */
import { createMcpHandler, type McpHttpHandler, type McpServer, type ServerEventBus } from '@modelcontextprotocol/server';
import type { PolicyFlags } from '../../policy/policy.js';

/** What a request asks of the server it gets. */
export interface RequestScope {
  /** Restrictions the request's headers ask for; they can only tighten the operator's policy. */
  narrow: Partial<PolicyFlags>;
}

export interface HandlerPoolOptions {
  makeServer: (scope: RequestScope) => McpServer;
  /** Called once per scope when given: the function it returns builds each request's server (server.ts serverFactory). */
  prepareServer?: (scope: RequestScope) => () => McpServer;
  /** Largest body the SDK would read itself (the service hands it the parsed body, so this is a backstop). */
  maxRequestBodySize: number;
  onerror: (err: Error) => void;
  /** Shared by every scope's handler: the change events its `subscriptions/listen` streams deliver. */
  bus?: ServerEventBus;
}

/** Narrowing has four flags that can each only be set one way and a subset of the safe updates: at most 16 × 5 scopes. */
const MAX_SCOPES = 128;

export class HandlerPool {
  private readonly handlers = new Map<string, McpHttpHandler>();

  constructor(private readonly o: HandlerPoolOptions) {}

  /** The handler for this scope (created on first use). */
  get(scope: RequestScope): McpHttpHandler {
    // Keys are built from the sorted flags so {a, b} and {b, a} are one scope.
    const key = JSON.stringify(Object.entries(scope.narrow).sort(([a], [b]) => a.localeCompare(b)));
    let h = this.handlers.get(key);
    if (!h) {
      if (this.handlers.size >= MAX_SCOPES) {
        const [oldestKey, oldest] = this.handlers.entries().next().value as [string, McpHttpHandler];
        this.handlers.delete(oldestKey);
        void oldest.close().catch(this.o.onerror);
      }
      const frozen: RequestScope = { narrow: { ...scope.narrow } };
      // What a server of this scope needs besides its SDK instance (the plan, schemas, hints, handlers) is
      // worked out here once; each request then pays only for the instance and its registrations.
      const make = this.o.prepareServer ? this.o.prepareServer(frozen) : () => this.o.makeServer(frozen);
      h = createMcpHandler(make, {
        // Progress and log notifications upgrade the answer to an SSE stream; a plain result stays JSON.
        responseMode: 'auto',
        maxRequestBodySize: this.o.maxRequestBodySize,
        onerror: this.o.onerror,
        ...(this.o.bus ? { bus: this.o.bus } : {}),
      });
      this.handlers.set(key, h);
    }
    return h;
  }

  /** Aborts what is still in flight on every handler (shutdown, after the drain deadline). */
  async close(): Promise<void> {
    const all = [...this.handlers.values()];
    this.handlers.clear();
    await Promise.all(all.map((h) => h.close().catch(this.o.onerror)));
  }
}
