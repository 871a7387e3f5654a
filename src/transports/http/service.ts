/**
 * Streamable HTTP at /mcp, stateless: any instance can answer any request, for both protocol eras (the
 * 2026-07-28 revision per request, the 2025 ones through the SDK's stateless legacy leg), so the service
 * scales out behind a balancer with Redis as the only shared state. Order of checks: the header cap (431),
 * Host, Origin, bearer token (guards.ts), method, body size (body.ts), no JSON-RPC batch, the standard headers
 * against the body (standard-headers.ts), the tools/call rate limit (rate-limit.ts), then the SDK handler
 * for the request's policy scope (pool.ts). /metrics sits behind the same token; /healthz is a readiness probe that says only
 * ok/unavailable unless the caller sends the token. close() stops accepting and lets in-flight calls finish.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import type { McpServer, ServerEventBus } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { DEFAULT_MAX_BODY_BYTES, readJsonBody } from './body.js';
import {
  bearerOf,
  createGuard,
  digest,
  isLoopback,
  MAX_HEADER_FIELDS,
  narrowFromHeaders,
  reachedHeaderCap,
  rpcError,
  sendJson,
  tokenMatches,
  type GuardOptions,
} from './guards.js';
import { HandlerPool, type RequestScope } from './pool.js';
import { approvalRoutes } from './approvals.js';
import type { ApprovalDesk } from '../../approvals/desk.js';
import { TokenBucketLimiter, type RateLimitOptions } from './rate-limit.js';
import { checkStandardHeaders, HEADER_MISMATCH, type RequestFacts } from './standard-headers.js';
import { responseWithServedVersions } from '../versions.js';

export { isLoopback, MAX_HEADER_FIELDS, narrowFromHeaders } from './guards.js';
export type { RequestScope } from './pool.js';

export interface Readiness {
  ok: boolean;
  details: Record<string, unknown>;
}

/** One answered MCP request, for the metrics: method and name as the (validated) standard headers and the body agree. */
export interface McpRequestRecord {
  method: string;
  name?: string;
  era: 'modern' | 'legacy';
  status: number;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Called once per request (the server is stateless); must return a new server every time. */
  makeServer: (scope: RequestScope) => McpServer;
  /**
   * Preferred over makeServer when given: called once per policy scope, and what it returns builds each
   * request's server, so the work that depends only on the scope is not repeated per request.
   */
  prepareServer?: (scope: RequestScope) => () => McpServer;
  logger?: Logger;
  /** Extra allowed Host names besides loopback and the bound host. */
  allowedHosts?: string[];
  /** Largest request body (bytes), enforced while the body streams in. */
  maxBodyBytes?: number;
  /** Bearer token required on /mcp and /metrics. Required when binding to anything but loopback. */
  token?: string;
  /** Browser origins allowed to call /mcp (and answered CORS preflights); none by default. */
  corsOrigins?: string[];
  /** Readiness for /healthz: 200 when ok, 503 otherwise; the details are shown only to a caller with the token. */
  ready?: () => Promise<Readiness>;
  /** Prometheus exposition for /metrics; absent = no /metrics. `mcpRequest` counts answered MCP requests. */
  metrics?: { contentType: string; render(): Promise<string>; mcpRequest?(r: McpRequestRecord): void };
  /** Token bucket for tools/call per client (bearer token and address); absent = no inbound limit. */
  rateLimit?: RateLimitOptions;
  /** How long close() waits for in-flight requests before cutting connections. */
  shutdownTimeoutMs?: number;
  /** CRM_CONFIRM_WRITES: serves the approval page (/approvals, approvals.ts) over this desk. */
  approvals?: ApprovalDesk;
  /** Where the 2026-07-28 `subscriptions/listen` streams hear of resource updates (events/notify.ts; across instances through Redis). */
  bus?: ServerEventBus;
  /** The CRM webhook receiver (transports/hooks/): every path under /hooks, not behind the bearer token (it has its own checks). */
  hooks?: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  /** Stops accepting, waits for in-flight requests (up to the shutdown deadline), then closes. */
  close(): Promise<void>;
}

/** Hop-by-hop and framing headers that do not belong on the Request handed to the SDK (it gets the parsed body). */
const DROPPED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'upgrade', 'expect']);

