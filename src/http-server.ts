/**
 * Streamable HTTP at /mcp, stateless: a fresh McpServer and transport per request, so any instance can
 * answer any request. Host-header validation guards against DNS rebinding on loopback.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Logger } from 'pino';

export interface HttpServerOptions {
  host: string;
  port: number;
  makeServer: () => McpServer;
  logger?: Logger;
  /** Extra allowed Host names besides loopback and the bound host. */
  allowedHosts?: string[];
  /** Largest request body (bytes). */
  maxBodyBytes?: number;
}

const rpcError = (code: number, message: string) => JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null });

function hostname(h: string | undefined): string {
  if (!h) return '';
  return h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : (h.split(':')[0] ?? '');
}

export interface RunningHttpServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function startHttpServer(o: HttpServerOptions): Promise<RunningHttpServer> {
  const allowed = new Set(['127.0.0.1', 'localhost', '[::1]', o.host, ...(o.allowedHosts ?? [])]);
  const maxBody = o.maxBodyBytes ?? 1024 * 1024;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path !== '/mcp') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(rpcError(-32000, 'Not found: the MCP endpoint is /mcp'));
      return;
    }
    if (!allowed.has(hostname(req.headers.host))) {
      res.writeHead(403, { 'content-type': 'application/json' }).end(rpcError(-32000, 'Forbidden host'));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'application/json' }).end(rpcError(-32000, 'Method not allowed: this server is stateless (POST only)'));
      return;
    }
    if (Number(req.headers['content-length'] ?? 0) > maxBody) {
      res.writeHead(413, { 'content-type': 'application/json' }).end(rpcError(-32000, 'Request body too large'));
      return;
    }
    const server = o.makeServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res);
    } catch (err) {
      o.logger?.error({ err: String(err) }, 'MCP HTTP request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(rpcError(-32603, 'Internal server error'));
    }
  };
  const server = createHttpServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `http://${shownHost}:${addr.port}/mcp`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
