/**
 * The HTTP server as a service, through the real SDK client over Streamable HTTP against the Kommo emulator:
 * bearer auth, Host/Origin checks, CORS, body limits, per-request narrowing, readiness and graceful shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { loadConfig } from '../../src/config/config.js';
import type { BitrixConnection } from '../../src/crms/bitrix24/connection.js';
import type { KommoConnection } from '../../src/crms/kommo/connection.js';
import { buildBitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { redact } from '../../src/util/redact.js';
import { startHttpServer, type HttpServerOptions, type RunningHttpServer } from '../../src/transports/http/service.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import { buildKommoProvider, type KommoProvider } from '../../src/crms/kommo/provider.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { openStore } from '../../src/store/store.js';
import { CREATE_ONLY, FULL, READ_ONLY, WRITE, startBitrix, startKommo, writesTo } from '../helpers/index.js';

const TOKEN = 'test-token-0123456789abcdef';
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

let emu: KommoEmulator;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
});
afterAll(async () => emu.close());

async function provider(flags: PolicyFlags): Promise<KommoProvider> {
  const conn: KommoConnection = { name: 'kommo', provider: 'kommo', baseUrl: emu.url, accessToken: emu.createLongLivedToken(), policy: flags };
  const p = buildKommoProvider(conn, { store: await openStore('memory'), timeoutMs: 3000, maxRetries: 1, backoffBaseMs: 20 });
  await p.init();
  return p;
}

async function serve(flags: PolicyFlags, o: Partial<HttpServerOptions> = {}): Promise<RunningHttpServer> {
  const p = await provider(flags);
  return startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    makeServer: (scope) => createServer({ config: { tools: {} }, providers: [p], narrow: scope.narrow }),
    ...o,
  });
}

async function connect(url: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<Client> {
  const client = new Client({ name: 'http-service-test', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

async function namesOf(url: string, extra: Record<string, string>): Promise<{ client: Client; list: string[] }> {
  const client = await connect(url, { authorization: `Bearer ${TOKEN}`, ...extra });
  return { client, list: (await client.listTools()).tools.map((t) => t.name) };
}

/** The HTTP service over a Bitrix24 emulator (its own, closed with the service). */
async function serveBitrix(flags: PolicyFlags): Promise<RunningHttpServer> {
  const bx = await startBitrix({ rateLimit: false });
  const conn: BitrixConnection = { name: 'bitrix24', provider: 'bitrix24', webhookUrl: bx.webhookUrl, plan: 'standard', policy: flags };
  const p = buildBitrixProvider(conn, { store: await openStore('memory'), timeoutMs: 3000, maxRetries: 1, backoffBaseMs: 20 });
  await p.init();
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    makeServer: (scope) => createServer({ config: { tools: {} }, providers: [p], narrow: scope.narrow }),
  });
  return {
    ...http,
    close: async () => {
      await http.close();
      await bx.close();
    },
  };
}

const INIT = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
});

/** A raw request with full control of Host, Origin and body framing (fetch may not let us set them). */
function raw(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string | string[] },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: o.method ?? 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...o.headers } },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += String(d)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    if (Array.isArray(o.body)) {
      // Chunked: no content-length, so the limit must hold while the body streams in.
      for (const chunk of o.body) req.write(chunk);
      req.end();
    } else req.end(o.body ?? INIT);
  });
}

describe('bearer authentication', () => {
  let http: RunningHttpServer;
  beforeAll(async () => {
    http = await serve(FULL);
  });
  afterAll(async () => http.close());

  it('without a token: 401 with a Bearer challenge, and nothing reaches the CRM', async () => {
    emu.resetLog();
    const r = await raw(http.url, {
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'create_lead', arguments: { name: 'Sneaky' } } }),
    });
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Bearer\b/);
    await expect(connect(http.url, {})).rejects.toThrow();
    expect(emu.requests).toHaveLength(0);
  });

  it('a wrong token (also one of another length) is refused with invalid_token', async () => {
    emu.resetLog();
    for (const wrong of [TOKEN.replace(/.$/, 'x'), 'short', `${TOKEN}extra`]) {
      const r = await raw(http.url, { headers: { authorization: `Bearer ${wrong}` } });
      expect(r.status, wrong).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    }
    await expect(connect(http.url, { authorization: 'Bearer nope-nope-nope' })).rejects.toThrow();
    expect(emu.requests).toHaveLength(0);
  });

  it('the right token works end to end', async () => {
    const client = await connect(http.url);
    const r = (await client.callTool({ name: 'get_pipelines', arguments: {} })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { pipelines: unknown[] }).pipelines.length).toBeGreaterThan(0);
    await client.close();
  });

  it('/healthz needs no token (probes); unknown paths are 404', async () => {
    expect((await fetch(http.url.replace('/mcp', '/healthz'))).status).toBe(200);
    expect((await fetch(http.url.replace('/mcp', '/other'))).status).toBe(404);
  });
});

