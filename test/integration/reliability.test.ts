/**
 * Reliability under load and faults: many MCP clients over HTTP against emulators enforcing the real
 * limits; a scripted fault on every failure mode for both CRMs; bad input at every boundary. Each case
 * asserts what the emulator received and that the server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startHttpServer } from '../../src/transports/http/service.js';
import { buildKommoProvider } from '../../src/crms/kommo/provider.js';
import { buildBitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { DEMO as KDEMO, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { Fault } from '../../src/sandbox/harness.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { createServer } from '../../src/server.js';
import { openStore } from '../../src/store/store.js';
import {
  CREATE_ONLY,
  FULL,
  errorOf,
  startBitrix,
  startKommo,
  structured,
  text,
  writesTo,
  type Connected,
  type ConnectedBitrix,
  bitrixSession,
  closeAll,
  kommoSession,
} from '../helpers/index.js';

describe('50 concurrent calls from several MCP clients over HTTP, real limits', () => {
  it('all succeed; the emulators count no 429, no 503 and no block', async () => {
    const kommo = await startKommo({});
    const bitrix = await startBitrix({});
    const store = await openStore('memory');
    const flags = CREATE_ONLY;
    const kp = buildKommoProvider(
      { name: 'kommo', provider: 'kommo', baseUrl: kommo.url, accessToken: kommo.createLongLivedToken(), policy: flags },
      { store, timeoutMs: 10_000, maxRetries: 3 },
    );
    const bp = buildBitrixProvider(
      { name: 'bitrix24', provider: 'bitrix24', webhookUrl: bitrix.webhookUrl, plan: 'standard', policy: flags },
      { store, timeoutMs: 10_000, maxRetries: 3 },
    );
    await kp.init();
    await bp.init();
    const http = await startHttpServer({ host: '127.0.0.1', port: 0, makeServer: () => createServer({ config: { tools: {} }, providers: [kp, bp] }) });
    const clients: Client[] = [];
    for (let i = 0; i < 5; i++) {
      const c = new Client({ name: `agent-${i}`, version: '0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(http.url)));
      clients.push(c);
    }
    const mix = (i: number): { name: string; arguments: Record<string, unknown> } => {
      const crm = i % 2 ? 'kommo' : 'bitrix24';
      switch (i % 5) {
        case 0:
          return { name: 'list_leads', arguments: { crm, limit: 20 } };
        case 1:
          return { name: 'search_lead_by_contact', arguments: { crm, phone: '+7 912 345-67-89' } };
        case 2:
          return { name: 'get_lead', arguments: { crm, id: crm === 'kommo' ? KDEMO.ivanLeadId : 1 } };
        case 3:
          return { name: 'list_contacts', arguments: { crm, limit: 10 } };
        default:
          return { name: 'create_contact', arguments: { crm, first_name: `Load ${i}`, email: `load-${i}@example.org` } };
      }
    };
    const results = (await Promise.all(Array.from({ length: 50 }, (_, i) => clients[i % 5]!.callTool(mix(i))))) as CallToolResult[];
    results.forEach((r, i) => expect(r.isError, `${mix(i).name}: ${text(r)}`).toBeFalsy());
    expect(kommo.stats.rateLimited).toBe(0);
    expect(kommo.stats.blocked).toBe(false);
    expect(bitrix.stats.queryLimitExceeded).toBe(0);
    // Every create happened once.
    for (let i = 4; i < 50; i += 5) {
      const hits =
        i % 2
          ? [...kommo.state.contacts.values()].filter((c) => c.name === `Load ${i}`)
          : [...bitrix.state.contacts.values()].filter((c) => c.NAME === `Load ${i}`);
      expect(hits, `Load ${i}`).toHaveLength(1);
    }
    for (const c of clients) await c.close();
    await http.close();
    await kommo.close();
    await bitrix.close();
  });
});

type Expect = { ok: true } | { code: string; retryable: boolean };
interface FaultCase {
  name: string;
  fault: Fault;
  times: number;
  expect: Expect;
}

const HTML_429 =
  '<html><head><title>429 Too Many Requests</title></head><body><center><h1>429 Too Many Requests</h1></center><hr><center>nginx</center></body></html>';
const KOMMO_429 =
  '{"title":"Too Many Requests","type":"https://httpstatus.es/429","status":429,"detail":"You have sent too many requests in a given amount of time. Please try again later.","retry_after":1}';

describe('faults on Kommo reads (get_lead)', () => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({ flags: CREATE_ONLY, timeoutMs: 600, maxRetries: 2 }));
  });
  afterAll(() => closeAll(c, emu));
  const cases: FaultCase[] = [
    {
      name: '429 JSON, twice',
      fault: { kind: 'status', status: 429, body: KOMMO_429, contentType: 'application/problem+json' },
      times: 2,
      expect: { ok: true },
    },
    {
      name: '429 HTML storm',
      fault: { kind: 'status', status: 429, body: HTML_429, contentType: 'text/html' },
      times: 10,
      expect: { code: 'rate_limited', retryable: true },
    },
    { name: '500 once', fault: { kind: 'status', status: 500, body: '{"title":"Internal","status":500}' }, times: 1, expect: { ok: true } },
    {
      name: '502 once',
      fault: { kind: 'status', status: 502, body: '<html>502 Bad Gateway</html>', contentType: 'text/html' },
      times: 1,
      expect: { ok: true },
    },
    {
      name: '504 storm',
      fault: { kind: 'status', status: 504, body: '<html>504</html>', contentType: 'text/html' },
      times: 10,
      expect: { code: 'upstream', retryable: true },
    },
    { name: 'reset before processing', fault: { kind: 'reset-before' }, times: 1, expect: { ok: true } },
    { name: 'reset after processing', fault: { kind: 'reset-after' }, times: 1, expect: { ok: true } },
    { name: 'slow past the timeout', fault: { kind: 'slow', ms: 1500 }, times: 1, expect: { ok: true } },
    { name: 'never answers', fault: { kind: 'timeout' }, times: 10, expect: { code: 'network', retryable: true } },
    { name: 'truncated body once', fault: { kind: 'truncated' }, times: 1, expect: { ok: true } },
    { name: 'malformed body storm', fault: { kind: 'malformed' }, times: 10, expect: { code: 'upstream', retryable: true } },
    { name: '204 where a record was expected', fault: { kind: 'no-content' }, times: 1, expect: { code: 'not_found', retryable: false } },
  ];
  it.each(cases)('$name', async ({ fault, times, expect: want }) => {
    emu.clearFaults();
    emu.injectFault(fault, { times, match: { method: 'GET', path: `/api/v4/leads/${KDEMO.ivanLeadId}` } });
    const r = await c.call('get_lead', { id: KDEMO.ivanLeadId });
    if ('ok' in want) {
      expect(r.isError, text(r)).toBeFalsy();
      expect(structured<{ lead: { id: number } }>(r).lead.id).toBe(KDEMO.ivanLeadId);
    } else {
      const e = errorOf(r);
      expect(e).toMatchObject({ code: want.code, retryable: want.retryable });
      expect(e.message.length).toBeGreaterThan(20);
    }
    emu.clearFaults();
    // The server keeps serving.
    expect((await c.call('get_lead', { id: KDEMO.ivanLeadId })).isError).toBeFalsy();
  });

  it('204 on a list is an empty page, not an error', async () => {
    emu.injectFault({ kind: 'no-content' }, { match: { method: 'GET', path: /^\/api\/v4\/leads$/ } });
    const r = structured<{ items: unknown[]; has_more: boolean }>(await c.call('list_leads', { query: 'anything' }));
    expect(r.items).toEqual([]);
    expect(r.has_more).toBe(false);
  });

  it.each(['reset-after', 'timeout', 'truncated', 'malformed'] as const)('a create whose response is lost (%s) leaves exactly one record', async (kind) => {
    const email = `lost-${kind}@example.org`;
    emu.injectFault({ kind }, { match: { method: 'POST', path: '/api/v4/contacts' } });
    const r = await c.call('create_contact', { first_name: `Lost ${kind}`, email });
    // Found by the look-before-retry (or, for a body lost after success, a clear 'may exist' error); never two.
    if (r.isError) expect(errorOf(r).message).toMatch(/may exist/);
    const made = [...emu.state.contacts.values()].filter((x) => x.name === `Lost ${kind}`);
    expect(made).toHaveLength(1);
    const again = structured<{ created: boolean }>(await c.call('create_contact', { first_name: `Lost ${kind}`, email }));
    expect(again.created).toBe(false);
    expect([...emu.state.contacts.values()].filter((x) => x.name === `Lost ${kind}`)).toHaveLength(1);
  });
});

describe('faults on Bitrix24 reads (crm.deal.get through bitrix_call)', () => {
  let emu: BitrixEmulator;
  let c: ConnectedBitrix;
  beforeAll(async () => {
    ({ emu, c } = await bitrixSession({ flags: FULL, timeoutMs: 600, maxRetries: 2 }));
  });
  afterAll(() => closeAll(c, emu));
  const QLE = '{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}';
  const OTL = '{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked due to operation time limit."}';
  const cases: FaultCase[] = [
    { name: '503 QUERY_LIMIT_EXCEEDED, twice', fault: { kind: 'status', status: 503, body: QLE }, times: 2, expect: { ok: true } },
    {
      name: '500 once',
      fault: { kind: 'status', status: 500, body: '{"error":"INTERNAL_SERVER_ERROR","error_description":"Internal server error"}' },
      times: 1,
      expect: { ok: true },
    },
    { name: '502 once', fault: { kind: 'status', status: 502, body: '<html>502</html>', contentType: 'text/html' }, times: 1, expect: { ok: true } },
    {
      name: '504 storm',
      fault: { kind: 'status', status: 504, body: '<html>504</html>', contentType: 'text/html' },
      times: 10,
      expect: { code: 'upstream', retryable: true },
    },
    { name: 'reset before processing', fault: { kind: 'reset-before' }, times: 1, expect: { ok: true } },
    { name: 'reset after processing', fault: { kind: 'reset-after' }, times: 1, expect: { ok: true } },
    { name: 'slow past the timeout', fault: { kind: 'slow', ms: 1500 }, times: 1, expect: { ok: true } },
    { name: 'truncated body once', fault: { kind: 'truncated' }, times: 1, expect: { ok: true } },
    { name: 'malformed body storm', fault: { kind: 'malformed' }, times: 10, expect: { code: 'upstream', retryable: true } },
    { name: '204 where a result was expected', fault: { kind: 'no-content' }, times: 10, expect: { code: 'upstream', retryable: true } },
  ];
  it.each(cases)('$name', async ({ fault, times, expect: want }) => {
    emu.harness.clearFaults();
    emu.harness.injectFault(fault, { times, match: { path: 'crm.deal.get' } });
    const r = await c.call('bitrix_call', { method: 'crm.deal.get', params: { id: 1 } });
    if ('ok' in want) {
      expect(r.isError, text(r)).toBeFalsy();
      expect(structured<{ result: { ID: string } }>(r).result.ID).toBe('1');
    } else {
      expect(errorOf(r)).toMatchObject({ code: want.code, retryable: want.retryable });
    }
    emu.harness.clearFaults();
    expect((await c.call('get_lead', { id: 1, entity: 'deal' })).isError).toBeFalsy();
  });

  it('429 OPERATION_TIME_LIMIT pauses that method only; batch reads keep working', async () => {
    emu.harness.injectFault({ kind: 'status', status: 429, body: OTL }, { times: 1, match: { path: 'crm.company.get' } });
    const e = errorOf(await c.call('bitrix_call', { method: 'crm.company.get', params: { id: 1 } }));
    expect(e).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(e.message).toMatch(/OPERATION_TIME_LIMIT/);
    expect((await c.call('get_lead', { id: 1, entity: 'deal' })).isError).toBeFalsy();
  });

  it.each(['reset-after', 'timeout'] as const)('a contact create whose response is lost (%s) leaves exactly one record', async (kind) => {
    const email = `lost-b24-${kind}@example.org`;
    emu.harness.injectFault({ kind }, { match: { path: 'crm.contact.add' } });
    const r = await c.call('create_contact', { first_name: `Lost ${kind}`, email });
    expect(r.isError, text(r)).toBeFalsy();
    expect([...emu.state.contacts.values()].filter((x) => x.NAME === `Lost ${kind}`)).toHaveLength(1);
  });
});

describe('bad input at every boundary: a clear error and no request', () => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({ flags: FULL }));
  });
  afterAll(() => closeAll(c, emu));
  const long = 'x'.repeat(100_000);
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['wrong type', 'get_lead', { id: { $gt: 1 } }],
    ['negative id', 'get_lead', { id: -5 }],
    ['unknown field', 'get_lead', { id: 1, drop_table: true }],
    ['missing required', 'create_lead', {}],
    ['oversized name', 'create_lead', { name: long }],
    ['oversized tag list', 'create_lead', { name: 'Tags', tags: Array.from({ length: 5000 }, (_, i) => `t${i}`) }],
    ['bad email', 'search_lead_by_contact', { email: 'not an email' }],
    ['junk phone', 'search_lead_by_contact', { phone: 'call me maybe' }],
    ['limit out of range', 'list_leads', { limit: 100000 }],
    ['array instead of object', 'create_lead', { name: 'A', contact: ['x'] }],
    ['oversized note', 'add_note', { entity: 'lead', entity_id: KDEMO.ivanLeadId, text: long }],
    ['bad deadline', 'create_task', { text: 'Call', complete_till: 'tomorrow-ish' }],
    ['raw path traversal', 'kommo_request', { method: 'GET', path: '/api/v4/../../oauth2/access_token' }],
  ];
  it.each(cases)('%s (%s)', async (_why, tool, args) => {
    emu.resetLog();
    const r = await c.call(tool, args);
    expect(r.isError, text(r)).toBe(true);
    expect(text(r).length).toBeGreaterThan(10);
    expect(text(r)).not.toMatch(/at Object\.|node_modules|TypeError/);
    expect(emu.requests.filter((q) => q.path.startsWith('/api/v4/') || q.path.startsWith('/oauth2'))).toHaveLength(0);
  });

  it('injection-looking text is stored as plain data, byte for byte', async () => {
    const name = `Robert'); DROP TABLE leads;-- <script>alert(1)</script> {{7*7}} \${process.env}`;
    const r = structured<{ created: boolean; lead: { id: number; name: string } }>(await c.call('create_lead', { name }));
    expect(r.created).toBe(true);
    expect(emu.state.leads.get(r.lead.id)?.name).toBe(name);
    expect(writesTo(emu.requests).length).toBeGreaterThan(0);
    const back = structured<{ lead: { name: string } }>(await c.call('get_lead', { id: r.lead.id }));
    expect(back.lead.name).toBe(name);
  });
});
