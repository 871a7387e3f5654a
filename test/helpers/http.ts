/** The inbound HTTP service in tests: on 127.0.0.1, a free port, one bearer token, a server per scope. */
import { createServer, type ServerDeps } from '../../src/server.js';
import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from '../../src/transports/http/service.js';

/** Serves `deps` over Streamable HTTP; each request's scope narrows the policy as the real service does. */
export function serveHttp(token: string, deps: ServerDeps, o: Partial<HttpServerOptions> = {}): Promise<RunningHttpServer> {
  return startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token,
    makeServer: (scope) => createServer({ ...deps, narrow: scope.narrow }),
    ...o,
  });
}

/** The `_meta` a raw 2026-07-28 request carries in place of an initialize handshake. */
export const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