describe('binding beyond loopback', () => {
  it('startHttpServer refuses 0.0.0.0 without a token', async () => {
    await expect(startHttpServer({ host: '0.0.0.0', port: 0, makeServer: () => createServer({ config: { tools: {} }, providers: [] }) })).rejects.toThrow(
      /CRM_MCP_HTTP_TOKEN/,
    );
  });

  it('the CLI with --host 0.0.0.0 and no token refuses to start with a clear error', async () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) env[k] = v;
    const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
      const p = spawn(process.execPath, [CLI, '--sandbox', '--http', '--host', '0.0.0.0', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let stdout = '';
      p.stderr.on('data', (d) => (stderr += String(d)));
      p.stdout.on('data', (d) => (stdout += String(d)));
      p.on('close', (code) => resolve({ code, stderr, stdout }));
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_MCP_HTTP_TOKEN/);
    expect(r.stdout).not.toMatch(/serving MCP/);
  });

  it('with a token, 0.0.0.0 starts and still requires the token', async () => {
    const http = await serve(READ_ONLY, { host: '0.0.0.0' });
    const url = http.url.replace('0.0.0.0', '127.0.0.1');
    expect((await raw(url, {})).status).toBe(401);
    const client = await connect(url);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
    await http.close();
  });
});

describe('DNS rebinding, Origin and CORS', () => {
  let http: RunningHttpServer;
  beforeAll(async () => {
    http = await serve(READ_ONLY, { corsOrigins: ['https://app.example'] });
  });
  afterAll(async () => http.close());
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('a rebinding Host is refused with 403 even with the token', async () => {
    emu.resetLog();
    expect((await raw(http.url, { headers: { ...auth, host: 'evil.example' } })).status).toBe(403);
    expect(emu.requests).toHaveLength(0);
  });

  it('a foreign browser Origin is refused with 403; the allowed one gets CORS headers', async () => {
    expect((await raw(http.url, { headers: { ...auth, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await raw(http.url, { headers: { ...auth, origin: 'null' } })).status).toBe(403);
    const ok = await raw(http.url, { headers: { ...auth, origin: 'https://app.example' } });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('preflight is answered for configured origins only', async () => {
    const pre = await raw(http.url, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' }, body: '' });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(String(pre.headers['access-control-allow-headers'])).toMatch(/authorization/);
    expect(String(pre.headers['access-control-allow-headers'])).toMatch(/x-crm-read-only/);
    const foreign = await raw(http.url, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' }, body: '' });
    expect(foreign.status).toBe(403);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('without configured origins there is no CORS at all', async () => {
    const plain = await serve(READ_ONLY);
    const pre = await raw(plain.url, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' }, body: '' });
    expect(pre.status).toBe(403);
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    await plain.close();
  });
});

describe('request body limit', () => {
  it('is enforced with and without content-length', async () => {
    const http = await serve(READ_ONLY, { maxBodyBytes: 2048 });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(5000) } });
    expect((await raw(http.url, { headers: auth, body: big })).status).toBe(413);
    const chunks = Array.from({ length: 8 }, (_, i) => (i === 0 ? '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' : 'y'.repeat(1000)));
    expect((await raw(http.url, { headers: auth, body: chunks })).status).toBe(413);
    expect((await raw(http.url, { headers: auth, body: '{not json' })).status).toBe(400);
    await http.close();
  });
});

describe('per-request narrowing only tightens', () => {
  const names = async (url: string, extra: Record<string, string>) => {
    const client = await connect(url, { authorization: `Bearer ${TOKEN}`, ...extra });
    const list = (await client.listTools()).tools.map((t) => t.name);
    return { client, list };
  };

  it('X-CRM-Read-Only: true hides every write tool and a write call is refused with nothing sent', async () => {
    const http = await serve(FULL);
    const { client, list } = await names(http.url, { 'X-CRM-Read-Only': 'true' });
    expect(list).toContain('get_pipelines');
    for (const w of ['create_lead', 'update_lead', 'add_note', 'create_task', 'update_contact']) expect(list).not.toContain(w);
    emu.resetLog();
    // A tool that is not registered is a JSON-RPC error (-32602, as the spec says for unknown tools) since SDK v2.
    await expect(client.callTool({ name: 'create_lead', arguments: { name: 'Should not exist' } })).rejects.toThrow(/-32602.*create_lead not found/);
    const rawCall = (await client.callTool({
      name: 'kommo_request',
      arguments: { method: 'POST', path: '/api/v4/leads', body: [{ name: 'x' }] },
    })) as CallToolResult;
    expect(rawCall.isError).toBe(true);
    expect(writesTo(emu.requests)).toHaveLength(0);
    const acc = (await client.callTool({ name: 'get_account', arguments: {} })) as CallToolResult;
    expect((acc.structuredContent as { policy: { mode: string } }).policy.mode).toBe('read-only');
    await client.close();

    // The same server without the header still has its full policy: nothing was mutated.
    const plain = await names(http.url, {});
    expect(plain.list).toEqual(expect.arrayContaining(['create_lead', 'update_lead']));
    await plain.client.close();
    await http.close();
  });

  it('reused servers never carry the narrowing of one request into another (interleaved, concurrent)', async () => {
    const http = await serve(FULL);
    const ro = await connect(http.url, { authorization: `Bearer ${TOKEN}`, 'X-CRM-Read-Only': 'true' });
    const full = await connect(http.url, { authorization: `Bearer ${TOKEN}` });
    for (let round = 0; round < 5; round++) {
      const [a, b] = await Promise.all([ro.listTools(), full.listTools()]);
      expect(a.tools.map((t) => t.name)).not.toContain('create_lead');
      expect(b.tools.map((t) => t.name)).toContain('create_lead');
    }
    emu.resetLog();
    const calls = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? full : ro).callTool({ name: 'kommo_request', arguments: { method: 'POST', path: '/api/v4/contacts', body: [{ name: `pool-${i}` }] } }),
      ),
    );
    calls.forEach((r, i) =>
      expect((r as CallToolResult).isError ?? false, `call ${i}: ${JSON.stringify((r as CallToolResult).content).slice(0, 300)}`).toBe(i % 2 === 0),
    );
    expect(writesTo(emu.requests)).toHaveLength(6);
    await ro.close();
    await full.close();
    await http.close();
  });

  it('X-CRM-Safe-Mode: true keeps creates and drops updates', async () => {
    const http = await serve(WRITE);
    const { client, list } = await names(http.url, { 'X-CRM-Safe-Mode': 'true' });
    expect(list).toContain('create_lead');
    expect(list).not.toContain('update_lead');
    await client.close();
    await http.close();
  });

  it('headers that try to widen are ignored', async () => {
    const http = await serve(CREATE_ONLY);
    const base = await names(http.url, {});
    const widened = await names(http.url, { 'X-CRM-Read-Only': 'false', 'X-CRM-Safe-Mode': 'false', 'X-CRM-Allow-Delete': 'true' });
    expect(widened.list).toEqual(base.list);
    expect(widened.list).not.toContain('update_lead');
    emu.resetLog();
    await expect(widened.client.callTool({ name: 'update_lead', arguments: { id: 1000001, name: 'Widened?' } })).rejects.toThrow(
      /-32602.*update_lead not found/,
    );
    expect(writesTo(emu.requests)).toHaveLength(0);
    await base.client.close();
    await widened.client.close();
    await http.close();
  });
});

describe('narrowing headers fail closed', () => {
  const unclear: Array<[string, Array<[string, string]>]> = [
    [
      'sent twice ("true, true")',
      [
        ['X-CRM-Read-Only', 'true'],
        ['X-CRM-Read-Only', 'true'],
      ],
    ],
    [
      'a proxy’s copy plus the client’s ("true, false")',
      [
        ['X-CRM-Read-Only', 'true'],
        ['X-CRM-Read-Only', 'false'],
      ],
    ],
    ['"true, false" in one header', [['X-CRM-Read-Only', 'true, false']]],
    ['"Y"', [['X-CRM-Read-Only', 'Y']]],
    ['"true;"', [['X-CRM-Read-Only', 'true;']]],
    ['empty', [['X-CRM-Read-Only', '']]],
  ];
  it.each(unclear)('X-CRM-Read-Only %s narrows: no write tool, and a raw write sends nothing', async (_label, pairs) => {
    const http = await serve(FULL);
    const client = new Client({ name: 'narrow-test', version: '0' });
    const headers = new Headers([['authorization', `Bearer ${TOKEN}`]]);
    for (const [k, v] of pairs) headers.append(k, v);
    await client.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers } }));
    const list = (await client.listTools()).tools.map((t) => t.name);
    expect(list).not.toContain('create_lead');
    expect(list).not.toContain('update_lead');
    emu.resetLog();
    const r = (await client.callTool({
      name: 'kommo_request',
      arguments: { method: 'POST', path: '/api/v4/contacts', body: [{ name: 'should not exist' }] },
    })) as CallToolResult;
    expect(r.isError).toBe(true);
    expect(writesTo(emu.requests)).toHaveLength(0);
    await client.close();
    await http.close();
  });

  it.each([
    ['X-CRM-Safe-Mode', 'true, false', 'update_lead', 'create_lead'],
    ['X-CRM-Safe-Mode', 'Y', 'update_lead', 'create_lead'],
    ['X-CRM-Allow-Delete', 'true, false', 'delete_lead', 'update_lead'],
  ])('%s: %j narrows (drops %s, keeps %s)', async (header, value, dropped, kept) => {
    // Bitrix24 has delete tools; Kommo stands in for the other two (their tools exist on both).
    const http = header === 'X-CRM-Allow-Delete' ? await serveBitrix(FULL) : await serve(FULL);
    const { client, list } = await namesOf(http.url, { [header]: value });
    expect(list).not.toContain(dropped);
    expect(list).toContain(kept);
    await client.close();
    await http.close();
  });

  it('a clear "false" on X-CRM-Read-Only does not narrow (and cannot widen)', async () => {
    const http = await serve(WRITE);
    const base = await namesOf(http.url, {});
    const same = await namesOf(http.url, { 'X-CRM-Read-Only': 'false' });
    expect(same.list).toEqual(base.list);
    expect(same.list).toContain('update_lead');
    await base.client.close();
    await same.client.close();
    await http.close();
  });
});

