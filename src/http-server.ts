/**
 * Streamable HTTP at /mcp, stateless: a fresh McpServer and transport per request, so any instance can
 * answer any request. Guards, in order: Host (DNS rebinding on loopback), Origin (a browser page from a site
 * not on the allow list), the bearer token, the method, the body size. /metrics sits behind the same token;
 * /healthz is a readiness probe that says only ok/unavailable unless the caller sends the token. close()
 * stops accepting and lets in-flight calls finish.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Logger } from 'pino';
import type { PolicyFlags } from './policy/policy.js';

/** What a request asks of the server it gets. */
export interface RequestScope {
  /** Restrictions the request's headers ask for; they can only tighten the operator's policy. */
  narrow: Partial<PolicyFlags>;
}

export interface Readiness {
  ok: boolean;
  details: Record<string, unknown>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  /** Called once per request (the server is stateless). */
  makeServer: (scope: RequestScope) => McpServer;
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
  /** Prometheus exposition for /metrics; absent = no /metrics. */
  metrics?: { contentType: string; render(): Promise<string> };
  /** How long close() waits for in-flight requests before cutting connections. */
  shutdownTimeoutMs?: number;
}

/** Idle MCP servers kept per policy scope for reuse (the stateless transport is per request). */
const MAX_IDLE_SERVERS = 8;

const rpcError = (code: number, message: string) => JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null });