/** The web-standard Request the SDK handler takes: method, URL and headers; the body is passed parsed. */
function toWebRequest(req: IncomingMessage, signal: AbortSignal): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || DROPPED_HEADERS.has(k)) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  return new Request(new URL(req.url ?? '/mcp', 'http://localhost'), { method: 'POST', headers, signal });
}

/**
 * Writes a web body to the Node response as it comes (an SSE answer streams progress and logs), waiting for
 * the socket when it is full, and cancels the body when the client goes. A plain read loop rather than
 * Readable.fromWeb + pipeline, which add a Node stream, an AbortController and listeners per request that
 * Node 20 keeps through young-generation GCs (RSS, bench figure 4).
 */
async function copyBody(body: ReadableStream<Uint8Array>, res: ServerResponse): Promise<void> {
  const reader = body.getReader();
  const gone = () => void reader.cancel().catch(() => undefined);
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done).off('close', done);
        resolve();
      };
      res.on('drain', done).on('close', done);
    });
  res.once('close', gone);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value) && !res.destroyed) await drained();
    }
    if (!res.destroyed) res.end();
  } catch {
    // The body failed: cut the answer short, as a broken stream would.
    res.destroy();
  } finally {
    res.off('close', gone);
    reader.releaseLock();
  }
}

/** Who a request counts against: its bearer token (hashed) and its address. */
function clientKey(req: IncomingMessage): string {
  const bearer = bearerOf(req);
  return `${bearer ? digest(bearer).toString('hex').slice(0, 16) : '-'}|${req.socket.remoteAddress ?? '?'}`;
}

