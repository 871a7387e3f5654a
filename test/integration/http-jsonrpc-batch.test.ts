/**
 * JSON-RPC batches on /mcp (issue 14, finding 4). One POST carrying an array of 40 `tools/call` ran 40
 * writes after the client was already getting 429s, and /metrics counted it once. No protocol revision the
 * server speaks since 2025-06-18 has batches, so an array is refused (HTTP 400, -32600 Invalid Request)
 * before any call in it runs, and counted as one refused request. Through the real service over the Kommo
 * emulator; what the emulator received is the measure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsOptions } from '../../src/app.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { KommoProvider } from '../../src/crms/kommo/provider.js';
import type { HttpServerOptions } from '../../src/transports/http/service.js';
import { CREATE_ONLY, kommoProvider, startKommo } from '../helpers/index.js';
import { MODERN_META, serveHttp } from '../helpers/http.js';

const TOKEN = 'batch-token-0123456789abcdef';
const META = MODERN_META;

let emu: KommoEmulator;
let provider: KommoProvider;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  provider = await kommoProvider(emu, { flags: CREATE_ONLY, maxRetries: 0 });
});
afterAll(async () => emu?.close());

const serve = (o: Partial<HttpServerOptions> = {}) => serveHttp(TOKEN, { config: { tools: {} }, providers: [provider] }, o);

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${TOKEN}`, ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const start = text.search(/[[{]/);
  return {
    status: res.status,
    json: start >= 0 ? (JSON.parse(text.slice(start, Math.max(text.lastIndexOf('}'), text.lastIndexOf(']')) + 1)) as unknown) : text,
  };
}

const create = (id: number, meta = false) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name: 'create_lead', arguments: { name: `Batched lead ${id}` }, ...(meta ? { _meta: META } : {}) },
});
const forty = (meta = false) => Array.from({ length: 40 }, (_, i) => create(i + 1, meta));
/** Requests the emulator received that would create something. */
const writes = () => emu.requests.filter((r) => r.method !== 'GET');
const REFUSED = { jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringMatching(/batch/i) } };

describe('JSON-RPC batches are refused before anything runs', () => {
  it.each([
    ['2025-11-25', { 'mcp-protocol-version': '2025-11-25' }, false],
    ['2025-03-26 (the last revision that had batches)', { 'mcp-protocol-version': '2025-03-26' }, false],
    ['no version header', {}, false],
    ['2026-07-28 envelopes', { 'mcp-protocol-version': '2026-07-28' }, true],
  ])('an array of 40 tools/call, %s: 400 Invalid Request, and the CRM receives nothing', async (_label, headers, meta) => {
    const http = await serve();
    emu.resetLog();
    const r = await post(http.url, forty(meta), headers);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject(REFUSED);
    expect(emu.requests).toEqual([]);
    await http.close();
  });

  it('an empty array and an array of one are refused the same way', async () => {
    const http = await serve();
    emu.resetLog();
    for (const body of [[], [create(1)]]) {
      const r = await post(http.url, body, { 'mcp-protocol-version': '2025-11-25' });
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject(REFUSED);
    }
    expect(emu.requests).toEqual([]);
    await http.close();
  });

  it('past the rate limit a batch runs nothing either, and /metrics counts it once as a refused batch, not as tool calls', async () => {
    const metrics = new Metrics({ processMetrics: false, ...metricsOptions() });
    const http = await serve({ rateLimit: { perMinute: 1, burst: 1 }, metrics });
    emu.resetLog();
    expect((await post(http.url, create(1), { 'mcp-protocol-version': '2025-11-25' })).status).toBe(200);
    expect(writes()).toHaveLength(1);
    expect((await post(http.url, create(2), { 'mcp-protocol-version': '2025-11-25' })).status).toBe(429);
    const r = await post(http.url, forty(), { 'mcp-protocol-version': '2025-11-25' });
    expect(r.status).toBe(400);
    expect(writes()).toHaveLength(1);

    const text = await (await fetch(http.url.replace('/mcp', '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const series = text.split('\n').filter((l) => l.startsWith('crm_mcp_mcp_requests_total{'));
    const value = (labels: Record<string, string>) =>
      series
        .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    expect(value({ method: 'batch', status: '400' }), series.join('\n')).toBe(1);
    expect(value({ method: 'tools/call', status: '200' }), series.join('\n')).toBe(1);
    expect(value({ method: 'tools/call', status: '429' }), series.join('\n')).toBe(1);
    expect(value({ method: 'other' }), series.join('\n')).toBe(0);
    expect(value({ tool: 'other' }), series.join('\n')).toBe(0);
    await http.close();
  });
});
