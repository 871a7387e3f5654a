/**
 * The audit log through the real SDK client over Streamable HTTP, with Kommo (writes allowed) and Bitrix24
 * (safe mode) emulators behind one server: allowed creates, refused updates, prior values of updated
 * fields, no secrets or free text in the file, and get_audit_log reading it back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import type { RunningHttpServer } from '../../src/transports/http/service.js';
import { buildBitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { buildKommoProvider } from '../../src/crms/kommo/provider.js';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore } from '../../src/store/store.js';
import { bitrixMethods, CREATE_ONLY, WRITE } from '../helpers/index.js';
import { serveHttp } from '../helpers/http.js';

const TOKEN = 'audit-token-0123456789abcdef';
const LEAD_NAME = 'Confidential Prospect Alexandra Worthington-Smythe';
const NEW_NAME = 'Renamed by the agent: Worthington deal, priority account';
/**
 * What the log keeps of free text, written out by hand from the rule in the README (the first third, at most 16
 * characters, then the length and the first 12 hex digits of its SHA-256), not computed by the code under test.
 */
const LEAD_NAME_DIGEST = 'Confidential Pro…[50 chars, sha256:e2ab62f3dc6f]';
const NEW_NAME_DIGEST = 'Renamed by the a…[56 chars, sha256:087a0f9bf389]';
const byHand = (s: string) =>
  `${s.slice(0, Math.min(16, Math.floor(s.length / 3)))}…[${s.length} chars, sha256:${createHash('sha256').update(s).digest('hex').slice(0, 12)}]`;
const NOTE = 'Customer said the CFO approves the budget next Tuesday; call back at 10:00 sharp.';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
let http: RunningHttpServer;
let client: Client;
let dir: string;
let file: string;
let kommoToken: string;

const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
const lines = (): AuditEntry[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEntry);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crm-mcp-audit-'));
  file = join(dir, 'nested', 'audit.log');
  [kommo, bitrix] = await Promise.all([startKommoEmulator({ rateLimit: false }), startBitrixEmulator({ rateLimit: false })]);
  const store = await openStore('memory');
  kommoToken = kommo.createLongLivedToken();
  const common = { store, timeoutMs: 3000, maxRetries: 1, backoffBaseMs: 10 };
  const providers = [
    buildKommoProvider({ name: 'kommo', provider: 'kommo', baseUrl: kommo.url, accessToken: kommoToken, policy: WRITE }, common),
    buildBitrixProvider({ name: 'bitrix24', provider: 'bitrix24', webhookUrl: bitrix.webhookUrl, plan: 'standard', policy: CREATE_ONLY }, common),
  ];
  for (const p of providers) await p.init();
  const audit = new AuditLog({ file });
  http = await serveHttp(TOKEN, { config: { tools: {} }, providers, audit });
  client = new Client({ name: 'audit-test', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: { authorization: `Bearer ${TOKEN}` } } }));
});