export async function startHttpServer(o: HttpServerOptions): Promise<RunningHttpServer> {
  // Per-request objects that survive a young-generation GC or two (a call in flight) make V8 decide, per
  // allocation site, to allocate them straight in old space from then on; stateless serving then turns every
  // request's server into old-space garbage kept until the next full GC (≈ 10 MB of RSS after 1,000 calls,
  // bench figure 4). The flag only stops those decisions; V8 reads it at each GC, so setting it here takes effect.
  setFlagsFromString('--no-allocation-site-pretenuring');
  const loopbackBind = isLoopback(o.host);
  if (!loopbackBind && !o.token) {
    throw new Error(
      `Refusing to listen on ${o.host} without a token: anyone who can reach this address could use your CRM. ` +
        'Set CRM_MCP_HTTP_TOKEN (e.g. `openssl rand -hex 32`) or bind to 127.0.0.1.',
    );
  }
  const expected = o.token ? digest(o.token) : undefined;
  const maxBody = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const ownOrigins = new Set<string>();
  let inflight = 0;
  // Open subscriptions/listen streams: they last until the client or the server ends them, so shutdown does
  // not wait for them; closing the handlers ends them gracefully (the empty listen result, then the stream end).
  let listening = 0;
  const listens = new WeakSet<ServerResponse>();
  const drainedNow = () => inflight - listening <= 0;
  let closing = false;
  let drained: (() => void) | undefined;
  /** What close() is waiting for; checked whenever a response ends. */
  let waitingFor: (() => boolean) | undefined;
  const guardOptions: GuardOptions = {
    // On loopback the Host check is what stops DNS rebinding. Bound to a public address the bearer token
    // does that job (a rebinding page cannot know it), and the names clients use are not known in advance.
    checkHost: loopbackBind || (o.allowedHosts?.length ?? 0) > 0,
    allowedHosts: new Set(['127.0.0.1', 'localhost', '[::1]', o.host, ...(o.allowedHosts ?? [])]),
    corsOrigins: new Set(o.corsOrigins ?? []),
    ownOrigins,
    expected,
    closing: () => closing,
  };
  const guard = createGuard(guardOptions);
  const json = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => sendJson(res, status, body, headers, closing);
  // The approval page admits no CORS origin: those are pages allowed to call /mcp, the agent's side.
  const approvalsPage = o.approvals
    ? approvalRoutes({ desk: o.approvals, guard: createGuard({ ...guardOptions, corsOrigins: new Set() }), hasToken: expected !== undefined, json })
    : undefined;
  const limiter = o.rateLimit ? new TokenBucketLimiter(o.rateLimit) : undefined;
  const pool = new HandlerPool({
    makeServer: o.makeServer,
    prepareServer: o.prepareServer,
    bus: o.bus,
    maxRequestBodySize: maxBody,
    // Rejections the SDK answered (a missing header, an unsupported version) are the caller's mistakes.
    onerror: (err) => o.logger?.debug({ err: err.message }, 'MCP request refused or failed in the SDK'),
  });

  const healthz = async (req: IncomingMessage, res: ServerResponse) => {
    let r: Readiness = { ok: true, details: {} };
    if (o.ready) {
      try {
        r = await o.ready();
      } catch (err) {
        r = { ok: false, details: { error: String((err as Error)?.message ?? err) } };
      }
    }
    // Probes need no token, so without one the answer is ready or not and nothing else: connection names
    // and store state describe the deployment. The details are shown only to a caller with the bearer token.
    const token = bearerOf(req);
    const detailed = expected !== undefined && token !== undefined && tokenMatches(token, expected);
    const up = r.ok && !closing;
    json(
      res,
      up ? 200 : 503,
      JSON.stringify({ status: up ? 'ok' : 'unavailable', ...(detailed ? { ...(closing ? { shutting_down: true } : {}), ...r.details } : {}) }),
    );
  };

  const mcp = async (req: IncomingMessage, res: ServerResponse) => {
    const cors: Record<string, string> = {};
    if (!guard(req, res, cors)) return;
    if (req.method !== 'POST') {
      json(res, 405, rpcError(-32000, 'Method not allowed: this server is stateless (POST only)'), { ...cors, allow: 'POST' });
      return;
    }
    if (closing) {
      json(res, 503, rpcError(-32000, 'The server is shutting down'), { ...cors, 'retry-after': '1' });
      return;
    }
    const body = await readJsonBody(req, maxBody);
    if (!body.ok) {
      if (body.status === 413)
        json(res, 413, rpcError(-32000, 'Request body too large'), { ...cors, ...(body.closeConnection ? { connection: 'close' } : {}) });
      else json(res, 400, rpcError(-32700, 'Parse error: the body is not JSON'), cors);
      return;
    }
    // A JSON-RPC batch would run every call in it past the per-call checks below (one rate-limit token, one
    // metrics label for the lot); no revision since 2025-06-18 allows batches, so none is run.
    if (Array.isArray(body.parsed)) {
      o.metrics?.mcpRequest?.({ method: 'batch', era: 'legacy', status: 400 });
      const message = 'Invalid Request: JSON-RPC batches are not supported; send each request in its own POST (MCP 2025-06-18 and later have no batches)';
      json(res, 400, rpcError(-32600, message), cors);
      return;
    }
    const checked = checkStandardHeaders(req.headers, body.parsed);
    const facts: RequestFacts = checked.facts;
    const record = (status: number) =>
      o.metrics?.mcpRequest?.({ method: facts.method, ...(facts.name !== undefined ? { name: facts.name } : {}), era: facts.era, status });
    if (!checked.ok) {
      record(400);
      json(res, 400, rpcError(HEADER_MISMATCH, checked.message, facts.id), cors);
      return;
    }
    if (limiter && facts.method === 'tools/call') {
      const took = limiter.take(clientKey(req));
      if (!took.ok) {
        record(429);
        const message = `Rate limit exceeded: too many tool calls from this client (CRM_MCP_HTTP_RATE_LIMIT); retry in ${took.retryAfterSec} s`;
        json(res, 429, rpcError(-32000, message, facts.id), { ...cors, 'retry-after': String(took.retryAfterSec) });
        return;
      }
    }
    if (facts.method === 'subscriptions/listen') {
      listens.add(res);
      listening += 1;
      if (closing && waitingFor?.()) drained?.();
    }
    // The narrowing headers pick the handler (and so the servers) for this request's policy scope.
    const handler = pool.get({ narrow: narrowFromHeaders(req.rawHeaders) });
    const abort = new AbortController();
    // A client that goes away cancels its request (the 2026-07-28 cancellation signal on HTTP).
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    try {
      await answer(handler, req, res, body.parsed, abort.signal, cors, facts, record);
    } finally {
      // Also after a normal end: the SDK's listeners on the request's signal (the 2025 leg's teardown, which
      // holds that request's server) go with the abort, instead of riding along until the next full GC.
      abort.abort();
    }
  };

  const answer = async (
    handler: ReturnType<HandlerPool['get']>,
    req: IncomingMessage,
    res: ServerResponse,
    parsed: unknown,
    signal: AbortSignal,
    cors: Record<string, string>,
    facts: RequestFacts,
    record: (status: number) => void,
  ) => {
    let response: Response;
    try {
      response = await responseWithServedVersions(await handler.fetch(toWebRequest(req, signal), { parsedBody: parsed }));
    } catch (err) {
      o.logger?.error({ err: String(err) }, 'MCP HTTP request failed');
      record(500);
      if (!res.headersSent) json(res, 500, rpcError(-32603, 'Internal server error', facts.id), cors);
      return;
    }
    record(response.status);
    if (res.destroyed) {
      await response.body?.cancel().catch(() => undefined);
      return;
    }
    const headers: Record<string, string> = { ...cors };
    response.headers.forEach((v, k) => (headers[k] = v));
    if (closing) headers.connection = 'close';
    res.writeHead(response.status, headers);
    if (!response.body) {
      res.end();
      return;
    }
    await copyBody(response.body, res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // Past the cap Node has dropped headers without a word, perhaps the narrowing one a proxy appended last:
    // nothing about such a request can be trusted, so it is refused whatever it asks for.
    if (reachedHeaderCap(req.rawHeaders)) {
      json(res, 431, rpcError(-32000, `Request header fields too large: at most ${MAX_HEADER_FIELDS - 1} header fields are accepted`), { connection: 'close' });
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz') return healthz(req, res);
    if (path === '/metrics' && o.metrics) {
      if (!guard(req, res, {})) return;
      if (req.method !== 'GET') return json(res, 405, rpcError(-32000, 'Method not allowed'), { allow: 'GET' });
      const text = await o.metrics.render();
      res.writeHead(200, { 'content-type': o.metrics.contentType }).end(text);
      return;
    }
    if (approvalsPage && (path === '/approvals' || path.startsWith('/approvals/'))) return approvalsPage(req, res, path);
    if (o.hooks && path.startsWith('/hooks/')) return o.hooks(req, res, path);
    if (path !== '/mcp') return json(res, 404, rpcError(-32000, 'Not found: the MCP endpoint is /mcp'));
    return mcp(req, res);
  };

  const server = createHttpServer((req, res) => {
    inflight += 1;
    let counted = true;
    const finish = () => {
      if (!counted) return;
      counted = false;
      inflight -= 1;
      if (listens.delete(res)) listening -= 1;
      if (closing && waitingFor?.()) drained?.();
    };
    res.on('close', finish);
    res.on('finish', finish);
    void handle(req, res).catch((err: unknown) => {
      o.logger?.error({ err: String(err) }, 'HTTP request failed');
      if (!res.headersSent) json(res, 500, rpcError(-32603, 'Internal server error'));
    });
  });
  // Set rather than left to Node's default, so reachedHeaderCap measures against the cap Node applies.
  server.maxHeadersCount = MAX_HEADER_FIELDS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  // Same-origin requests (a page served from this very address) are not cross-site.
  for (const h of [shownHost, ...(loopbackBind ? ['127.0.0.1', 'localhost', '[::1]'] : [])]) ownOrigins.add(`http://${h}:${addr.port}`);

  let closed: Promise<void> | undefined;
  return {
    server,
    url: `http://${shownHost}:${addr.port}/mcp`,
    close: () =>
      (closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const until = (done: () => boolean, ms: number) =>
          done()
            ? Promise.resolve()
            : new Promise<void>((resolve) => {
                waitingFor = done;
                drained = resolve;
                setTimeout(resolve, ms).unref();
              });
        await until(drainedNow, o.shutdownTimeoutMs ?? 10_000);
        // Ends listen streams with their result and aborts whatever outlived the deadline; then a moment
        // for those last frames to be written before the sockets go.
        await pool.close();
        await until(() => inflight === 0, 1000);
        server.closeIdleConnections();
        server.closeAllConnections();
        await stopped;
      })()),
  };
}