describe('readiness and shutdown', () => {
  it('/healthz reports readiness as 200 or 503 with details', async () => {
    let ok = true;
    const http = await serve(READ_ONLY, { ready: async () => ({ ok, details: { store: ok ? 'reachable' : 'unreachable' } }) });
    const healthz = http.url.replace('/mcp', '/healthz');
    // The details are for callers with the token (see test/config-mistakes.test.ts for the bare answer).
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const a = await fetch(healthz, auth);
    expect(a.status).toBe(200);
    expect(await a.json()).toMatchObject({ status: 'ok', store: 'reachable' });
    ok = false;
    const b = await fetch(healthz, auth);
    expect(b.status).toBe(503);
    expect(await b.json()).toMatchObject({ status: 'unavailable', store: 'unreachable' });
    await http.close();
  });

  it('close() lets an in-flight call finish, then stops accepting', async () => {
    const http = await serve(READ_ONLY);
    const client = await connect(http.url);
    emu.resetLog();
    emu.harness.injectFault({ kind: 'slow', ms: 400 }, { match: { path: '/api/v4/leads/pipelines' } });
    const call = client.callTool({ name: 'get_pipelines', arguments: {} }) as Promise<CallToolResult>;
    while (!emu.requests.some((r) => r.path.includes('/leads/pipelines'))) await new Promise((r) => setTimeout(r, 10));
    const closing = http.close();
    const r = await call;
    expect(r.isError).toBeFalsy();
    await closing;
    await expect(fetch(http.url, { method: 'POST', body: INIT })).rejects.toThrow();
    await client.close().catch(() => undefined);
  });
});

