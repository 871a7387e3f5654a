/**
 * The webhook receiver's deliveries in Prometheus (`crm_mcp_hook_deliveries_total{hook,status}`, events stored
 * and duplicates by hook), through the HTTP service's own /metrics: one delivery of each outcome, counted
 * here by hand, and the path secret (right or wrong) in no label. Also the receiver told of a shutdown:
 * 503, nothing stored, so the CRM delivers again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsOptions } from '../../src/app.js';
import { defaultRegistry } from '../../src/crms/registry.js';
import { FileEventLog } from '../../src/events/file-log.js';
import type { EventLog } from '../../src/events/log.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { hooksRoute } from '../../src/transports/hooks/receiver.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { connectKommo, startKommo, WRITE, type Connected } from '../helpers/index.js';

const SECRET = 'Hm7'.repeat(11) + 'qZ0xw'; // 38 characters
const WRONG = 'Wr0ng'.repeat(8);
const ACCOUNT = '31000001';

const k = (s: string) => encodeURIComponent(s);
function updateBody(id: number, modified: number): string {
  return [
    `${k('leads[update][0][id]')}=${id}`,
    `${k('leads[update][0][last_modified]')}=${modified}`,
    `${k('account[id]')}=${ACCOUNT}`,
    `${k('account[subdomain]')}=sandbox`,
  ].join('&');
}
const post = (url: string, body: string, type = 'application/x-www-form-urlencoded') => fetch(url, { method: 'POST', headers: { 'content-type': type }, body });

/** The value of one series in the exposition text, 0 when absent. */
function value(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels)
    .map(([l, v]) => `${l}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (m[2]!.split(',').sort().join(',') === want) return Number(m[3]);
  }
  return 0;
}

describe('webhook delivery metrics', () => {
  let emu: KommoEmulator;
  let c: Connected;
  let log: EventLog;
  let http: RunningHttpServer;
  let base: string;
  let closing = false;

  beforeAll(async () => {
    emu = await startKommo({ demo: false });
    c = await connectKommo(emu, { flags: WRITE, connection: { webhookSecret: SECRET } });
    log = new FileEventLog(null);
    const metrics = new Metrics({ processMetrics: false, ...metricsOptions() });
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      makeServer: () => createServer({ config: { tools: {} }, providers: [] }),
      metrics,
      hooks: hooksRoute({
        modules: defaultRegistry.modules(),
        connections: [c.provider.conn],
        log,
        store: c.store,
        maxBodyBytes: 4096,
        // A burst of 9 and next to no refill: the 429 case below counts on it.
        rate: { perMinute: 1, burst: 9 },
        onDelivery: metrics.hookDelivery,
        closing: () => closing,
      }),
    });
    base = http.url.replace(/\/mcp$/, '');
  });
  afterAll(async () => {
    await http?.close();
    await c?.close();
    await emu?.close();
  });

  it('counts each outcome by hook and status, events stored and duplicates, and names no secret', async () => {
    const hook = `${base}/hooks/kommo/${SECRET}`;
    // [what, request, status it gets]: the table the counters are checked against.
    const sent: Array<[string, () => Promise<Response>, number]> = [
      ['a lead update', () => post(hook, updateBody(1, 100)), 200],
      ['another lead', () => post(hook, updateBody(2, 100)), 200],
      ['the first again (a redelivery)', () => post(hook, updateBody(1, 100)), 200],
      ['a wrong path secret', () => post(`${base}/hooks/kommo/${WRONG}`, updateBody(3, 100)), 403],
      ['a body without its account', () => post(hook, `${k('leads[update][0][id]')}=4`), 400],
      ['a JSON body', () => post(hook, '{}', 'application/json'), 415],
      ['an oversized body', () => post(hook, `${updateBody(5, 100)}&pad=${'a'.repeat(5000)}`), 413],
      ['a GET', () => fetch(hook), 405],
      ['an unknown receiver, with a secret in its path', () => post(`${base}/hooks/${WRONG}/${SECRET}`, updateBody(6, 100)), 404],
    ];
    for (const [what, send, status] of sent) expect((await send()).status, what).toBe(status);
    const text = await (await fetch(`${base}/metrics`)).text();
    const d = (hookLabel: string, status: string) => value(text, 'crm_mcp_hook_deliveries_total', { hook: hookLabel, status });
    expect(d('kommo', '200')).toBe(3);
    expect(d('kommo', '403')).toBe(1);
    expect(d('kommo', '400')).toBe(1);
    expect(d('kommo', '415')).toBe(1);
    expect(d('kommo', '413')).toBe(1);
    expect(d('kommo', '405')).toBe(1);
    expect(d('other', '404')).toBe(1);
    expect(value(text, 'crm_mcp_hook_events_stored_total', { hook: 'kommo' })).toBe(2);
    expect(value(text, 'crm_mcp_hook_events_duplicates_total', { hook: 'kommo' })).toBe(1);
    // Every hook label is a receiver's path or `other`; neither secret appears anywhere in the exposition.
    const hooks = [...text.matchAll(/crm_mcp_hook_[a-z_]+\{[^}]*hook="([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(hooks)).toEqual(new Set(['kommo', 'other']));
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(WRONG);
    expect(text).not.toContain(SECRET.slice(0, 12));
  });

  it('past the rate limit: 429, counted as such', async () => {
    // 7 deliveries so far took 7 of the burst of 9 (the 405 and the 404 are answered before the limiter); 2 more go through.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(`${base}/hooks/kommo/${WRONG}`, updateBody(7, 100))).status);
    expect(statuses).toEqual([403, 403, 429, 429]);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(value(text, 'crm_mcp_hook_deliveries_total', { hook: 'kommo', status: '429' })).toBe(2);
    expect(value(text, 'crm_mcp_hook_deliveries_total', { hook: 'kommo', status: '403' })).toBe(3);
  });

  it('once told of a shutdown: 503 with Retry-After, nothing stored, counted as 503', async () => {
    const before = (await log.read({ limit: 100 })).events.length;
    closing = true;
    try {
      const r = await post(`${base}/hooks/kommo/${SECRET}`, updateBody(8, 100));
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
    } finally {
      closing = false;
    }
    expect((await log.read({ limit: 100 })).events.length).toBe(before);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(value(text, 'crm_mcp_hook_deliveries_total', { hook: 'kommo', status: '503' })).toBe(1);
  });
});

describe('Metrics.hookDelivery bounds its labels by itself', () => {
  it('an unknown hook is other; a status outside the fixed set is its class', async () => {
    const m = new Metrics({ processMetrics: false, hookPaths: ['kommo'] });
    m.hookDelivery({ hook: 'kommo', status: 200, stored: 2, duplicates: 0 });
    m.hookDelivery({ hook: SECRET, status: 418, stored: 0, duplicates: 0 });
    m.hookDelivery({ hook: 'kommo', status: 502, stored: 0, duplicates: 0 });
    const text = await m.render();
    expect(value(text, 'crm_mcp_hook_deliveries_total', { hook: 'kommo', status: '200' })).toBe(1);
    expect(value(text, 'crm_mcp_hook_deliveries_total', { hook: 'other', status: '4xx' })).toBe(1);
    expect(value(text, 'crm_mcp_hook_deliveries_total', { hook: 'kommo', status: '5xx' })).toBe(1);
    expect(text).not.toContain(SECRET);
  });
});