afterAll(async () => {
  await client?.close();
  await http?.close();
  await Promise.all([kommo?.close(), bitrix?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('audit log', () => {
  it('reads are not audited', async () => {
    expect((await call('get_pipelines', { crm: 'kommo' })).isError).toBeFalsy();
    expect(() => statSync(file)).toThrow();
  });

  it('an allowed create: one line with ids, CRM request ids and outcome; file mode 0600', async () => {
    const r = await call('create_lead', { crm: 'kommo', name: LEAD_NAME, contact: { first_name: 'Alexandra', email: 'alexandra.ws@example.org' } });
    expect(r.isError).toBeFalsy();
    const leadId = (r.structuredContent as { lead: { id: number } }).lead.id;
    const all = lines();
    // Two lines with one call id: pending (written before the CRM was called), then the outcome (issue 14, finding 7).
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({ tool: 'create_lead', decision: 'allow', outcome: 'pending', phase: 'pending', call_id: expect.any(String) });
    const e = all[1]!;
    expect(e).toMatchObject({ phase: 'done', call_id: (all[0] as { call_id?: string }).call_id });
    expect(e).toMatchObject({ connection: 'kommo', provider: 'kommo', tool: 'create_lead', effect: 'create', decision: 'allow', outcome: 'ok' });
    expect(e.result_ids).toMatchObject({ lead_id: leadId });
    expect(e.crm_request_ids.length).toBeGreaterThan(0);
    expect(typeof e.duration_ms).toBe('number');
    expect(e.args.name).toBe(LEAD_NAME_DIGEST);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('an update keeps the prior values of exactly the fields it changed', async () => {
    const before = (await call('get_lead', { crm: 'kommo', id: 1000001 })).structuredContent as {
      lead: { name: string; price: number | null; tags: string[] };
    };
    const r = await call('update_lead', { crm: 'kommo', id: 1000001, name: NEW_NAME, price: 777_000 });
    expect(r.isError).toBeFalsy();
    const e = lines().at(-1)!;
    expect(e).toMatchObject({ tool: 'update_lead', effect: 'update', decision: 'allow', outcome: 'ok', target: { id: 1000001 } });
    expect(e.prior).toEqual({ name: byHand(before.lead.name), price: before.lead.price });
    expect(e.args).toMatchObject({ id: 1000001, price: 777_000, name: NEW_NAME_DIGEST });
  });

  it('a note is audited without its text', async () => {
    expect((await call('add_note', { crm: 'kommo', entity: 'lead', entity_id: 1000001, text: NOTE })).isError).toBeFalsy();
    const e = lines().at(-1)!;
    expect(e).toMatchObject({ tool: 'add_note', effect: 'create', target: { entity: 'lead', entity_id: 1000001 } });
    expect(e.result_ids?.note_id).toBeDefined();
  });

  it('a generic write is audited with its path template; a generic read is not', async () => {
    const n = lines().length;
    expect((await call('kommo_request', { crm: 'kommo', method: 'GET', path: '/api/v4/leads/1000001' })).isError).toBeFalsy();
    expect(lines()).toHaveLength(n);
    expect((await call('kommo_request', { crm: 'kommo', method: 'PATCH', path: '/api/v4/leads/1000001', body: { price: 5 } })).isError).toBeFalsy();
    expect(lines().at(-1)).toMatchObject({ tool: 'kommo_request', effect: 'update', decision: 'allow', target: { path: '/api/v4/leads/:id', ids: [1000001] } });
  });

  it('updates refused by safe mode at call time are audited, and nothing reaches the CRM', async () => {
    bitrix.harness.resetLog();
    const n = lines().length;
    // The typed tool does not even offer the safe-mode connection (its `crm` enum lists kommo only).
    const typed = await call('update_lead', { crm: 'bitrix24', id: 1, name: 'Not allowed here' });
    expect(typed.isError).toBe(true);
    expect(lines()).toHaveLength(n);
    // The generic tool reaches the policy decision with an update effect: refused, and recorded.
    const generic = await call('bitrix_call', { crm: 'bitrix24', method: 'crm.deal.update', params: { id: 1, fields: { TITLE: 'Not allowed either' } } });
    expect(generic.isError).toBe(true);
    expect(bitrixMethods(bitrix.requests).filter((m) => m.includes('update'))).toEqual([]);
    const e = lines().at(-1)!;
    expect(e).toMatchObject({
      connection: 'bitrix24',
      tool: 'bitrix_call',
      effect: 'update',
      decision: 'deny',
      outcome: 'policy_denied',
      target: { method: 'crm.deal.update', id: 1 },
    });
    expect(e.reason).toMatch(/safe mode/);
    expect(e.prior).toBeUndefined();
    expect(e.crm_request_ids).toEqual([]);
  });

  it('holds no secret and no full free text', () => {
    const text = readFileSync(file, 'utf8');
    for (const s of [kommoToken, bitrix.webhookSecret, TOKEN, LEAD_NAME, NEW_NAME, NOTE, 'Not allowed either', 'alexandra.ws@example.org'])
      expect(text).not.toContain(s);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
  });

  it('get_audit_log returns the entries of the chosen connection, newest first, with filters', async () => {
    const r = await call('get_audit_log', { crm: 'kommo', limit: 10 });
    expect(r.isError).toBeFalsy();
    const out = r.structuredContent as { enabled: boolean; entries: AuditEntry[] };
    expect(out.enabled).toBe(true);
    expect(out.entries.map((e) => e.tool)).toEqual(['kommo_request', 'add_note', 'update_lead', 'create_lead']);
    expect(out.entries.find((e) => e.tool === 'update_lead')!.prior).toHaveProperty('price');

    const denied = (await call('get_audit_log', { crm: 'bitrix24', decision: 'deny' })).structuredContent as { entries: AuditEntry[] };
    expect(denied.entries.map((e) => e.tool)).toEqual(['bitrix_call']);
    expect((await call('get_audit_log', { crm: 'kommo', decision: 'deny' })).structuredContent).toMatchObject({ entries: [] });
    const one = (await call('get_audit_log', { crm: 'kommo', tool: 'create_lead' })).structuredContent as { entries: AuditEntry[] };
    expect(one.entries).toHaveLength(1);
    expect(JSON.stringify(out)).not.toContain(NOTE);
  });
});
