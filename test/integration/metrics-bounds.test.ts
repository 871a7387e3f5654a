/**
 * Metric labels stay bounded (issue 9, finding 11): kommo_request paths and bitrix_call methods are chosen
 * by the agent, and each distinct label value used to become a new Prometheus series (40 calls: 2 → 42).
 * Known Kommo resources and known Bitrix24 methods keep their label; anything else is `other`, and a hard
 * cap per provider stops whatever still varies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { SlidingWindowLimiter } from '../../src/http/limiter.js';
import { endpointOf, metricsOptions } from '../../src/app.js';
import { MAX_ENDPOINT_LABELS, Metrics } from '../../src/metrics/metrics.js';
import { buildBitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { buildKommoProvider } from '../../src/crms/kommo/provider.js';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { openStore } from '../../src/store/store.js';
import { ALL, bitrixMethods, READ_ONLY } from '../helpers/index.js';

const TOKEN = 'bounds-token-0123456789abcdef';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
let http: RunningHttpServer;
let client: Client;

beforeAll(async () => {
  [kommo, bitrix] = await Promise.all([startKommoEmulator({ rateLimit: false }), startBitrixEmulator({ rateLimit: false })]);
  const metrics = new Metrics({ processMetrics: false, ...metricsOptions() });
  const store = await openStore('memory');
  const common = { store, timeoutMs: 3000, maxRetries: 0, backoffBaseMs: 10, onEvent: metrics.onHttpEvent };
  const providers = [
    buildKommoProvider(
      { name: 'kommo', provider: 'kommo', baseUrl: kommo.url, accessToken: kommo.createLongLivedToken(), policy: READ_ONLY },
      { ...common, limiter: new SlidingWindowLimiter(1000, 1000) },
    ),
    // Every effect allowed: an agent-chosen method outside the vetted table counts as admin, and must still be
    // sent (and answered ERROR_METHOD_NOT_FOUND) for its label to be tested.
    buildBitrixProvider({ name: 'bitrix24', provider: 'bitrix24', webhookUrl: bitrix.webhookUrl, plan: 'enterprise', policy: ALL }, common),
  ];
  for (const p of providers) await p.init();
  http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    metrics,
    makeServer: (scope) => createServer({ config: { tools: {} }, providers, narrow: scope.narrow, metrics }),
  });
  client = new Client({ name: 'bounds', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
});

afterAll(async () => {
  await client?.close();
  await http?.close();
  await Promise.all([kommo?.close(), bitrix?.close()]);
});

const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;

/** The `crm_mcp_crm_requests_total` series, as label strings, read from /metrics. */
async function requestSeries(): Promise<string[]> {
  const res = await fetch(http.url.replace('/mcp', '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.text()).split('\n').filter((l) => l.startsWith('crm_mcp_crm_requests_total{'));
}

/** Lower-case letters only: a word the old labeller kept verbatim. */
const word = (i: number) => `zz${String.fromCharCode(97 + (i % 26))}${String.fromCharCode(97 + Math.floor(i / 26))}`;

describe('agent-chosen paths and methods do not grow the series', () => {
  it('40 distinct kommo_request paths and 40 distinct bitrix_call methods add at most a handful of series', async () => {
    const before = await requestSeries();
    kommo.resetLog();
    bitrix.harness.resetLog();
    for (let i = 0; i < 40; i++) {
      await call('kommo_request', { crm: 'kommo', method: 'GET', path: `/api/v4/${word(i)}_custom` });
      await call('bitrix_call', { crm: 'bitrix24', method: `crm.${word(i)}.list` });
    }
    // The 80 calls really went out, each with its own path or method.
    expect(new Set(kommo.requests.map((r) => r.path)).size).toBe(40);
    expect(new Set(bitrixMethods(bitrix.requests)).size).toBe(40);

    const after = await requestSeries();
    const key = (l: string) => l.slice(0, l.lastIndexOf(' ')); // the labels, without the value
    const added = after.filter((l) => !before.map(key).includes(key(l)));
    // Per provider the `other` endpoint, once per status the emulators answered with.
    expect(added.length).toBeGreaterThan(0);
    expect(added.length).toBeLessThanOrEqual(4);
    for (const l of added) expect(l).toMatch(/endpoint="other"/);
    expect(after.join('\n')).not.toMatch(/zz[a-z]{2}/);
  });

  it('known endpoints keep their labels', async () => {
    expect((await call('get_lead', { crm: 'kommo', id: 1000001 })).isError).toBeFalsy();
    expect((await call('bitrix_call', { crm: 'bitrix24', method: 'crm.deal.list' })).isError).toBeFalsy();
    const all = (await requestSeries()).join('\n');
    expect(all).toMatch(/provider="kommo",endpoint="\/api\/v4\/leads\/:id",method="GET",status="200"/);
    expect(all).toMatch(/provider="bitrix24",endpoint="crm\.deal\.list",method="POST",status="200"/);
  });
});

describe('endpoint labels', () => {
  it.each([
    ['kommo', '/api/v4/leads/1000001/notes/55', '/api/v4/leads/:id/notes/:id'],
    ['kommo', '/api/v4/leads/unsorted/0d1f2c3b-aaaa-4bbb-8ccc-123456789abc/accept', '/api/v4/leads/unsorted/:id/accept'],
    ['kommo', '/api/v4/contacts/7/whatever_here', '/api/v4/contacts/:id/:other'],
    ['kommo', '/api/v4/zzz_custom', 'other'],
    ['kommo', '/api/v5/leads', 'other'],
    ['bitrix24', '/rest/1/abcdefSECRET123/crm.foo42.list.json', 'other'],
    ['bitrix24', '/rest/1/abcdefSECRET123/tasks.task.list.json', 'tasks.task.list'],
    ['bitrix24', '/rest/1/abcdefSECRET123/crm.lead.userfield.list', 'crm.lead.userfield.list'],
  ])('%s %s → %s', (provider, path, label) => {
    expect(endpointOf(provider, path)).toBe(label);
  });

  it(`a hard cap of ${MAX_ENDPOINT_LABELS} endpoint values per provider catches what the templates let through`, async () => {
    const m = new Metrics({ processMetrics: false, ...metricsOptions() });
    const subs = ['notes', 'tags', 'links', 'custom_fields', 'groups', 'pipelines', 'statuses'];
    // Known words combine into many templates: 7^3 = 343 distinct ones.
    for (const a of subs)
      for (const b of subs)
        for (const c of subs)
          m.onHttpEvent({ provider: 'kommo', method: 'GET', path: `/api/v4/leads/${a}/${b}/${c}`, status: 200, ms: 1, attempt: 0, limiterWaitMs: 0 });
    const series = (await m.render()).split('\n').filter((l) => l.startsWith('crm_mcp_crm_requests_total{'));
    expect(series.length).toBeLessThanOrEqual(MAX_ENDPOINT_LABELS + 1);
    expect(series.some((l) => l.includes('endpoint="other"'))).toBe(true);
  });
});