function hostname(h: string | undefined): string {
  if (!h) return '';
  return h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : (h.split(':')[0] ?? '');
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

const CLEAR_FALSE = new Set(['0', 'false', 'no', 'off']);
const CLEAR_TRUE = new Set(['1', 'true', 'yes', 'on']);

/**
 * Per-request narrowing from headers: `X-CRM-Read-Only`, `X-CRM-Safe-Mode`, `X-CRM-Allow-Delete: false`,
 * `X-CRM-Allow-Admin: false`. They fail closed: a header that is present narrows unless its value is one
 * clear word that does not (read-only/safe-mode: a clear "false"; allow-delete/allow-admin: a clear "true",
 * which still cannot widen the operator's flags). A repeated header ("true, false" once joined), a list, a
 * typo or an empty value narrows, so a client cannot undo what a proxy added by sending its own copy.
 */
export function narrowFromHeaders(headers: IncomingMessage['headers']): Partial<PolicyFlags> {
  /** undefined: absent; otherwise the single clear word, or null when it is not one clear word. */
  const word = (name: string): string | null | undefined => {
    const raw = headers[name];
    if (raw === undefined) return undefined;
    const values = Array.isArray(raw) ? raw : [raw];
    if (values.length !== 1) return null;
    const v = values[0]!.trim().toLowerCase();
    return /^[a-z0-9]+$/.test(v) ? v : null;
  };
  const narrow: Partial<PolicyFlags> = {};
  const readOnly = word('x-crm-read-only');
  if (readOnly !== undefined && !(readOnly !== null && CLEAR_FALSE.has(readOnly))) narrow.allowWrites = false;
  const safe = word('x-crm-safe-mode');
  if (safe !== undefined && !(safe !== null && CLEAR_FALSE.has(safe))) narrow.safeMode = true;
  const del = word('x-crm-allow-delete');
  if (del !== undefined && !(del !== null && CLEAR_TRUE.has(del))) narrow.allowDelete = false;
  const admin = word('x-crm-allow-admin');
  if (admin !== undefined && !(admin !== null && CLEAR_TRUE.has(admin))) narrow.allowAdmin = false;
  return narrow;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time: both sides are hashed to the same length first, so neither length nor content leaks. */
function tokenMatches(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

class BodyTooLarge extends Error {}

/** Reads the body, failing as soon as it passes `max` bytes (whether or not a content-length was sent). */
function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

const CORS_ALLOW_HEADERS = 'authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id, x-crm-read-only, x-crm-safe-mode, x-crm-allow-delete, x-crm-allow-admin';

export interface RunningHttpServer {
  server: Server;
  url: string;
  /** Stops accepting, waits for in-flight requests (up to the shutdown deadline), then closes. */
  close(): Promise<void>;
}

export async function startHttpServer(o: HttpServerOptions): Promise<RunningHttpServer> {
  const loopbackBind = isLoopback(o.host);
  if (!loopbackBind && !o.token) {
    throw new Error(
      `Refusing to listen on ${o.host} without a token: anyone who can reach this address could use your CRM. ` +
        'Set CRM_MCP_HTTP_TOKEN (e.g. `openssl rand -hex 32`) or bind to 127.0.0.1.',
    );
  }
  const expected = o.token ? digest(o.token) : undefined;
  const allowedHosts = new Set(['127.0.0.1', 'localhost', '[::1]', o.host, ...(o.allowedHosts ?? [])]);
  // On loopback the Host check is what stops DNS rebinding. Bound to a public address the bearer token
  // does that job (a rebinding page cannot know it), and the names clients use are not known in advance.
  const checkHost = loopbackBind || (o.allowedHosts?.length ?? 0) > 0;
  const corsOrigins = new Set(o.corsOrigins ?? []);
  const maxBody = o.maxBodyBytes ?? 1024 * 1024;
  const ownOrigins = new Set<string>();
  let inflight = 0;
  let closing = false;
  let drained: (() => void) | undefined;

  const json = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    if (closing) headers.connection = 'close';
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
  };

  /** True when the request may go on; else the refusal has been sent. */
  const guard = (req: IncomingMessage, res: ServerResponse, cors: Record<string, string>): boolean => {
    if (checkHost && !allowedHosts.has(hostname(req.headers.host))) {
      json(res, 403, rpcError(-32000, 'Forbidden host'));
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !corsOrigins.has(origin) && !ownOrigins.has(origin)) {
      json(res, 403, rpcError(-32000, 'Forbidden origin'));
      return false;
    }
    if (origin !== undefined && corsOrigins.has(origin)) {
      Object.assign(cors, { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': 'mcp-session-id, www-authenticate' });
    }
    if (req.method === 'OPTIONS') {
      if (origin !== undefined && corsOrigins.has(origin)) {
        res
          .writeHead(204, {
            ...cors,
            'access-control-allow-methods': 'POST, GET, OPTIONS',
            'access-control-allow-headers': CORS_ALLOW_HEADERS,
            'access-control-max-age': '600',
          })
          .end();
      } else json(res, 405, rpcError(-32000, 'Method not allowed'), { allow: 'POST' });
      return false;
    }
    if (expected) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!m || !tokenMatches(m[1]!, expected)) {
        const challenge = m ? 'Bearer realm="crm-mcp", error="invalid_token"' : 'Bearer realm="crm-mcp"';
        json(res, 401, rpcError(-32001, 'Unauthorized: send Authorization: Bearer <CRM_MCP_HTTP_TOKEN>'), { ...cors, 'www-authenticate': challenge });
        return false;
      }
    }
    return true;
  };

  const idle = new Map<string, McpServer[]>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz') {
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
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      const detailed = expected !== undefined && m !== null && tokenMatches(m[1]!, expected);
      const up = r.ok && !closing;
      json(res, up ? 200 : 503, JSON.stringify({ status: up ? 'ok' : 'unavailable', ...(detailed ? { ...(closing ? { shutting_down: true } : {}), ...r.details } : {}) }));
      return;
    }
    if (path === '/metrics' && o.metrics) {
      if (!guard(req, res, {})) return;
      if (req.method !== 'GET') return json(res, 405, rpcError(-32000, 'Method not allowed'), { allow: 'GET' });
      const body = await o.metrics.render();
      res.writeHead(200, { 'content-type': o.metrics.contentType }).end(body);
      return;
    }
    if (path !== '/mcp') {
      json(res, 404, rpcError(-32000, 'Not found: the MCP endpoint is /mcp'));
      return;
    }
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
    if (Number(req.headers['content-length'] ?? 0) > maxBody) {
      json(res, 413, rpcError(-32000, 'Request body too large'), cors);
      return;
    }
    let parsed: unknown;
    try {
      const text = await readBody(req, maxBody);
      parsed = JSON.parse(text);
    } catch (err) {
      if (err instanceof BodyTooLarge) {
        // The rest of the body is not wanted: answer now and close the connection after the answer.
        json(res, 413, rpcError(-32000, 'Request body too large'), { ...cors, connection: 'close' });
      } else json(res, 400, rpcError(-32700, 'Parse error: the body is not JSON'), cors);
      return;
    }
    for (const [k, v] of Object.entries(cors)) res.setHeader(k, v);
    const scope = { narrow: narrowFromHeaders(req.headers) };
    // Stateless: every request gets its own transport. Servers are reused once their request is over
    // (per policy scope), which saves building the tool set for every request.
    const key = JSON.stringify(scope.narrow ?? {});
    const server = idle.get(key)?.pop() ?? o.makeServer(scope);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close().then(() => {
        // Closing the transport disconnected the server; keep a few idle ones for the next requests.
        const pool = idle.get(key) ?? idle.set(key, []).get(key)!;
        if (!server.isConnected() && pool.length < MAX_IDLE_SERVERS) pool.push(server);
        else void server.close();
      });
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, parsed);
    } catch (err) {
      o.logger?.error({ err: String(err) }, 'MCP HTTP request failed');
      if (!res.headersSent) json(res, 500, rpcError(-32603, 'Internal server error'));
    }
  };

  const server = createHttpServer((req, res) => {
    inflight += 1;
    let counted = true;
    const finish = () => {
      if (!counted) return;
      counted = false;
      inflight -= 1;
      if (closing && inflight === 0) drained?.();
    };
    res.on('close', finish);
    res.on('finish', finish);
    void handle(req, res).catch((err: unknown) => {
      o.logger?.error({ err: String(err) }, 'HTTP request failed');
      if (!res.headersSent) json(res, 500, rpcError(-32603, 'Internal server error'));
    });
  });
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
        if (inflight > 0) {
          const deadline = o.shutdownTimeoutMs ?? 10_000;
          await new Promise<void>((resolve) => {
            drained = resolve;
            setTimeout(resolve, deadline).unref();
          });
        }
        server.closeIdleConnections();
        server.closeAllConnections();
        await stopped;
      })()),
  };
}
