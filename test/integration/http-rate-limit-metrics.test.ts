/**
 * What the HTTP service does with the method and name of a request (the 2026-07-28 Mcp-Method/Mcp-Name
 * headers, checked against the body): the tools/call rate limit per client, and the bounded /metrics labels.
 * Through the real service over the Kommo emulator; what the emulator received is the measure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { loadConfig } from '../../src/config/config.js';
import { metricsOptions } from '../../src/app.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { parseRateLimit } from '../../src/config/rate-limit-setting.js';
import { TokenBucketLimiter } from '../../src/transports/http/rate-limit.js';
import type { KommoProvider } from '../../src/crms/kommo/provider.js';
import type { HttpServerOptions } from '../../src/transports/http/service.js';
import { READ_ONLY, kommoProvider, startKommo } from '../helpers/index.js';
import { MODERN_META, serveHttp } from '../helpers/http.js';

const TOKEN = 'rate-token-0123456789abcdef';
const MODERN = '2026-07-28';
const META = MODERN_META;

let emu: KommoEmulator;
let provider: KommoProvider;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  provider = await kommoProvider(emu, { flags: READ_ONLY, maxRetries: 1 });
});
afterAll(async () => emu?.close());

const serve = (o: Partial<HttpServerOptions> = {}) => serveHttp(TOKEN, { config: { tools: {} }, providers: [provider] }, o);

/** A raw POST from a chosen local address (127.0.0.x are all loopback), so two clients can be told apart. */
function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  from = '127.0.0.1',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}`, ...headers },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += String(d)));
        res.on('end', () => {
          const jsonText = text.startsWith('event:') || text.startsWith('data:') ? text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1) : text;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(jsonText) as Record<string, unknown> });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const modernCall = (id: number, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, _meta: META },
});
const modernHeaders = (method: string, name?: string) => ({ 'mcp-protocol-version': MODERN, 'mcp-method': method, ...(name ? { 'mcp-name': name } : {}) });
/** Emulator requests a list_leads call makes (an uncached read: each call reaches the CRM). */
const leadReads = () => emu.requests.filter((q) => q.path === '/api/v4/leads').length;

describe('tools/call rate limit', () => {
  it('refuses the call over the bucket with 429, Retry-After and a JSON-RPC error; nothing more reaches the CRM', async () => {
    const http = await serve({ rateLimit: { perMinute: 1, burst: 2 } });
    emu.resetLog();
    for (const id of [1, 2])
      expect((await post(http.url, modernCall(id, 'list_leads', { limit: 1 }), modernHeaders('tools/call', 'list_leads'))).status).toBe(200);
    const before = leadReads();
    expect(before).toBeGreaterThanOrEqual(2);
    const third = await post(http.url, modernCall(3, 'list_leads', { limit: 1 }), modernHeaders('tools/call', 'list_leads'));
    expect(third.status).toBe(429);
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(third.json).toMatchObject({ id: 3, error: { code: -32000 } });
    expect(leadReads()).toBe(before);
    // Lists are not limited, and a 2025-era call counts against the same bucket.
    expect((await post(http.url, { jsonrpc: '2.0', id: 4, method: 'tools/list', params: { _meta: META } }, modernHeaders('tools/list'))).status).toBe(200);
    const legacy = await post(
      http.url,
      { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'list_leads', arguments: { limit: 1 } } },
      { 'mcp-protocol-version': '2025-11-25' },
    );
    expect(legacy.status).toBe(429);
    // Another client (another address) has its own bucket.
    expect((await post(http.url, modernCall(6, 'list_leads', { limit: 1 }), modernHeaders('tools/call', 'list_leads'), '127.0.0.2')).status).toBe(200);
    expect(leadReads()).toBeGreaterThan(before);
    await http.close();
  });

  it('the SDK v2 client sees the refusal as an HTTP 429 error', async () => {
    const http = await serve({ rateLimit: { perMinute: 1, burst: 1 } });
    const client = new Client({ name: 'rate', version: '0' }, { versionNegotiation: { mode: { pin: MODERN } } });
    await client.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
    await client.callTool({ name: 'get_account', arguments: {} });
    await expect(client.callTool({ name: 'get_account', arguments: {} })).rejects.toMatchObject({ status: 429 });
    await client.close();
    await http.close();
  });

  it('is off by default: many calls in a row all go through', async () => {
    const http = await serve();
    emu.resetLog();
    for (let id = 1; id <= 12; id++)
      expect((await post(http.url, modernCall(id, 'list_leads', { limit: 1 }), modernHeaders('tools/call', 'list_leads'))).status).toBe(200);
    expect(leadReads()).toBeGreaterThanOrEqual(12);
    await http.close();
  });

  it('the bucket refills at the configured rate (injected clock)', () => {
    let now = 0;
    const l = new TokenBucketLimiter({ perMinute: 2, burst: 1, now: () => now });
    expect(l.take('a').ok).toBe(true);
    const refused = l.take('a');
    expect(refused).toEqual({ ok: false, retryAfterSec: 30 });
    now = 29_000;
    expect(l.take('a').ok).toBe(false);
    now = 60_000;
    expect(l.take('a').ok).toBe(true);
    expect(l.take('b').ok).toBe(true);
  });

  it.each([
    ['120/min', { perMinute: 120 }],
    ['5/s', { perMinute: 300 }],
    ['600/h', { perMinute: 10 }],
    ['30/min,burst=5', { perMinute: 30, burst: 5 }],
    ['off', undefined],
    ['', undefined],
  ])('CRM_MCP_HTTP_RATE_LIMIT=%j parses', (raw, expected) => {
    expect(parseRateLimit(raw)).toEqual(expected);
  });

  it('CRM_MCP_HTTP_RATE_LIMIT reaches the service configuration, and a bad value is refused naming the variable', () => {
    const base = { BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/abcdef123456/' };
    expect(loadConfig({ env: { ...base, CRM_MCP_HTTP_RATE_LIMIT: '60/min,burst=10' } }).service.rateLimit).toEqual({ perMinute: 60, burst: 10 });
    expect(loadConfig({ env: base }).service.rateLimit).toBeUndefined();
    expect(() => loadConfig({ env: { ...base, CRM_MCP_HTTP_RATE_LIMIT: 'lots' } })).toThrow(/CRM_MCP_HTTP_RATE_LIMIT/);
  });
});

describe('/metrics labels from the method and name', () => {
  it('counts MCP requests by method, tool, era and status, with unknown methods and tools as "other"', async () => {
    const metrics = new Metrics({ processMetrics: false, ...metricsOptions() });
    const http = await serve({ metrics });
    await post(http.url, modernCall(1, 'get_account'), modernHeaders('tools/call', 'get_account'));
    await post(
      http.url,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get_account', arguments: {} } },
      { 'mcp-protocol-version': '2025-11-25' },
    );
    // Agent-chosen names must not become series.
    for (let i = 0; i < 3; i++) await post(http.url, modernCall(10 + i, `made_up_tool_${i}`), modernHeaders('tools/call', `made_up_tool_${i}`));
    await post(http.url, { jsonrpc: '2.0', id: 20, method: 'custom/whatever', params: { _meta: META } }, modernHeaders('custom/whatever'));
    // A refused mismatch is counted as what the body says, with its 400.
    await post(http.url, modernCall(30, 'get_account'), modernHeaders('tools/list'));
    const text = await (await fetch(http.url.replace('/mcp', '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const series = text.split('\n').filter((l) => l.startsWith('crm_mcp_mcp_requests_total{'));
    const has = (labels: Record<string, string>, value: number) =>
      series.some((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)) && l.endsWith(` ${value}`));
    expect(has({ method: 'tools/call', tool: 'get_account', era: 'modern', status: '200' }, 1), series.join('\n')).toBe(true);
    expect(has({ method: 'tools/call', tool: 'get_account', era: 'legacy', status: '200' }, 1), series.join('\n')).toBe(true);
    expect(has({ method: 'tools/call', tool: 'other', era: 'modern' }, 3), series.join('\n')).toBe(true);
    expect(has({ method: 'other', tool: '', era: 'modern' }, 1), series.join('\n')).toBe(true);
    expect(has({ method: 'tools/call', tool: 'get_account', era: 'modern', status: '400' }, 1), series.join('\n')).toBe(true);
    expect(text).not.toMatch(/made_up_tool|custom\/whatever/);
    await http.close();
  });
});