describe('service configuration', () => {
  const base = { BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/abcdef123456/' };

  it('parses the token, CORS origins, audit log and metrics switch; the token becomes a secret', () => {
    const token = 'cfg-token-abcdefghijklmnop';
    const c = loadConfig({
      env: {
        ...base,
        CRM_MCP_HTTP_TOKEN: token,
        CRM_MCP_HTTP_CORS_ORIGINS: 'https://app.example, http://localhost:5173',
        CRM_MCP_AUDIT_LOG: '/var/log/crm-mcp/audit.log',
        CRM_MCP_METRICS: 'false',
      },
    });
    expect(c.service).toEqual({ token, corsOrigins: ['https://app.example', 'http://localhost:5173'], auditLog: '/var/log/crm-mcp/audit.log', metrics: false });
    expect(redact(`auth ${token}`)).not.toContain(token);
    expect(loadConfig({ env: { ...base, CRM_MCP_AUDIT_LOG: 'off' } }).service).toEqual({ corsOrigins: [], auditLog: false });
    expect(loadConfig({ env: base }).service).toEqual({ corsOrigins: [] });
  });

  it.each([
    [{ CRM_MCP_HTTP_TOKEN: 'short' }, /CRM_MCP_HTTP_TOKEN/],
    [{ CRM_MCP_HTTP_CORS_ORIGINS: 'https://app.example/path' }, /CRM_MCP_HTTP_CORS_ORIGINS/],
    [{ CRM_MCP_HTTP_CORS_ORIGINS: '*' }, /CRM_MCP_HTTP_CORS_ORIGINS/],
    [{ CRM_MCP_METRICS: 'maybe' }, /CRM_MCP_METRICS/],
  ])('%o is rejected naming the variable', (env, message) => {
    expect(() => loadConfig({ env: { ...base, ...env } })).toThrow(message);
  });
});
