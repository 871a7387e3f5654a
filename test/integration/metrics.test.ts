/**
 * /metrics over the real HTTP server after real calls through the SDK client: CRM requests by provider,
 * endpoint and status, latency and limiter-wait histograms, retries, OAuth refreshes, token expiry, policy
 * denials and tool outcomes; no secret and no webhook path in any label.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { endpointOf, metricsOptions } from '../../src/app.js';
import { Metrics } from '../../src/metrics/metrics.js';
import { CREATE_ONLY } from '../helpers/index.js';
import { buildBitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { buildKommoProvider } from '../../src/crms/kommo/provider.js';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { openStore } from '../../src/store/store.js';

const TOKEN = 'metrics-token-0123456789abcdef';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
let b24oauth: BitrixEmulator;
let http: RunningHttpServer;
let kommoToken: string;
let oauthRefresh: string;

beforeAll(async () => {
  [kommo, bitrix, b24oauth] = await Promise.all([
    startKommoEmulator({ rateLimit: false }),
    startBitrixEmulator({ rateLimit: false }),
    startBitrixEmulator({ rateLimit: false, oauth: { clientId: 'app.metrics', clientSecret: 'metrics-app-secret-1' } }),
  ]);
  const metrics = new Metrics(metricsOptions());
  const store = await openStore('memory');
  const common = { store, timeoutMs: 3000, maxRetries: 2, backoffBaseMs: 10, onEvent: metrics.onHttpEvent };
  kommoToken = kommo.createLongLivedToken({ expiresInSec: 3600 });
  oauthRefresh = (await b24oauth.issueOAuthTokens()).refresh_token;
  const providers = [
    buildKommoProvider({ name: 'kommo', provider: 'kommo', baseUrl: kommo.url, accessToken: kommoToken, policy: CREATE_ONLY }, common),
    buildBitrixProvider({ name: 'bitrix24', provider: 'bitrix24', webhookUrl: bitrix.webhookUrl, plan: 'standard', policy: CREATE_ONLY }, common),
    buildBitrixProvider(
      {
        name: 'b24oauth',
        provider: 'bitrix24',
        plan: 'standard',
        policy: CREATE_ONLY,
        oauth: { clientId: 'app.metrics', clientSecret: 'metrics-app-secret-1', refreshToken: oauthRefresh, portal: b24oauth.url, oauthServer: b24oauth.url },
      },
      common,
    ),
  ];
  for (const p of providers) await p.init();
  metrics.watchProviders(providers);
  http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    metrics,
    makeServer: (scope) => createServer({ config: { tools: {} }, providers, narrow: scope.narrow, metrics }),
  });
});

afterAll(async () => {
  await http?.close();
  await Promise.all([kommo?.close(), bitrix?.close(), b24oauth?.close()]);
});

describe('endpoint labels', () => {
  it.each([
    ['bitrix24', '/rest/1/abcdefSECRET123/crm.deal.list.json', 'crm.deal.list'],
    ['bitrix24', '/rest/crm.contact.get.json', 'crm.contact.get'],
    ['bitrix24', '/rest/1/abcdefSECRET123/', 'other'],
    ['kommo', '/api/v4/leads/1000001/notes', '/api/v4/leads/:id/notes'],
    ['kommo', '/api/v4/leads/pipelines/123/statuses', '/api/v4/leads/pipelines/:id/statuses'],
    ['kommo', '/oauth2/access_token', 'other'],
  ])('%s %s → %s', (provider, path, label) => {
    expect(endpointOf(provider, path)).toBe(label);
  });
});

describe('/metrics', () => {
  it('requires the bearer token', async () => {
    const url = http.url.replace('/mcp', '/metrics');
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong-wrong-wrong' } })).status).toBe(401);
  });

  it('reports CRM requests, latency, limiter waits, retries, refreshes, expiry, denials and tool outcomes', async () => {
    const client = new Client({ name: 'metrics-test', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;

    kommo.harness.injectFault({ kind: 'status', status: 503, body: '' }, { times: 1, match: { method: 'GET', path: '/api/v4/leads/1000001' } });
    expect((await call('get_lead', { crm: 'kommo', id: 1000001 })).isError).toBeFalsy();
    expect((await call('get_pipelines', { crm: 'bitrix24' })).isError).toBeFalsy();
    expect((await call('list_users', { crm: 'b24oauth' })).isError).toBeFalsy();
    const denied = await call('bitrix_call', { crm: 'bitrix24', method: 'crm.deal.update', params: { id: 1, fields: { TITLE: 'x' } } });
    expect(denied.isError).toBe(true);
    const missing = await call('get_lead', { crm: 'kommo', id: 999 });
    expect(missing.isError).toBe(true);
    await client.close();

    const res = await fetch(http.url.replace('/mcp', '/metrics'), { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    const value = (re: RegExp) => {
      const m = new RegExp(`^${re.source} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : undefined;
    };

    // CRM requests by provider, endpoint (template / REST method), method and status; the 503 was retried.
    expect(value(/crm_mcp_crm_requests_total\{provider="kommo",endpoint="\/api\/v4\/leads\/:id",method="GET",status="503"\}/)).toBe(1);
    expect(value(/crm_mcp_crm_requests_total\{provider="kommo",endpoint="\/api\/v4\/leads\/:id",method="GET",status="200"\}/)).toBeGreaterThanOrEqual(1);
    expect(
      value(/crm_mcp_crm_requests_total\{provider="bitrix24",endpoint="crm\.(deal|lead)\.list",method="POST",status="200"\}/) ??
        value(/crm_mcp_crm_requests_total\{provider="bitrix24",endpoint="batch",method="POST",status="200"\}/),
    ).toBeGreaterThanOrEqual(1);
    expect(value(/crm_mcp_crm_retries_total\{provider="kommo",endpoint="\/api\/v4\/leads\/:id"\}/)).toBe(1);
    expect(value(/crm_mcp_crm_request_duration_seconds_count\{provider="kommo",endpoint="\/api\/v4\/leads\/:id"\}/)).toBeGreaterThanOrEqual(2);
    expect(value(/crm_mcp_rate_limiter_wait_seconds_count\{provider="kommo"\}/)).toBeGreaterThanOrEqual(2);
    expect(value(/crm_mcp_rate_limiter_wait_seconds_count\{provider="bitrix24"\}/)).toBeGreaterThanOrEqual(1);

    // OAuth: the seeded refresh token was exchanged once; every token with an expiry has a gauge.
    expect(value(/crm_mcp_oauth_refreshes_total\{connection="b24oauth",provider="bitrix24"\}/)).toBe(1);
    expect(value(/crm_mcp_token_expiry_seconds\{connection="b24oauth",provider="bitrix24"\}/)).toBeGreaterThan(0);
    expect(value(/crm_mcp_token_expiry_seconds\{connection="kommo",provider="kommo"\}/)).toBeGreaterThan(0);
    expect(text).not.toMatch(/crm_mcp_token_expiry_seconds\{connection="bitrix24"/); // webhooks do not expire

    // Policy denials and tool outcomes.
    expect(value(/crm_mcp_policy_denials_total\{connection="bitrix24",tool="bitrix_call",effect="update"\}/)).toBe(1);
    expect(value(/crm_mcp_tool_calls_total\{tool="bitrix_call",outcome="policy_denied"\}/)).toBe(1);
    expect(value(/crm_mcp_tool_calls_total\{tool="get_lead",outcome="ok"\}/)).toBe(1);
    expect(value(/crm_mcp_tool_calls_total\{tool="get_lead",outcome="not_found"\}/)).toBe(1);
    expect(value(/crm_mcp_tool_call_duration_seconds_count\{tool="get_pipelines"\}/)).toBe(1);

    // Every series the shipped Grafana dashboard queries exists.
    const dashboard = readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
    const used = [...new Set(dashboard.match(/crm_mcp_[a-z0-9_]+/g) ?? [])];
    expect(used.length).toBeGreaterThan(5);
    for (const name of used) expect(text, name).toContain(name);

    // No secret, no webhook path.
    expect(text).not.toContain(bitrix.webhookSecret);
    expect(text).not.toMatch(/\/rest\//);
    expect(text).not.toContain(kommoToken);
    expect(text).not.toContain(oauthRefresh);
    expect(text).not.toContain('metrics-app-secret-1');
    expect(text).not.toContain(TOKEN);
  });
});
